"""Exposure outside the cluster (Ingress, HTTPRoute), the external base URL, and the shipped CRD
schemas: what a user sees in the rendered resources and in the stack's outputs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from components.config import ConfigError, parse_config
from tests.conftest import HF_MODEL, assert_schema_valid, manifest, problems, render_values
from tests.examples import EXAMPLE_STACK_FILES
from vllm_serving.crd_schemas import SCHEMAS, openapi_schema, validate_custom_resource, validation_schema
from vllm_serving.render import render
from vllm_serving.stack_file import STACKS_DIR
from vllm_serving.validate import validate_manifests

PRODUCTION_KINDS = {
    "Ingress", "HTTPRoute", "ScaledObject", "ServiceMonitor", "PodMonitor", "PodDisruptionBudget", "NetworkPolicy",
}
PRODUCTION_COMPONENTS = {
    "vllm-serving:index:Exposure", "vllm-serving:index:Autoscaling",
    "vllm-serving:index:Monitoring", "vllm-serving:index:PodDisruptionBudget", "vllm-serving:index:NetworkPolicy",
}
PRODUCTION_STACK = STACKS_DIR / "Pulumi.llama-3-70b-production.yaml"
# The routed examples ask for an HTTPRoute and autoscaling too (tests/test_routing.py covers them).
ROUTED_STACKS = {STACKS_DIR / "Pulumi.llama-3-8b-routed.yaml", STACKS_DIR / "Pulumi.qwen-routed.yaml"}
OTHER_STACKS = [path for path in EXAMPLE_STACK_FILES if path != PRODUCTION_STACK and path not in ROUTED_STACKS]  # not a user's own stacks

# A public route needs an API key (or allowUnauthenticated); these tests use a Secret's.
KEY = {"apiKeySecret": {"name": "llm-api-key"}}
INGRESS = {"enabled": True, "host": "llm.example.com"}
ROUTE = {"enabled": True, "parentRefs": [{"name": "public", "namespace": "gateways"}], "hostnames": ["llm.example.com"]}


# --- every feature is off unless set ---------------------------------------------------------------


@pytest.mark.parametrize("stack_file", OTHER_STACKS, ids=lambda p: p.name)
def test_stacks_that_do_not_ask_for_production_features_render_none_of_them(stack_file: Path):
    rendering = render(stack_file)
    assert not {m["kind"] for m in rendering.manifests} & PRODUCTION_KINDS
    assert not {r.type for r in rendering.resources} & PRODUCTION_COMPONENTS
    assert rendering.outputs["externalBaseUrl"] == ""


def test_a_chart_default_config_has_every_production_feature_off():
    config = parse_config({"model": HF_MODEL})
    assert not config.ingress.enabled and not config.httpRoute.enabled
    assert not config.autoscaling.enabled and not config.networkPolicy.enabled
    assert not config.metrics.serviceMonitor.enabled and not config.metrics.podMonitor.enabled
    assert not config.metrics.scrapeAnnotations


# --- Ingress -------------------------------------------------------------------------------------


def test_ingress_routes_the_host_to_the_service_port():
    rendering = render_values({**KEY, "model": HF_MODEL, "namespace": "llm", "ingress": INGRESS})
    ingress = manifest(rendering, "Ingress")
    service = manifest(rendering, "Service")
    assert ingress["metadata"]["name"] == "codellama-7b"
    assert ingress["metadata"]["namespace"] == "llm"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "llm.example.com"
    # Only the OpenAI API: vLLM answers /invocations, /tokenize, ... without the key.
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/v1" and path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": service["metadata"]["name"], "port": {"number": 8000}}
    # No class asked for: the cluster's default IngressClass; no TLS Secret: plain HTTP.
    assert "ingressClassName" not in ingress["spec"]
    assert "tls" not in ingress["spec"]
    assert rendering.outputs["externalBaseUrl"] == "http://llm.example.com/v1"
    assert_schema_valid(rendering)


def test_ingress_with_tls_and_class_gives_an_https_base_url():
    rendering = render_values({
        **KEY,
        "model": HF_MODEL,
        "ingress": {**INGRESS, "className": "nginx", "tlsSecret": "llm-tls"},
    })
    ingress = manifest(rendering, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["llm.example.com"], "secretName": "llm-tls"}]
    assert rendering.outputs["externalBaseUrl"] == "https://llm.example.com/v1"
    assert_schema_valid(rendering)


def test_ingress_keeps_streamed_completions_open_and_unbuffered():
    annotations = manifest(render_values({**KEY, "model": HF_MODEL, "ingress": INGRESS}), "Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def test_ingress_annotations_of_the_stack_are_added_and_win():
    ingress = {
        **INGRESS,
        "annotations": {
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "7200",
            "cert-manager.io/cluster-issuer": "letsencrypt",
        },
    }
    annotations = manifest(render_values({**KEY, "model": HF_MODEL, "ingress": ingress}), "Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "7200"
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def test_ingress_path_prefix_is_part_of_the_base_url():
    rendering = render_values({**KEY, "model": HF_MODEL, "ingress": {**INGRESS, "path": "/codellama/", "tlsSecret": "t"}})
    assert manifest(rendering, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/codellama/v1"
    assert rendering.outputs["externalBaseUrl"] == "https://llm.example.com/codellama/v1"


def test_ingress_carries_the_standard_labels():
    labels = manifest(render_values({**KEY, "model": HF_MODEL, "ingress": INGRESS}), "Ingress")["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "codellama-7b"
    assert labels["app.kubernetes.io/managed-by"] == "pulumi"


def test_ingress_needs_a_host():
    found = problems({**KEY, "model": HF_MODEL, "ingress": {"enabled": True}})
    assert found["ingress.host"] == "required when ingress.enabled is true"


def test_ingress_host_must_be_a_host_name():
    found = problems({**KEY, "model": HF_MODEL, "ingress": {"enabled": True, "host": "LLM_example"}})
    assert "'LLM_example' is not a valid host name" in found["ingress.host"]


def test_a_config_error_stops_the_render_before_any_resource():
    with pytest.raises(ConfigError, match=r"ingress\.host: required when ingress\.enabled is true"):
        render_values({**KEY, "model": HF_MODEL, "ingress": {"enabled": True}})


# --- HTTPRoute -----------------------------------------------------------------------------------


def test_http_route_attaches_to_the_gateway_and_sends_to_the_service():
    rendering = render_values({**KEY, "model": HF_MODEL, "namespace": "llm", "httpRoute": ROUTE})
    route = manifest(rendering, "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["name"] == "codellama-7b" and route["metadata"]["namespace"] == "llm"
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateways"}]
    assert route["spec"]["hostnames"] == ["llm.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"name": "codellama-7b", "port": 8000}]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    # Long enough for a long streamed generation, not the gateway's default.
    assert rule["timeouts"] == {"request": "3600s"}
    assert rendering.outputs["externalBaseUrl"] == "http://llm.example.com/v1"
    assert_schema_valid(rendering)


def test_http_route_request_timeout_and_listener_section():
    route_config = {
        **ROUTE,
        "parentRefs": [{"name": "public", "sectionName": "https"}],
        "hostnames": ["a.example.com", "b.example.com"],
        "requestTimeout": "2h",
    }
    rendering = render_values({**KEY, "model": HF_MODEL, "httpRoute": route_config})
    route = manifest(rendering, "HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"name": "public", "sectionName": "https"}]
    assert route["spec"]["rules"][0]["timeouts"] == {"request": "2h"}
    # The first hostname names the route from outside.
    assert rendering.outputs["externalBaseUrl"] == "http://a.example.com/v1"
    assert_schema_valid(rendering)


def test_http_route_without_hostnames_has_no_known_base_url():
    rendering = render_values({**KEY, "model": HF_MODEL, "httpRoute": {**ROUTE, "hostnames": []}})
    assert "hostnames" not in manifest(rendering, "HTTPRoute")["spec"]
    assert rendering.outputs["externalBaseUrl"] == ""
    assert_schema_valid(rendering)


def test_with_both_ingress_and_route_the_base_url_is_the_ingress_one():
    rendering = render_values({
        **KEY,
        "model": HF_MODEL,
        "ingress": {**INGRESS, "host": "ingress.example.com", "tlsSecret": "t"},
        "httpRoute": {**ROUTE, "hostnames": ["route.example.com"]},
    })
    assert rendering.one("Ingress") and rendering.one("HTTPRoute")
    assert rendering.outputs["externalBaseUrl"] == "https://ingress.example.com/v1"


def test_http_route_needs_a_gateway():
    found = problems({**KEY, "model": HF_MODEL, "httpRoute": {"enabled": True}})
    assert found["httpRoute.parentRefs"] == "name at least one Gateway when httpRoute.enabled is true"


def test_http_route_timeout_must_be_a_duration():
    found = problems({**KEY, "model": HF_MODEL, "httpRoute": {**ROUTE, "requestTimeout": "an hour"}})
    assert "'an hour' is not a Gateway API duration" in found["httpRoute.requestTimeout"]


def test_in_cluster_outputs_are_unchanged_by_exposure():
    rendering = render_values({**KEY, "model": HF_MODEL, "namespace": "llm", "ingress": INGRESS})
    assert rendering.outputs["openaiBaseUrl"] == "http://codellama-7b.llm.svc.cluster.local:8000/v1"


# --- what the API key guards ----------------------------------------------------------------------


def test_routes_carry_the_openai_api_and_the_listed_paths_only():
    rendering = render_values({
        **KEY,
        "model": HF_MODEL,
        "ingress": {**INGRESS, "extraPaths": ["/tokenize", "/detokenize"]},
        "httpRoute": {**ROUTE, "extraPaths": ["/tokenize"]},
    })
    paths = [p["path"] for p in manifest(rendering, "Ingress")["spec"]["rules"][0]["http"]["paths"]]
    assert paths == ["/v1", "/tokenize", "/detokenize"]
    matches = manifest(rendering, "HTTPRoute")["spec"]["rules"][0]["matches"]
    assert [m["path"]["value"] for m in matches] == ["/v1", "/tokenize"]
    assert_schema_valid(rendering)


def test_ingress_limits_the_request_body_by_default_and_as_set():
    default = manifest(render_values({**KEY, "model": HF_MODEL, "ingress": INGRESS}), "Ingress")
    assert default["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "10m"
    larger = manifest(
        render_values({**KEY, "model": HF_MODEL, "ingress": {**INGRESS, "maxRequestBodySize": "64m"}}), "Ingress"
    )
    assert larger["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "64m"


@pytest.mark.parametrize("size", ["10 MB", "-1", "10mb", "1t", True])
def test_a_request_body_limit_must_be_an_nginx_size(size):
    found = problems({**KEY, "model": HF_MODEL, "ingress": {**INGRESS, "maxRequestBodySize": size}})
    assert "is not an nginx size" in found["ingress.maxRequestBodySize"]


@pytest.mark.parametrize("path", ["v1", "/v1 ", "/a b", "/v1\n", "/../metrics", "/v1/(.*)", ""])
def test_a_routed_path_must_be_an_absolute_plain_path(path):
    found = problems({**KEY, "model": HF_MODEL, "ingress": {**INGRESS, "path": path, "extraPaths": [path]}})
    assert "is not a valid ingress path" in found["ingress.path"]
    assert "is not a valid ingress path" in found["ingress.extraPaths"]


@pytest.mark.parametrize(
    ("exposure", "key"),
    [
        ({"ingress": INGRESS}, "ingress.enabled"),
        ({"httpRoute": ROUTE}, "httpRoute.enabled"),
        ({"service": {"type": "LoadBalancer"}}, "service.type"),
        ({"service": {"type": "NodePort"}}, "service.type"),
    ],
)
def test_a_public_server_without_an_api_key_is_refused_unless_allowed(exposure, key):
    found = problems({"model": HF_MODEL, **exposure})
    assert "without an API key" in found[key] and "allowUnauthenticated" in found[key]
    parse_config({"model": HF_MODEL, **exposure, "allowUnauthenticated": True})
    parse_config({"model": HF_MODEL, **exposure, "apiKeySecret": {"name": "k"}})


def test_a_cluster_internal_server_needs_no_api_key():
    parse_config({"model": HF_MODEL, "service": {"type": "ClusterIP"}})


# --- the production example stack ------------------------------------------------------------------


def test_production_example_renders_every_feature_schema_valid():
    rendering = render(PRODUCTION_STACK)
    kinds = sorted(m["kind"] for m in rendering.manifests)
    assert kinds == sorted([
        "ConfigMap", "ConfigMap", "Deployment", "Ingress", "Job", "NetworkPolicy", "PersistentVolumeClaim",
        "PodDisruptionBudget", "ScaledObject", "Service", "ServiceMonitor",
    ])
    assert_schema_valid(rendering)
    assert rendering.outputs["externalBaseUrl"] == "https://llama-70b.example.com/v1"
    server = next(
        c for c in manifest(rendering, "Deployment")["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm"
    )
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert manifest(rendering, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteMany"]
    scaled = manifest(rendering, "ScaledObject")["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (1, 3)


# --- the shipped CRD schemas ------------------------------------------------------------------------


def route_manifest():
    return manifest(render_values({**KEY, "model": HF_MODEL, "httpRoute": ROUTE}), "HTTPRoute")


def schema_nodes(node):
    """Every schema inside a schema (not the property-name maps themselves)."""
    yield node
    for key, value in node.items():
        if key == "properties":
            for sub in value.values():
                yield from schema_nodes(sub)
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            yield from schema_nodes(value)
        elif key == "anyOf":
            for sub in value:
                yield from schema_nodes(sub)


def test_every_shipped_schema_converts_to_a_valid_draft_7_schema():
    import jsonschema

    for api_version, kind in SCHEMAS:
        jsonschema.Draft7Validator.check_schema(validation_schema(api_version, kind))


def test_every_shipped_schema_is_a_structural_object_schema_without_descriptions():
    for (api_version, kind), shipped in SCHEMAS.items():
        schema = openapi_schema(api_version, kind)
        assert schema["type"] == "object", shipped.file
        assert {"apiVersion", "kind", "metadata", "spec"} <= set(schema["properties"]), shipped.file
        nodes = list(schema_nodes(schema))
        assert not [node for node in nodes if "description" in node], shipped.file
        # Structural: every node says its type, or is an int-or-string.
        assert not [n for n in nodes if "type" not in n and not n.get("x-kubernetes-int-or-string")], shipped.file


def test_custom_resources_refuse_an_unknown_field():
    route = route_manifest()
    route["spec"]["rules"][0]["timeout"] = {"request": "1h"}
    failures = validate_manifests([route])
    assert failures == ["HTTPRoute/codellama-7b (gateway.networking.k8s.io/v1 CRD): spec.rules.0: unknown field(s) 'timeout'"]


def test_custom_resources_refuse_a_value_the_crd_does_not_allow():
    route = route_manifest()
    # Gateway API durations have no fractions, whatever Go's time.ParseDuration accepts.
    route["spec"]["rules"][0]["timeouts"]["request"] = "1.5h"
    (failure,) = validate_custom_resource(route)
    assert failure.startswith("spec.rules.0.timeouts.request: '1.5h' does not match")
    route = route_manifest()
    route["spec"]["rules"][0]["backendRefs"][0]["port"] = 70000
    (failure,) = validate_custom_resource(route)
    assert failure.startswith("spec.rules.0.backendRefs.0.port: 70000 is greater than the maximum")


def test_custom_resources_need_their_required_fields_and_a_valid_name():
    route = route_manifest()
    del route["spec"]["parentRefs"][0]["name"]
    route["metadata"]["name"] = "Not_A_Name"
    failures = validate_custom_resource(route)
    assert any(f.startswith("metadata.name: 'Not_A_Name' does not match") for f in failures)
    assert "spec.parentRefs.0: 'name' is a required property" in failures


def test_a_custom_resource_without_a_shipped_schema_is_reported_not_passed():
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    (failure, *_) = validate_manifests([unknown])
    assert "no schema" in failure


def test_a_rendered_resource_is_not_changed_by_validation():
    route = route_manifest()
    before = copy.deepcopy(route)
    validate_manifests([route])
    assert route == before
