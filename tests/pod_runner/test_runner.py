"""The pod runner itself, on small shell pods (fast, no vLLM): what it does as the kubelet would,
and that a field it does not implement fails instead of being ignored."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.examples import EXAMPLE_STACK_FILES
from vllm_serving.render import render

from . import runner
from .images import SYSTEM_PATH, ImageStandIn
from .runner import Cluster, Pod, PodFailed, UnsupportedPodField, expand, pod_template

IMAGE = "example.test/shell:1"


@pytest.fixture(autouse=True)
def shell_image(monkeypatch):
    """One stand-in for the tests' pods: the machine's shell and Python."""
    monkeypatch.setattr(runner, "IMAGES", {IMAGE: lambda: ImageStandIn(path=SYSTEM_PATH, runner_additions={"ADDED": "1"})})


def pod(tmp_path: Path, containers: list[dict[str, Any]], cluster: Cluster | None = None, **spec: Any) -> Pod:
    cluster = cluster or Cluster(tmp_path / "cluster")
    for container in [*containers, *spec.get("initContainers", [])]:
        container.setdefault("image", IMAGE)
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": containers, "restartPolicy": "Never", **spec}}
    return Pod(cluster, template, "pod-a", tmp_path / "pod")


def test_expansion_as_the_kubelet_does():
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)-$(C)", env) == "1-two-$(C)"
    assert expand("$$(A) costs $$5", env) == "$(A) costs $5"


def test_env_from_values_secrets_config_maps_and_fields(tmp_path):
    cluster = Cluster(tmp_path / "c", namespace="llm").add_manifests([
        {"kind": "Secret", "metadata": {"name": "s"}, "data": {"key": "c2VjcmV0"}},
        {"kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"k": "v"}},
    ])
    env = [
        {"name": "A", "value": "a"},
        {"name": "B", "value": "$(A)-b"},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "key"}}},
        {"name": "MISSING", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}},
        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "m", "key": "k"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ]
    p = pod(tmp_path, [{"name": "c", "command": ["sh", "-c", "env > $(OUT)"], "env": [*env, {"name": "OUT", "value": str(tmp_path / "env")}]}], cluster)
    assert p.run(timeout=30) == 0
    seen = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if "=" in line)
    assert {k: seen[k] for k in ("A", "B", "SECRET", "CM", "NS", "LABEL", "ADDED", "HOSTNAME")} == {
        "A": "a", "B": "a-b", "SECRET": "secret", "CM": "v", "NS": "llm", "LABEL": "x", "ADDED": "1", "HOSTNAME": "pod-a"}
    assert "MISSING" not in seen
    # The container's own HOME and /tmp, not the machine's.
    assert seen["HOME"] == str(p.rootfs / "root") and seen["TMPDIR"] == str(p.rootfs / "tmp")
    # vLLM binds unix sockets under TMPDIR: their paths may not exceed 107 bytes.
    assert len(seen["TMPDIR"]) < 40


def test_a_missing_secret_fails_the_pod(tmp_path):
    with pytest.raises(PodFailed, match="nope/k does not exist"):
        pod(tmp_path, [{"name": "c", "command": ["true"], "env": [
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}])


def test_the_pod_may_not_set_what_the_runner_adds(tmp_path):
    p = pod(tmp_path, [{"name": "c", "command": ["true"], "env": [{"name": "ADDED", "value": "0"}]}])
    with pytest.raises(PodFailed, match="the pod sets ADDED"):
        p.run(timeout=30)


@pytest.mark.parametrize(("where", "field"), [
    ("spec", {"hostIPC": True}), ("container", {"stdin": True}), ("container", {"image": "example.test/other:2"}),
    ("volume", {"name": "v", "hostPath": {"path": "/"}}), ("container", {"lifecycle": {"postStart": {"exec": {"command": ["true"]}}}}),
])
def test_a_field_it_does_not_implement_fails_loudly(tmp_path, where, field):
    container = {"name": "c", "command": ["true"]}
    spec: dict[str, Any] = {}
    if where == "container":
        container.update(field)
    elif where == "spec":
        spec.update(field)
    else:
        spec["volumes"] = [field]
        container["volumeMounts"] = [{"name": "v", "mountPath": "/v"}]
    with pytest.raises(UnsupportedPodField):
        start_and_stop(tmp_path, container, spec)


def start_and_stop(tmp_path: Path, container: dict[str, Any], spec: dict[str, Any]) -> None:
    p = pod(tmp_path, [container], **spec)
    try:
        p.start()
        p.terminate()
    finally:
        p.kill()


def test_mounts_claims_subpaths_config_maps_with_modes_and_empty_dirs(tmp_path):
    cluster = Cluster(tmp_path / "c").add_manifests([
        {"kind": "ConfigMap", "metadata": {"name": "scripts"}, "data": {"run.sh": "echo from-config-map", "other": "x"}},
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "claim"}},
    ])
    script = "sh /scripts/run.sh > /volume/out; stat -c %a /scripts/run.sh >> /volume/out; ls /scripts >> /volume/out; touch /tmp/t"
    p = pod(tmp_path, [{"name": "c", "command": ["sh", "-c", script], "volumeMounts": [
        {"name": "model", "mountPath": "/volume", "subPath": "a/b"},
        {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
        # /tmp as the download Job mounts it: the other mounts' directories are under /tmp too, and
        # must not be translated twice.
        {"name": "tmp", "mountPath": "/tmp"}]}], cluster, volumes=[
        {"name": "model", "persistentVolumeClaim": {"claimName": "claim"}},
        {"name": "scripts", "configMap": {"name": "scripts", "defaultMode": 0o555, "items": [{"key": "run.sh", "path": "run.sh"}]}},
        {"name": "tmp", "emptyDir": {}}])
    assert p.run(timeout=30) == 0
    assert (cluster.claims["claim"] / "a" / "b" / "out").read_text().split() == ["from-config-map", "555", "run.sh"]
    assert (dict(p.containers[0].mounts)["/tmp"] / "t").exists()


def test_a_write_under_a_read_only_mount_fails_the_pod(tmp_path):
    cluster = Cluster(tmp_path / "c").add_manifests([{"kind": "PersistentVolumeClaim", "metadata": {"name": "claim"}}])
    p = pod(tmp_path, [{"name": "c", "command": ["sh", "-c", "touch /model/new"],
                        "volumeMounts": [{"name": "m", "mountPath": "/model", "readOnly": True}]}], cluster,
            volumes=[{"name": "m", "persistentVolumeClaim": {"claimName": "claim", "readOnly": True}}])
    with pytest.raises(PodFailed, match="read-only mount /model"):
        p.run(timeout=30)


def test_init_containers_run_in_order_and_a_failure_stops_the_pod(tmp_path):
    log = tmp_path / "order"
    init = [{"name": "one", "command": ["sh", "-c", f"echo one >> {log}"]},
            {"name": "two", "command": ["sh", "-c", f"echo two >> {log}; exit 3"]}]
    p = pod(tmp_path, [{"name": "c", "command": ["sh", "-c", f"echo main >> {log}"]}], initContainers=init)
    with pytest.raises(PodFailed, match="init container two exited 3"):
        p.run(timeout=30)
    assert log.read_text().split() == ["one", "two"]


SERVER = [sys.executable, "-c", "import http.server, sys; http.server.HTTPServer(('127.0.0.1', int(sys.argv[1].split('=')[1])), http.server.SimpleHTTPRequestHandler).serve_forever()", "--port=8000"]


def test_probes_on_a_named_port_and_the_translated_container_port(tmp_path):
    p = pod(tmp_path, [{"name": "c", "command": SERVER, "ports": [{"name": "http", "containerPort": 8000}],
                        "startupProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1, "failureThreshold": 20},
                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}])
    try:
        p.start()
        assert p.wait_ready(timeout=30) < 30
        assert p.port_map[8000] != 8000 or p.url().endswith(":8000")
        assert [e.what for e in p.events if "ready" in e.what or "startup" in e.what] == ["c: started (startup probe passed)", "c: ready"]
    finally:
        p.kill()


def test_a_failed_startup_probe_kills_the_container(tmp_path):
    p = pod(tmp_path, [{"name": "c", "command": ["sleep", "60"],
                        "startupProbe": {"exec": {"command": ["false"]}, "periodSeconds": 0.2, "failureThreshold": 3}}],
            terminationGracePeriodSeconds=5)
    try:
        p.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.containers[0].process.poll() is None:
            time.sleep(0.1)
        assert p.containers[0].process.poll() is not None
        assert "c: startupProbe failed 3 times" in [e.what for e in p.events]
    finally:
        p.kill()


def test_termination_pre_stop_then_sigterm_then_sigkill_at_the_grace_period(tmp_path):
    marks = tmp_path / "marks"
    p = pod(tmp_path, [{"name": "c", "command": ["sh", "-c", f"trap 'echo term >> {marks}' TERM; while true; do sleep 0.1; done"],
                        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", f"echo prestop >> {marks}"]}}}}],
            terminationGracePeriodSeconds=2)
    p.start()
    time.sleep(0.5)
    took = p.terminate()
    assert marks.read_text().split() == ["prestop", "term"]
    assert 2 <= took < 5
    assert [e.what for e in p.events][-1] == "c: SIGKILL at the end of the grace period"


@pytest.mark.parametrize("stack", EXAMPLE_STACK_FILES, ids=lambda s: s.stem)
def test_every_rendered_pod_template_is_understood(tmp_path, monkeypatch, stack):
    """Every example stack's pods pass the runner's field checks: a field the renderer adds that the
    runner does not implement fails here, not in the slow real-server step."""
    monkeypatch.setattr(runner, "IMAGES", _AnyImage())
    rendering = render(stack)
    cluster = Cluster(tmp_path / "c").add_manifests(rendering.manifests)
    for need, keys in _referenced_secrets(rendering.manifests).items():
        cluster.secrets.setdefault(need, dict.fromkeys(keys, "x"))
    kinds = ("Job", "Deployment", "LeaderWorkerSet")
    templates = [(r.kind, pod_template(r.inputs)) for kind in kinds for r in rendering.by_kind(kind)]
    assert templates
    for index, (kind, template) in enumerate(templates):
        for volume in template["spec"].get("volumes", []):  # an existingClaim is the user's
            if "persistentVolumeClaim" in volume:
                cluster.claim(volume["persistentVolumeClaim"]["claimName"])
        Pod(cluster, template, f"{kind.lower()}-{index}", tmp_path / f"pod-{index}")


class _AnyImage(dict):
    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str):
        return lambda: ImageStandIn(path=SYSTEM_PATH)


def _referenced_secrets(manifests: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("secretKeyRef") or node.get("configMapKeyRef")
            if isinstance(ref, dict) and "name" in ref:
                found.setdefault(ref["name"], set()).add(ref["key"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(manifests)
    return found


def test_sigterm_reaches_the_main_process_only(tmp_path):
    """The runtime signals the container's PID 1; its children hear of it only from it (vLLM's API
    server stops its engine itself, after draining). The children go when the container ends."""
    marks = tmp_path / "marks"
    child = f"trap 'echo child >> {marks}' TERM; while true; do sleep 0.1; done"
    main = f"sh -c \"{child}\" & trap 'echo main >> {marks}; exit 0' TERM; while true; do sleep 0.1; done"
    p = pod(tmp_path, [{"name": "c", "command": ["sh", "-c", main]}], terminationGracePeriodSeconds=5)
    p.start()
    time.sleep(0.5)
    p.terminate()
    time.sleep(0.3)
    assert marks.read_text().split() == ["main"]
