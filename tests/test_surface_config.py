"""What the stack may not set because it would get around, widen or leak through the server's
allow-list, or leave a pod that can never serve (components/config/surface_rules.py), and the
allow-list's policy as the stack derives it (components/server/surface.py)."""

from __future__ import annotations

import json

import pytest

from components.config import parse_config
from components.server.surface import keyed_prefixes, metrics_open, surface_policy
from tests.conftest import HF_MODEL, container, env_of, problems, render_values


def refused(**extra) -> dict[str, str]:
    return problems({"model": HF_MODEL, **extra})


@pytest.mark.parametrize(("argument", "named"), [
    ("--middleware=my.Middleware", "must be the last --middleware"),
    ("--root-path=/v", "--root-path=/v lets /v1/... through"),
    ("--root=/v1", "moves every route under a prefix"),  # a prefix vLLM's parser expands
    ("--ssl-keyfile=/tls/key.pem", "HTTP probes (/health, /ready) can never pass"),
    ("--ssl-certfile=/tls/cert.pem", "ingress.tlsSecret"),
    ("--tokens-only", "answered 400"),
    ("--profiler-config={\"profiler\": \"torch\"}", "profiler"),
    ("--data-parallel-size=2", "replicaCount"),
    ("-dp=2", "replicaCount"),
])
def test_extra_args_that_reshape_or_break_the_surface_are_refused(argument, named):
    found = refused(server={"extraArgs": ["--max-model-len=4096", argument]})
    assert named in found["server.extraArgs[1]"]


def test_cors_credentials_with_any_origin_is_refused():
    assert "any web page" in refused(server={"extraArgs": ["--allow-credentials"]})["server.extraArgs[0]"]
    wildcard = refused(server={"extraArgs": ['--allowed-origins=["*"]', "--allow-credentials"]})
    assert "--allowed-origins=" in wildcard["server.extraArgs[1]"]
    parse_config({"model": HF_MODEL, "server": {"extraArgs": ['--allowed-origins=["https://a.example"]', "--allow-credentials"]}})
    parse_config({"model": HF_MODEL, "server": {"extraArgs": ['--allowed-origins=["*"]']}})


