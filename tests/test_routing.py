"""`routing`: the InferencePool, llm-d's endpoint picker, the route to the pool, model routing,
guarded runtime LoRA and scale to zero (docs/routing.md)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from components.config import parse_config
from components.options import routing as routing_module
from components.options.autoscaling import triggers
from components.options.routing import (
    BASE_MODEL_HEADER,
    EXT_PROC_PORT,
    QUEUE_METRIC,
    RUNTIME_LORA_PATHS,
    picker_args,
    picker_config,
    queue_timeout_seconds,
    replica_start_seconds,
    routing_line,
)
from tests.conftest import HF_MODEL, assert_schema_valid, env_of, manifest, problems, render_values
from vllm_serving.crd_schemas import picker_config as picker_check
from vllm_serving.crd_schemas.picker_config import check_picker_config, plugin_table
from vllm_serving.manifests import normalize

KEY = {"apiKeySecret": {"name": "llm-api-key"}}
ROUTE = {"enabled": True, "parentRefs": [{"name": "inference-gateway", "namespace": "gateways"}]}
SHARED_MODEL: dict[str, Any] = {**HF_MODEL, "size": "13.5G", "volume": {**HF_MODEL["volume"], "size": "32Gi", "accessModes": ["ReadWriteMany"]}}
ROUTED: dict[str, Any] = {**KEY, "model": SHARED_MODEL, "replicaCount": 2, "httpRoute": ROUTE, "routing": {"enabled": True}}
SCALE_TO_ZERO: dict[str, Any] = {
    **ROUTED,
    "autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 3, "prometheusAddress": "http://prometheus:9090"},
    "metrics": {"serviceMonitor": {"enabled": True}},
    "routing": {"enabled": True, "flowControl": {"enabled": True}},
}


def with_routing(**routing: Any) -> dict[str, Any]:
    values = copy.deepcopy(ROUTED)
    values["routing"].update(routing)
    return values


def all_of(rendering, kind: str) -> list[dict[str, Any]]:
    return [normalize(m) for m in rendering.manifests if m["kind"] == kind]


# --- off by default ------------------------------------------------------------------------------


def test_routing_is_off_by_default_and_the_route_then_sends_to_the_service():
    rendering = render_values({**KEY, "model": HF_MODEL, "httpRoute": ROUTE})
    assert not parse_config({"model": HF_MODEL}).routing.enabled
    assert not {m["kind"] for m in rendering.manifests} & {"InferencePool", "ServiceAccount", "Role"}
    backend = manifest(rendering, "HTTPRoute")["spec"]["rules"][0]["backendRefs"][0]
    assert backend["port"] == 8000 and "kind" not in backend


# --- the pool, the picker and the route ----------------------------------------------------------


def test_the_pool_selects_the_server_pods_on_port_8000_and_names_the_picker():
    rendering = render_values(ROUTED)
    pool = manifest(rendering, "InferencePool")
    server = next(d for d in all_of(rendering, "Deployment") if d["metadata"]["name"] == "codellama-7b")
    pod_labels = server["spec"]["template"]["metadata"]["labels"]
    assert pool["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    picker_service = next(s for s in all_of(rendering, "Service") if s["metadata"]["name"] == "codellama-7b-epp")
    assert pool["spec"]["endpointPickerRef"] == {"name": "codellama-7b-epp", "port": {"number": EXT_PROC_PORT}, "failureMode": "FailOpen"}
    assert {"name": "grpc-ext-proc", "port": EXT_PROC_PORT, "protocol": "TCP"} in picker_service["spec"]["ports"]
    # The picker's pods are not the pool's: its selector must not pick the server.
    picker = next(d for d in all_of(rendering, "Deployment") if d["metadata"]["name"] == "codellama-7b-epp")
    assert not pool["spec"]["selector"]["matchLabels"].items() <= picker["spec"]["template"]["metadata"]["labels"].items()
    assert picker_service["spec"]["selector"].items() <= picker["spec"]["template"]["metadata"]["labels"].items()
    assert_schema_valid(rendering)


def test_the_route_sends_to_the_pool_instead_of_the_service():
    route = manifest(render_values(ROUTED), "HTTPRoute")
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "codellama-7b"}]
    assert rule["timeouts"] == {"request": "3600s"}
    assert route["spec"]["parentRefs"] == [{"name": "inference-gateway", "namespace": "gateways"}]


@pytest.mark.parametrize("mode", ["FailOpen", "FailClose"])
def test_the_failure_mode_reaches_the_pool(mode):
    pool = manifest(render_values(with_routing(failureMode=mode)), "InferencePool")
    assert pool["spec"]["endpointPickerRef"]["failureMode"] == mode


def test_the_picker_may_read_its_pool_and_the_pods_and_nothing_cluster_wide():
    rendering = render_values(ROUTED)
    (role,) = all_of(rendering, "Role")
    granted = {(group, resource) for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]}
    assert {("inference.networking.k8s.io", "inferencepools"), ("", "pods")} <= granted
    assert all(set(rule["verbs"]) == {"get", "watch", "list"} for rule in role["rules"])
    assert not {m["kind"] for m in rendering.manifests} & {"ClusterRole", "ClusterRoleBinding"}
    (binding,) = all_of(rendering, "RoleBinding")
    assert binding["subjects"][0]["name"] == "codellama-7b-epp"
    picker = next(d for d in all_of(rendering, "Deployment") if d["metadata"]["name"] == "codellama-7b-epp")
    assert picker["spec"]["template"]["spec"]["serviceAccountName"] == "codellama-7b-epp"


def test_several_pickers_elect_a_leader_and_may_hold_the_lease():
    rendering = render_values(with_routing(picker={"replicas": 2}))
    assert "--ha-enable-leader-election" in picker_args(parse_config(with_routing(picker={"replicas": 2})))
    roles = {role["metadata"]["name"]: role for role in all_of(rendering, "Role")}
    lease = roles["codellama-7b-epp-leader-election"]
    assert any("leases" in rule["resources"] for rule in lease["rules"])
    assert_schema_valid(rendering)


def test_a_new_vllm_tag_leaves_the_picker_unchanged():
    def picker(tag: str) -> dict[str, Any]:
        rendering = render_values({**ROUTED, "image": {"tag": tag}})
        return next(d for d in all_of(rendering, "Deployment") if d["metadata"]["name"] == "codellama-7b-epp")

    assert picker("v0.30.0") == picker("v0.31.0")


def test_a_changed_picker_config_restarts_the_picker():
    def annotation(values: dict[str, Any]) -> str:
        rendering = render_values(values)
        picker = next(d for d in all_of(rendering, "Deployment") if d["metadata"]["name"] == "codellama-7b-epp")
        return picker["spec"]["template"]["metadata"]["annotations"]["vllm-serving/picker-config-checksum"]

    assert annotation(ROUTED) != annotation(with_routing(scorers={"prefixCache": 5}))


# --- the picker's config against the pinned release ----------------------------------------------


def test_the_default_scorers_are_the_upstream_defaults_and_fit_vllm():
    """Weights as the extension's own default config (pkg/epp/config/loader/defaults.go, loadDefaultConfig)."""
    document = picker_config(parse_config(ROUTED))
    (profile,) = document["schedulingProfiles"]
    weights = {ref["pluginRef"]: ref.get("weight") for ref in profile["plugins"]}
    assert weights == {"prefix-cache-scorer": 3, "kv-cache-utilization-scorer": 2, "queue-scorer": 2, "max-score-picker": None}


