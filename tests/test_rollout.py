"""Pod changes that keep serving: API key rotation rolls the pods, a terminating pod drains before
vLLM stops, and the rollout strategy follows the replicas (README "Day 2")."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import parse_config
from components.server.deployment import API_KEY_CHECKSUM_ANNOTATION
from components.server.surface import drain_command
from tests.conftest import HF_MODEL, assert_schema_valid, container, engine_config, problems, render_values
from vllm_serving.render import Rendering, render_config

SHARED = {**HF_MODEL, "volume": {**HF_MODEL["volume"], "accessModes": ["ReadWriteMany"]}}


def deployment(rendering: Rendering) -> dict[str, Any]:
    return rendering.one("Deployment").inputs


def pod_annotations(rendering: Rendering) -> dict[str, str]:
    return deployment(rendering)["spec"]["template"]["metadata"].get("annotations") or {}


# --- 4. rotating the API key rolls the pods ---------------------------------------------------


def with_api_key(key: str) -> Rendering:
    return render_config(engine_config({"model": HF_MODEL, "apiKey": key}), ["vllm-serving:apiKey"])


def test_a_new_api_key_changes_the_pod_template_without_revealing_the_key():
    first, again, rotated = with_api_key("sk-first"), with_api_key("sk-first"), with_api_key("sk-second")
    checksum = pod_annotations(first)[API_KEY_CHECKSUM_ANNOTATION]
    # Pods read the key from the Secret at start only: the template must change for them to roll.
    assert pod_annotations(rotated)[API_KEY_CHECKSUM_ANNOTATION] != checksum
    assert pod_annotations(again)[API_KEY_CHECKSUM_ANNOTATION] == checksum
    # A plain string (so `pulumi preview` shows it change), and one-way: not the key, nor its plain hash.
    import hashlib

    assert isinstance(checksum, str) and "sk-first" not in checksum
    assert hashlib.sha256(b"sk-first").hexdigest()[:32] != checksum


def with_api_key_secret(value_b64: str) -> Rendering:
    values = {"model": HF_MODEL, "apiKeySecret": {"name": "llm-keys", "key": "key"}}
    return render_config(engine_config(values), [], existing_secrets={"llm-keys": {"key": value_b64, "other": "eA=="}})


def test_a_key_rotated_in_its_existing_secret_rolls_the_pods_at_the_next_up():
    # The Secret is read at preview (checkSecrets): its value's checksum is in the pod template.
    before, after = with_api_key_secret("c2stb25l"), with_api_key_secret("c2stdHdv")
    assert pod_annotations(before)[API_KEY_CHECKSUM_ANNOTATION] != pod_annotations(after)[API_KEY_CHECKSUM_ANNOTATION]
    assert "c2stb25l" not in str(pod_annotations(before))


def test_without_reading_secrets_an_existing_secret_rotation_cannot_be_seen():
    values = {"model": HF_MODEL, "apiKeySecret": {"name": "llm-keys"}, "checkSecrets": False}
    assert API_KEY_CHECKSUM_ANNOTATION not in pod_annotations(render_values(values))


def test_no_api_key_no_annotation():
    assert pod_annotations(render_values({"model": HF_MODEL})) == {}


# --- 5. drain before stopping -------------------------------------------------------------------


def test_a_terminating_pod_drains_then_lets_vllm_finish_its_requests():
    rendering = render_values({"model": HF_MODEL})
    server = container(rendering, "Deployment", "vllm")
    # Marks the pod draining (/ready answers 503), waits 30 s, marks it stopping (new requests: 503).
    assert server["lifecycle"] == {"preStop": {"exec": {"command": drain_command(30)}}}
    assert drain_command(30)[-2:] == ["/vllm-serving/drain", "30"]
    assert "--shutdown-timeout=300" in server["args"]
    # preStop sleep + vLLM's shutdown timeout + 30 s to free the GPUs.
    assert deployment(rendering)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 360
    assert_schema_valid(rendering)


def test_drain_and_shutdown_times_are_configurable_and_set_the_grace_period():
    rendering = render_values({"model": HF_MODEL, "server": {"drainSeconds": 10, "shutdownTimeoutSeconds": 900}})
    server = container(rendering, "Deployment", "vllm")
    assert server["lifecycle"]["preStop"]["exec"]["command"] == drain_command(10)
    assert "--shutdown-timeout=900" in server["args"]
    assert deployment(rendering)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 940


def test_zero_drain_and_zero_shutdown_timeout_leave_kubernetes_and_vllm_defaults():
    rendering = render_values({"model": HF_MODEL, "server": {"drainSeconds": 0, "shutdownTimeoutSeconds": 0}})
    server = container(rendering, "Deployment", "vllm")
    # No wait, but still the markers: readiness fails and a late request gets 503, not vLLM's 500.
    assert server["lifecycle"]["preStop"]["exec"]["command"] == drain_command(0)
    assert not any(arg.startswith("--shutdown-timeout") for arg in server["args"])


@pytest.mark.parametrize(("tag", "passed"), [("v0.3.3", False), ("v0.17.1", False), ("v0.18.0", True), ("nightly-abc", True)])
def test_the_shutdown_timeout_is_passed_only_to_vllm_releases_that_have_it(tag, passed):
    server = container(render_values({"model": HF_MODEL, "image": {"tag": tag}}), "Deployment", "vllm")
    assert any(arg.startswith("--shutdown-timeout=") for arg in server["args"]) is passed


def test_the_shutdown_timeout_is_not_set_behind_the_programs_back():
    found = problems({"model": HF_MODEL, "server": {"extraArgs": ["--shutdown-timeout=5"]}})
    assert "server.shutdownTimeoutSeconds" in found["server.extraArgs[0]"]


# --- 6. rollout strategy ------------------------------------------------------------------------


def strategy(rendering: Rendering) -> dict[str, Any]:
    return deployment(rendering)["spec"]["strategy"]


def test_one_replica_is_recreated_as_before():
    assert strategy(render_values({"model": HF_MODEL})) == {"type": "Recreate"}


def test_several_replicas_roll_one_at_a_time_without_a_spare_gpu():
    rendering = render_values({"model": SHARED, "replicaCount": 3})
    assert strategy(rendering) == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    assert_schema_valid(rendering)


def test_autoscaled_replicas_roll_one_at_a_time():
    autoscaling = {"enabled": True, "maxReplicas": 3, "prometheusAddress": "http://prometheus:9090"}
    rendering = render_values({"model": SHARED, "autoscaling": autoscaling})
    assert strategy(rendering)["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        ("surge", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        ("oneAtATime", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}),
        ("recreate", {"type": "Recreate"}),
    ],
)
def test_the_rollout_can_be_chosen(rollout, expected):
    assert strategy(render_values({"model": SHARED, "replicaCount": 2, "server": {"rollout": rollout}})) == expected


@pytest.mark.parametrize("mode", ["ReadWriteOnce", "ReadWriteOncePod"])
def test_surge_is_refused_on_a_volume_one_node_mounts(mode):
    model = {**HF_MODEL, "volume": {**HF_MODEL["volume"], "accessModes": [mode]}}
    found = problems({"model": model, "server": {"rollout": "surge"}})
    assert found["server.rollout"].startswith(f"surge starts each new pod while the old one runs, and a {mode}")


def test_the_progress_deadline_covers_a_pod_stopping_and_the_next_loading():
    # Kubernetes' default of 600 s would mark a 30-minute load ProgressDeadlineExceeded.
    rendering = render_values({"model": HF_MODEL, "server": {"startupTimeoutSeconds": 3600}})
    # grace 360 s + startup 3600 s + 20 minutes for scheduling and the image pull.
    assert deployment(rendering)["spec"]["progressDeadlineSeconds"] == 360 + 3600 + 1200
    assert rendering.one("Deployment").options["customTimeouts"] == {"create": "86m", "update": "86m"}


def test_pulumi_waits_for_every_pod_of_a_one_at_a_time_rollout():
    rendering = render_values({"model": SHARED, "replicaCount": 3})
    # Three steps of (360 s grace + 1800 s startup + 1200 s margin).
    assert rendering.one("Deployment").options["customTimeouts"] == {"create": "168m", "update": "168m"}


def test_the_rollout_resolves_once_in_config():
    assert parse_config({"model": HF_MODEL}).rollout == "recreate"
    assert parse_config({"model": SHARED, "replicaCount": 2}).rollout == "oneAtATime"