@pytest.mark.parametrize(("name", "value", "named"), [
    ("VLLM_SERVER_DEV_MODE", "1", "development routes"),
    ("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "True", "lora.adapters"),
    ("VLLM_DEBUG_LOG_API_SERVER_RESPONSE", "true", "into the server's log"),
    ("VLLM_LOGGING_LEVEL", "debug", "use INFO"),
    ("PYTHONPATH", "/opt/x", "allow-list's module"),
    ("VLLM_SERVING_SURFACE", "{}", "allow-list's policy"),
    ("MODEL_DIR", "/x", "download Job"),
])
def test_env_that_opens_routes_leaks_bodies_or_overrides_the_program_is_refused(name, value, named):
    assert named in refused(env=[{"name": name, "value": value}])["env[0]"]


def test_env_switches_off_or_unrelated_pass():
    parse_config({"model": HF_MODEL, "env": [
        {"name": "VLLM_SERVER_DEV_MODE", "value": "0"},
        {"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "false"},
        {"name": "VLLM_LOGGING_LEVEL", "value": "INFO"},
        {"name": "VLLM_CACHE_ROOT", "value": "/cache"},  # no compile cache: the user's own
    ]})


def test_a_switch_read_from_a_secret_is_refused_as_it_may_be_on():
    found = refused(env=[{"name": "VLLM_SERVER_DEV_MODE", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])
    assert "development routes" in found["env[0]"]
    # A log level kept in a ConfigMap is accepted unseen: at worst it logs.
    parse_config({"model": HF_MODEL, "env": [
        {"name": "VLLM_LOGGING_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "v"}}},
    ]})


def test_duplicate_env_names_and_overrides_of_derived_env_are_refused():
    found = refused(env=[{"name": "HTTP_PROXY", "value": "a"}, {"name": "HTTP_PROXY", "value": "b"}])
    assert "also env.0" in found["env[1]"]
    cache = {"enabled": True, "gpuType": "H100"}
    found = refused(server={"compileCache": cache}, env=[{"name": "VLLM_CACHE_ROOT", "value": "/x"}])
    assert "server.compileCache" in found["env[0]"]


@pytest.mark.parametrize("path", ["/", "/metrics", "/health"])
def test_exposing_every_path_or_an_open_one_is_refused(path):
    ingress = {"enabled": True, "host": "a.example", "extraPaths": [path]}
    found = refused(ingress=ingress, apiKeySecret={"name": "key"})
    assert "ingress.extraPaths[0]" in found


def test_an_open_path_may_be_published_on_purpose():
    parse_config({"model": HF_MODEL, "allowUnauthenticated": True,
                  "httpRoute": {"enabled": True, "parentRefs": [{"name": "gw"}], "extraPaths": ["/metrics"]}})


def test_host_network_with_a_network_policy_is_refused():
    values = {
        "server": {"nodes": 2, "network": {"hostNetwork": True}},
        "networkPolicy": {"enabled": True},
        "model": {**HF_MODEL, "volume": {"size": "24Gi", "accessModes": ["ReadWriteMany"]}},
        "resources": {"limits": {"nvidia.com/gpu": 1}},
    }
    assert "does not apply to pods in the node's network namespace" in problems(values)["server.network.hostNetwork"]


@pytest.mark.parametrize("rank", [7, 0, 1024])
def test_lora_rank_outside_vllms_choices_is_refused(rank):
    """Checked against the stack's release's own choices (its engine profile), where the flag renders."""
    adapters = [{"name": "a", "source": "huggingface", "huggingface": {"id": "org/a"}}]
    message = refused(lora={"maxLoraRank": rank, "adapters": adapters})["lora.maxLoraRank"]
    assert "vLLM 0.34.0" in message and "1, 8, 16, 32, 64, 128, 256, 320, 512" in message


# --- the policy the pod gets ------------------------------------------------------------------------


def test_the_policy_follows_the_stack():
    plain = parse_config({"model": HF_MODEL})
    assert surface_policy(plain) == {
        "keyedPrefixes": ["/v1"], "metricsOpen": False, "requireKey": False,
        "drainDir": "/vllm-serving/drain", "retryAfterSeconds": 5,
    }
    exposed = parse_config({
        "model": HF_MODEL, "apiKeySecret": {"name": "key"},
        "ingress": {"enabled": True, "host": "a.example", "extraPaths": ["/tokenize/"]},
        "httpRoute": {"enabled": False, "extraPaths": ["/pooling"]},
        "metrics": {"podMonitor": {"enabled": True}},
    })
    # Only an enabled route's paths; the disabled HTTPRoute's /pooling stays closed.
    assert keyed_prefixes(exposed) == ["/v1", "/tokenize"]
    assert metrics_open(exposed) and surface_policy(exposed)["requireKey"]


def test_the_server_container_carries_the_allow_list():
    rendering = render_values({"model": HF_MODEL, "apiKeySecret": {"name": "key"}, "checkSecrets": False})
    server = container(rendering, "Deployment", "vllm")
    assert server["args"][-1] == "--middleware=vllm_serving_surface.SurfaceGuard"
    env = env_of(server)
    assert env["PYTHONPATH"] == "/vllm-serving/surface"
    assert json.loads(env["VLLM_SERVING_SURFACE"])["requireKey"] is True
    mounts = {m["name"]: m for m in server["volumeMounts"]}
    assert mounts["surface"]["readOnly"] is True and mounts["drain"]["mountPath"] == "/vllm-serving/drain"
    config_maps = [m.inputs for m in rendering.by_kind("ConfigMap") if "-surface-" in m.inputs["metadata"]["name"]]
    from components.server.surface import module_source
    assert config_maps[0]["data"] == {"vllm_serving_surface.py": module_source()}


def test_only_the_leader_of_a_group_carries_it():
    values = {
        "model": {**HF_MODEL, "volume": {"size": "24Gi", "accessModes": ["ReadWriteMany"]}},
        "server": {"nodes": 2}, "resources": {"limits": {"nvidia.com/gpu": 1}},
    }
    spec = render_values(values).one("LeaderWorkerSet").inputs["spec"]["leaderWorkerTemplate"]
    leader = spec["leaderTemplate"]["spec"]
    worker = spec["workerTemplate"]["spec"]
    assert {v["name"] for v in leader["volumes"]} >= {"surface", "drain"}
    assert not {v["name"] for v in worker["volumes"]} & {"surface", "drain"}
    assert "VLLM_SERVING_SURFACE" in env_of(leader["containers"][0])
    assert "VLLM_SERVING_SURFACE" not in env_of(worker["containers"][0])
    assert leader["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/ready"


# --- what the API server would refuse at apply ----------------------------------------------------


@pytest.mark.parametrize(("source", "named"), [
    ({"fieldRef": {"fieldPath": "spec.containers"}}, "not a pod field Kubernetes passes to env"),
    ({"fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v2"}}, "apiVersion v1 only"),
    ({"fieldRef": {"fieldPath": "metadata.labels['bad key']"}}, "label key"),
    ({"resourceFieldRef": {"resource": "limits.nvidia.com/gpu"}}, "not a container resource"),
    ({"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1Mi"}}, "divisor '1Mi'"),
])
def test_env_sources_kubernetes_refuses_are_refused(source, named):
    found = refused(env=[{"name": "X", "valueFrom": source}])
    assert any(named in message for key, message in found.items() if key.startswith("env[0]")), found


def test_env_sources_kubernetes_accepts_pass():
    parse_config({"model": HF_MODEL, "env": [
        {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app.kubernetes.io/name']", "apiVersion": "v1"}}},
        {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "D", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
    ]})


def test_a_download_into_a_read_only_volume_is_refused():
    found = refused(model={**HF_MODEL, "volume": {"size": "24Gi", "accessModes": ["ReadOnlyMany"]}})
    assert "download Job writes into the volume" in found["model.volume.accessModes"]
    prefilled = {"deployName": "m", "source": "", "volume": {"existingClaim": "filled", "accessModes": ["ReadOnlyMany"]}}
    parse_config({"model": prefilled})
    adapter = {"name": "sql", "source": "huggingface", "huggingface": {"id": "org/sql-lora"}}
    assert "lora.adapters are set" in refused(model=prefilled, lora={"adapters": [adapter]})["model.volume.accessModes"]


def test_a_group_larger_than_int32_is_refused():
    assert "model" not in refused(server={"nodes": 2**31})
    assert "server.nodes" in refused(server={"nodes": 2**31})