@pytest.mark.parametrize(
    "values",
    [ROUTED, SCALE_TO_ZERO, with_routing(scorers={"prefixCache": 0}), with_routing(picker={"replicas": 3})],
    ids=["default", "scale-to-zero", "no-prefix-scorer", "ha"],
)
def test_every_rendered_picker_config_is_one_the_pinned_release_accepts(values):
    document = picker_config(parse_config(values))
    assert check_picker_config(document) == []
    flags = {arg.split("=", 1)[0][2:] for arg in picker_args(parse_config(values)) if arg.startswith("--")}
    assert flags <= set(plugin_table()["flags"])


def test_a_zero_weight_leaves_the_scorer_out():
    document = picker_config(parse_config(with_routing(scorers={"kvCacheUtilization": 0})))
    assert "kv-cache-utilization-scorer" not in {plugin["type"] for plugin in document["plugins"]}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["plugins"].append({"type": "prefix-scorer"}), "type 'prefix-scorer' is not registered"),
        (lambda d: d["plugins"][0].update(parameters={"blockSizeToken": 16}), "parameter(s) blockSizeToken not read"),
        (lambda d: d.update(featureGates=["flowcontrol"]), "'flowcontrol' is not a feature gate"),
        (lambda d: d["schedulingProfiles"][0]["plugins"].append({"pluginRef": "lora-affinity-scorer"}), "names no plugin"),
        (lambda d: d.update(flowControl={"defaultRequestTTL": "10 min"}), "flowControl is set but the flowControl feature gate is off"),
        (lambda d: d.update(scheduling=[]), "unknown field 'scheduling'"),
    ],
)
def test_the_check_catches_what_the_picker_would_refuse_or_ignore(change, expected):
    document = picker_config(parse_config(ROUTED))
    change(document)
    assert any(expected in problem for problem in check_picker_config(document)), check_picker_config(document)


def test_the_prefix_scorer_takes_the_prefix_producers_parameters():
    """pkg/epp/config/loader/configloader.go, instantiatePlugins: the scorer's parameters create the producer."""
    table = plugin_table()["plugins"]
    assert table["prefix-cache-scorer"]["parameters"] == table["approx-prefix-cache-producer"]["parameters"]
    assert "blockSizeTokens" in table["prefix-cache-scorer"]["parameters"]
    assert table["queue-scorer"]["parameters"] == [] == table["kv-cache-utilization-scorer"]["parameters"]


def test_render_validate_checks_the_picker_config_in_its_configmap():
    from vllm_serving.validate import validate_manifests

    rendering = render_values(ROUTED)
    config_map = next(m for m in all_of(rendering, "ConfigMap") if routing_module.PICKER_CONFIG_FILE in (m.get("data") or {}))
    assert validate_manifests([config_map]) == []
    broken = copy.deepcopy(config_map)
    broken["data"][routing_module.PICKER_CONFIG_FILE] = broken["data"][routing_module.PICKER_CONFIG_FILE].replace(
        "queue-scorer", "queue-depth-scorer"
    )
    assert any("queue-depth-scorer" in line for line in validate_manifests([broken]))


def test_the_validator_and_the_component_name_the_config_key_alike():
    assert picker_check.PICKER_CONFIG_FILE == routing_module.PICKER_CONFIG_FILE


def test_the_metric_names_the_picker_reads_are_vllms():
    """The names the pinned extractor reads from every server pod (docs/routing.md lists them):
    each one vLLM's PrometheusStatLogger registers (vllm/v1/metrics/loggers.py)."""
    metrics = plugin_table()["vllmMetrics"]
    assert metrics["QueuedRequestsSpec"] == "vllm:num_requests_waiting"
    assert metrics["RunningRequestsSpec"] == "vllm:num_requests_running"
    assert metrics["KVUsageSpec"] == "vllm:kv_cache_usage_perc"
    assert metrics["LoRASpec"] == "vllm:lora_requests_info"
    assert metrics["CacheInfoSpec"] == "vllm:cache_config_info"


# --- config errors -------------------------------------------------------------------------------


def test_routing_needs_the_http_route():
    values = {**KEY, "model": SHARED_MODEL, "routing": {"enabled": True}}
    assert "httpRoute.parentRefs" in problems(values)["routing.enabled"]


@pytest.mark.parametrize("key", ["routeByModel", "flowControl", "runtimeLora"])
def test_what_the_picker_does_needs_routing_on(key):
    setting = {"enabled": True} if key != "routeByModel" else True
    values = {**KEY, "model": SHARED_MODEL, "routing": {key: setting}}
    found = problems(values)
    assert any("needs routing.enabled" in message for message in found.values()), found


def test_bad_routing_values_are_named():
    found = problems({**ROUTED, "routing": {"enabled": True, "failureMode": "FailSafe", "picker": {"replicas": 0}}})
    assert "FailOpen" in found["routing.failureMode"]
    assert "routing.picker.replicas" in found


# --- model routing and runtime LoRA --------------------------------------------------------------


def test_route_by_model_matches_the_base_model_header_and_lists_the_models_for_the_router():
    rendering = render_values({**with_routing(routeByModel=True), "lora": {"adapters": [
        {"name": "sql", "source": "huggingface", "huggingface": {"id": "org/sql-lora"}}
    ]}})
    (rule,) = manifest(rendering, "HTTPRoute")["spec"]["rules"]
    assert all(match["headers"] == [{"type": "Exact", "name": BASE_MODEL_HEADER, "value": "codellama-7b"}] for match in rule["matches"])
    names = next(m for m in all_of(rendering, "ConfigMap") if m["metadata"]["name"] == "codellama-7b-epp-models")
    assert names["metadata"]["labels"]["inference.networking.k8s.io/bbr-managed"] == "true"
    assert names["data"]["baseModel"] == "codellama-7b"
    assert yaml.safe_load(names["data"]["adapters"]) == ["sql"]
    # With LoRA the picker also prefers replicas that hold the adapter.
    config_map = next(m for m in all_of(rendering, "ConfigMap") if routing_module.PICKER_CONFIG_FILE in (m.get("data") or {}))
    assert "lora-affinity-scorer" in config_map["data"][routing_module.PICKER_CONFIG_FILE]
    assert_schema_valid(rendering)


def test_runtime_lora_sends_the_adapter_api_to_no_backend():
    rendering = render_values(with_routing(runtimeLora={"enabled": True, "adapterNames": ["support"]}))
    rules = manifest(rendering, "HTTPRoute")["spec"]["rules"]
    guard = [rule for rule in rules if "backendRefs" not in rule]
    assert len(guard) == 1
    assert {match["path"]["value"] for match in guard[0]["matches"]} == set(RUNTIME_LORA_PATHS)
    assert all(match["path"]["type"] == "PathPrefix" for match in guard[0]["matches"])
    assert_schema_valid(rendering)


@pytest.mark.parametrize(
    "exposure",
    [{"ingress": {"enabled": True, "host": "llm.example.com"}}, {"service": {"type": "LoadBalancer"}}],
    ids=["ingress", "load-balancer"],
)
def test_runtime_lora_is_refused_where_the_adapter_api_would_be_exposed(exposure):
    found = problems({**with_routing(runtimeLora={"enabled": True}), **exposure})
    assert "load_lora_adapter" in found["routing.runtimeLora.enabled"]


def test_runtime_adapter_names_must_be_new():
    values = {**with_routing(runtimeLora={"enabled": True, "adapterNames": ["sql", "codellama-7b"]}),
              "lora": {"adapters": [{"name": "sql", "source": "huggingface", "huggingface": {"id": "org/sql"}}]}}
    found = problems(values)
    assert "used twice" in found["routing.runtimeLora.adapterNames[0]"]
    assert "used twice" in found["routing.runtimeLora.adapterNames[1]"]


# --- scale to zero -------------------------------------------------------------------------------


def test_scale_to_zero_queues_requests_longer_than_a_replica_takes_to_start():
    config = parse_config(SCALE_TO_ZERO)
    start = replica_start_seconds(config)
    timeout = queue_timeout_seconds(config)
    assert start is not None and timeout is not None and timeout > start
    document = picker_config(config)
    assert document["featureGates"] == ["flowControl"]
    assert document["flowControl"] == {"defaultRequestTTL": f"{timeout}s"}
    line = routing_line(config)
    assert line and f"{timeout / 60:.1f} min" in line and f"{start / 60:.1f} min" in line


def test_scale_to_zero_scales_on_the_pickers_queue():
    rendering = render_values(SCALE_TO_ZERO)
    scaled = manifest(rendering, "ScaledObject")
    assert scaled["spec"]["minReplicaCount"] == 0
    queued = next(t for t in scaled["spec"]["triggers"] if t["name"] == "queued-requests")
    assert QUEUE_METRIC in queued["metadata"]["query"] and 'inference_pool="codellama-7b"' in queued["metadata"]["query"]
    # Prometheus finds the picker's metrics beside the server's.
    monitors = {m["metadata"]["name"] for m in all_of(rendering, "ServiceMonitor")}
    assert monitors == {"codellama-7b", "codellama-7b-epp"}
    assert_schema_valid(rendering)


def test_without_the_queue_no_queue_trigger():
    config = parse_config(SCALE_TO_ZERO)
    assert [t["name"] for t in triggers(config.autoscaling, "default", "codellama-7b")] == ["waiting-requests"]


def test_scale_to_zero_with_routing_needs_the_queue():
    values = {**SCALE_TO_ZERO, "routing": {"enabled": True}}
    assert "minReplicas 0" in problems(values)["routing.flowControl.enabled"]


def test_a_queue_shorter_than_a_replica_start_is_refused():
    values = {**SCALE_TO_ZERO, "routing": {"enabled": True, "flowControl": {"enabled": True, "queueTimeoutSeconds": 30}}}
    assert "predicted start of a replica" in problems(values)["routing.flowControl.queueTimeoutSeconds"]


def test_the_gateway_must_wait_longer_than_the_queue():
    values = {**SCALE_TO_ZERO, "httpRoute": {**ROUTE, "requestTimeout": "5m"},
              "routing": {"enabled": True, "flowControl": {"enabled": True, "queueTimeoutSeconds": 600}}}
    assert "queue timeout (600 s)" in problems(values)["httpRoute.requestTimeout"]


def test_the_queue_timeout_needs_a_size_or_a_value():
    model = {key: value for key, value in SHARED_MODEL.items() if key != "size"}
    values = {**SCALE_TO_ZERO, "model": model}
    assert "model.size" in problems(values)["routing.flowControl.queueTimeoutSeconds"]


def test_scale_to_zero_with_routing_needs_the_queue_metric_scraped():
    values = {**SCALE_TO_ZERO, "metrics": {}}
    assert "queue metric" in problems(values)["autoscaling.minReplicas"]


def server_container(rendering) -> dict[str, Any]:
    server = next(d for d in all_of(rendering, "Deployment") if d["metadata"]["name"] == "codellama-7b")
    return next(c for c in server["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm")


def test_runtime_lora_turns_lora_on_and_points_the_resolver_at_the_volume():
    rendering = render_values(with_routing(runtimeLora={"enabled": True}))
    server = server_container(rendering)
    env = env_of(server)
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env["VLLM_LORA_RESOLVER_CACHE_DIR"] == "/lora-runtime"
    assert "--enable-lora" in server["args"] and "--lora-modules" not in server["args"]
    mount = next(m for m in server["volumeMounts"] if m["mountPath"] == "/lora-runtime")
    assert mount == {"name": "model", "mountPath": "/lora-runtime", "subPath": "CodeLlama-7b-Instruct-hf/lora-runtime", "readOnly": True}


def test_without_runtime_lora_the_server_has_no_runtime_adapter_api():
    server = server_container(render_values(ROUTED))
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in env_of(server)
    assert "--enable-lora" not in server.get("args", [])


# --- the example stacks --------------------------------------------------------------------------


def test_the_two_routed_examples_share_one_gateway_and_split_it_by_model():
    from vllm_serving.render import render
    from vllm_serving.stack_file import STACKS_DIR

    routes = {}
    for stack in ("llama-3-8b-routed", "qwen-routed"):
        rendering = render(STACKS_DIR / f"Pulumi.{stack}.yaml")
        assert_schema_valid(rendering)
        route = manifest(rendering, "HTTPRoute")
        routes[stack] = route
        pool = manifest(rendering, "InferencePool")
        served = rendering.outputs["servedModelName"]
        (to_pool,) = [rule for rule in route["spec"]["rules"] if "backendRefs" in rule]
        assert to_pool["backendRefs"][0]["name"] == pool["metadata"]["name"]
        assert {h["value"] for m in to_pool["matches"] for h in m["headers"]} == {served}
    assert routes["llama-3-8b-routed"]["spec"]["parentRefs"] == routes["qwen-routed"]["spec"]["parentRefs"]


@pytest.mark.parametrize("args", [["--api-server-count=2"], ["--api-server-count", "4"], ["--api_server_count=2"]])
def test_runtime_lora_is_refused_with_several_api_servers(args):
    values = {**with_routing(runtimeLora={"enabled": True}), "server": {"extraArgs": args}}
    assert "one API server process" in problems(values)["server.extraArgs[0]"]


def test_one_api_server_is_fine_with_runtime_lora():
    parse_config({**with_routing(runtimeLora={"enabled": True}), "server": {"extraArgs": ["--api-server-count=1"]}})


# --- the server's allow-list admits what the picker reads ----------------------------------------


def test_the_picker_reads_metrics_without_the_key_only_where_routing_is_on():
    """The picker scrapes each pod's /metrics with no credentials: with routing the allow-list opens
    /metrics (as for Prometheus); without it, a keyed stack's /metrics stays behind the key."""
    import json

    def policy(values: dict[str, Any]) -> dict[str, Any]:
        server = next(d for d in all_of(render_values(values), "Deployment") if d["metadata"]["name"] == "codellama-7b")
        return json.loads(env_of(server["spec"]["template"]["spec"]["containers"][0])["VLLM_SERVING_SURFACE"])

    assert policy(ROUTED)["metricsOpen"] is True
    assert policy({**KEY, "model": SHARED_MODEL, "httpRoute": ROUTE})["metricsOpen"] is False
