"""Autoscaling (KEDA), metrics (ServiceMonitor, PodMonitor, scrape annotations) and disruption
(PodDisruptionBudget, NetworkPolicy), read off the rendered resources."""

from __future__ import annotations

import pytest

from components.config import parse_config
from tests.conftest import HF_MODEL, assert_schema_valid, manifest, problems, render_values
from vllm_serving.crd_schemas import validate_custom_resource
from vllm_serving.render import render
from vllm_serving.stack_file import STACKS_DIR

SHARED_MODEL = {**HF_MODEL, "volume": {**HF_MODEL["volume"], "accessModes": ["ReadWriteMany"]}}
PROMETHEUS = "http://prometheus.monitoring.svc:9090"
SCALING = {"enabled": True, "prometheusAddress": PROMETHEUS, "minReplicas": 1, "maxReplicas": 3}
BUDGET = {"enabled": True}
SELECTOR = {
    "app.kubernetes.io/name": "vllm",
    "app.kubernetes.io/instance": "codellama-7b",
    "app.kubernetes.io/component": "server",
}


def scaled(**scaling):
    return render_values({"model": SHARED_MODEL, "namespace": "llm", "autoscaling": {**SCALING, **scaling}})


# --- autoscaling ---------------------------------------------------------------------------------


def test_scaled_object_scales_the_deployment_between_min_and_max():
    rendering = scaled()
    spec = manifest(rendering, "ScaledObject")["spec"]
    deployment = manifest(rendering, "Deployment")
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)
    assert manifest(rendering, "ScaledObject")["metadata"]["namespace"] == "llm"
    assert_schema_valid(rendering)


def test_scaling_follows_queued_requests_of_this_model_only():
    (trigger,) = manifest(scaled(targetWaitingRequests=4), "ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"
    assert trigger["metadata"] == {
        "serverAddress": PROMETHEUS,
        "query": 'sum(vllm:num_requests_waiting{namespace="llm",model_name="codellama-7b"})',
        # AverageValue: KEDA divides the sum by the replicas, so this is a target per replica.
        "threshold": "4",
    }


def test_running_requests_add_a_second_trigger_when_targeted():
    triggers = manifest(scaled(targetRunningRequests=16), "ScaledObject")["spec"]["triggers"]
    assert [t["name"] for t in triggers] == ["waiting-requests", "running-requests"]
    running = triggers[1]["metadata"]
    assert running["query"] == 'sum(vllm:num_requests_running{namespace="llm",model_name="codellama-7b"})'
    assert running["threshold"] == "16"


def test_scale_down_waits_for_the_cooldown_at_every_step():
    spec = manifest(scaled(cooldownSeconds=900), "ScaledObject")["spec"]
    assert spec["cooldownPeriod"] == 900
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 900}


def test_hpa_stabilization_is_capped_at_the_hour_kubernetes_allows():
    rendering = scaled(cooldownSeconds=7200)
    spec = manifest(rendering, "ScaledObject")["spec"]
    assert spec["cooldownPeriod"] == 7200
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 3600
    assert_schema_valid(rendering)


def test_deployment_leaves_replicas_to_keda():
    # Pulumi would otherwise set spec.replicas back on every `pulumi up`, undoing KEDA's scaling.
    assert "replicas" not in manifest(scaled(), "Deployment")["spec"]
    assert manifest(render_values({"model": HF_MODEL, "replicaCount": 1}), "Deployment")["spec"]["replicas"] == 1


def test_autoscaling_needs_the_prometheus_address():
    found = problems({"model": SHARED_MODEL, "autoscaling": {"enabled": True}})
    assert found["autoscaling.prometheusAddress"] == (
        "required when autoscaling.enabled is true: the http(s) URL of the Prometheus that scrapes vLLM"
    )
    found = problems({"model": SHARED_MODEL, "autoscaling": {**SCALING, "prometheusAddress": "prometheus:9090"}})
    assert "autoscaling.prometheusAddress" in found


def test_autoscaling_min_may_not_exceed_max():
    found = problems({"model": SHARED_MODEL, "autoscaling": {**SCALING, "minReplicas": 4, "maxReplicas": 2}})
    assert found["autoscaling.minReplicas"] == "4 is more than maxReplicas 2"


def test_autoscaling_beyond_one_replica_needs_a_shared_volume():
    found = problems({"model": HF_MODEL, "autoscaling": SCALING})
    assert found["autoscaling.maxReplicas"].startswith("3 replicas cannot share a ReadWriteOnce model volume")
    assert parse_config({"model": HF_MODEL, "autoscaling": {**SCALING, "maxReplicas": 1}}).autoscaling.maxReplicas == 1


def test_autoscaling_bounds_are_checked_per_field():
    found = problems({"model": SHARED_MODEL, "autoscaling": {**SCALING, "maxReplicas": 0, "targetWaitingRequests": 0}})
    assert "autoscaling.maxReplicas" in found and "autoscaling.targetWaitingRequests" in found


# --- metrics -------------------------------------------------------------------------------------


def test_service_monitor_selects_the_service_and_scrapes_its_http_port():
    rendering = render_values({
        "model": HF_MODEL,
        "metrics": {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kube-prometheus-stack"}}},
    })
    monitor = manifest(rendering, "ServiceMonitor")
    service = manifest(rendering, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert monitor["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert SELECTOR.items() <= service["metadata"]["labels"].items()
    assert "http" in [port["name"] for port in service["spec"]["ports"]]
    # The label the Prometheus resource selects monitors by, beside the standard ones.
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["metadata"]["labels"]["app.kubernetes.io/instance"] == "codellama-7b"
    assert not rendering.by_kind("PodMonitor")
    assert_schema_valid(rendering)


def test_pod_monitor_selects_the_server_pods():
    rendering = render_values({"model": HF_MODEL, "metrics": {"podMonitor": {"enabled": True}}})
    monitor = manifest(rendering, "PodMonitor")
    pod_labels = manifest(rendering, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert monitor["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert SELECTOR.items() <= pod_labels.items()
    assert not rendering.by_kind("ServiceMonitor")
    assert_schema_valid(rendering)


def test_monitor_interval_must_be_a_duration():
    found = problems({"model": HF_MODEL, "metrics": {"serviceMonitor": {"enabled": True, "interval": "often"}}})
    assert "'often' is not a Prometheus duration" in found["metrics.serviceMonitor.interval"]


def test_scrape_annotations_on_the_server_pods():
    pod = manifest(render_values({"model": HF_MODEL, "metrics": {"scrapeAnnotations": True}}), "Deployment")
    annotations = pod["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == "/metrics"
    plain = manifest(render_values({"model": HF_MODEL}), "Deployment")
    assert "annotations" not in plain["spec"]["template"]["metadata"]


# --- disruption ----------------------------------------------------------------------------------


# Where the budget and the policy were, in the engine's form, while one `Disruption` component
# held both (tests/snapshots/ before they became components of their own).
FORMER_URNS = {
    "PodDisruptionBudget": "urn:pulumi:llama-3-70b-production::vllm-serving::vllm-serving:index:VllmServing"
    "$vllm-serving:index:Disruption$kubernetes:policy/v1:PodDisruptionBudget::llama-3-70b-disruption-pdb",
    "NetworkPolicy": "urn:pulumi:llama-3-70b-production::vllm-serving::vllm-serving:index:VllmServing"
    "$vllm-serving:index:Disruption$kubernetes:networking.k8s.io/v1:NetworkPolicy::llama-3-70b-disruption-networkpolicy",
}


@pytest.mark.parametrize("kind", sorted(FORMER_URNS))
def test_budget_and_policy_are_adopted_from_their_former_component(kind):
    # A changed parent changes the URN; the former one as an alias makes `pulumi up` adopt the
    # existing object instead of deleting it and creating a new one.
    resource = render(STACKS_DIR / "Pulumi.llama-3-70b-production.yaml").one(kind)
    assert {"urn": FORMER_URNS[kind]} in resource.options["aliases"]
    assert resource.urn != FORMER_URNS[kind] and ":index:Disruption" not in resource.urn


def test_budget_protects_replicas_that_share_the_load():
    rendering = render_values({"model": SHARED_MODEL, "replicaCount": 2, "podDisruptionBudget": BUDGET})
    budget = manifest(rendering, "PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}}
    assert budget["spec"]["selector"]["matchLabels"] == manifest(rendering, "Deployment")["spec"]["selector"]["matchLabels"]
    assert_schema_valid(rendering)


def test_budget_follows_the_autoscaling_maximum():
    rendering = render_values({
        "model": SHARED_MODEL, "autoscaling": SCALING, "podDisruptionBudget": BUDGET,
    })
    assert manifest(rendering, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    # With autoscaling, its maximum counts, not replicaCount (which KEDA overrides).
    single = render_values({
        "model": SHARED_MODEL, "replicaCount": 2, "autoscaling": {**SCALING, "maxReplicas": 1}, "podDisruptionBudget": BUDGET,
    })
    assert not single.by_kind("PodDisruptionBudget")


def test_no_budget_for_a_single_replica_or_when_disabled():
    assert not render_values({"model": HF_MODEL, "podDisruptionBudget": BUDGET}).by_kind("PodDisruptionBudget")
    disabled = render_values({"model": SHARED_MODEL, "replicaCount": 2, "podDisruptionBudget": {"enabled": False}})
    assert not disabled.by_kind("PodDisruptionBudget")


def test_budget_max_unavailable_from_config():
    rendering = render_values({
        "model": SHARED_MODEL, "replicaCount": 4, "podDisruptionBudget": {**BUDGET, "maxUnavailable": 2},
    })
    assert manifest(rendering, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 2


def test_network_policy_admits_only_the_listed_namespaces_and_its_own_to_the_server_port():
    rendering = render_values({
        "model": HF_MODEL,
        "namespace": "llm",
        "networkPolicy": {"enabled": True, "allowedNamespaces": ["ingress-nginx", "llm", "monitoring"]},
    })
    policy = manifest(rendering, "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {"matchLabels": SELECTOR}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]
    (peer,) = rule["from"]
    assert peer == {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["llm", "ingress-nginx", "monitoring"]}
            ]
        }
    }
    assert_schema_valid(rendering)


def test_network_policy_with_no_list_admits_its_own_namespace():
    policy = manifest(render_values({"model": HF_MODEL, "networkPolicy": {"enabled": True}}), "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["default"]


def test_network_policy_admits_each_purpose_by_its_own_rule():
    rendering = render_values({
        "model": HF_MODEL, "namespace": "llm", "apiKeySecret": {"name": "key"}, "checkSecrets": False,
        "ingress": {"enabled": True, "host": "a.example"},
        "networkPolicy": {"enabled": True, "ingressNamespaces": ["ingress-nginx"], "monitoringNamespaces": ["monitoring"]},
    })
    rules = manifest(rendering, "NetworkPolicy")["spec"]["ingress"]
    admitted = [rule["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] for rule in rules]
    assert admitted == [["llm"], ["ingress-nginx"], ["monitoring"]]
    assert all(rule["ports"] == [{"port": 8000, "protocol": "TCP"}] for rule in rules)


def test_ingress_namespaces_need_an_ingress_or_route():
    found = problems({"model": HF_MODEL, "networkPolicy": {"enabled": True, "ingressNamespaces": ["ingress-nginx"]}})
    assert "neither ingress nor httpRoute is enabled" in found["networkPolicy.ingressNamespaces"]
    found = problems({"model": HF_MODEL, "networkPolicy": {"enabled": True, "monitoringNamespaces": ["Bad_NS"]}})
    assert found["networkPolicy.monitoringNamespaces[0]"] == "'Bad_NS' is not a namespace name"


def test_network_policy_namespaces_must_be_namespace_names():
    found = problems({"model": HF_MODEL, "networkPolicy": {"enabled": True, "allowedNamespaces": ["ok", "Not_OK"]}})
    assert found["networkPolicy.allowedNamespaces[1]"] == "'Not_OK' is not a namespace name"


# --- the CRD schemas refuse what the cluster would ------------------------------------------------


def test_scaled_object_schema_refuses_a_misspelt_field_and_a_trigger_without_metadata():
    scaled_object = manifest(scaled(), "ScaledObject")
    scaled_object["spec"]["maxReplicas"] = 3
    assert validate_custom_resource(scaled_object) == ["spec: unknown field(s) 'maxReplicas'"]
    scaled_object = manifest(scaled(), "ScaledObject")
    del scaled_object["spec"]["triggers"][0]["metadata"]
    assert validate_custom_resource(scaled_object) == ["spec.triggers.0: 'metadata' is a required property"]
    scaled_object = manifest(scaled(), "ScaledObject")
    scaled_object["spec"]["triggers"][0]["metadata"]["threshold"] = 5
    assert validate_custom_resource(scaled_object) == ["spec.triggers.0.metadata.threshold: 5 is not of type 'string'"]


def test_monitor_schemas_refuse_a_bad_interval_and_an_unknown_field():
    rendering = render_values({
        "model": HF_MODEL, "metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}},
    })
    service_monitor = manifest(rendering, "ServiceMonitor")
    service_monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    (failure,) = validate_custom_resource(service_monitor)
    assert failure.startswith("spec.endpoints.0.interval: '30 seconds' does not match")
    pod_monitor = manifest(rendering, "PodMonitor")
    pod_monitor["spec"]["endpoints"] = pod_monitor["spec"].pop("podMetricsEndpoints")
    assert validate_custom_resource(pod_monitor) == ["spec: unknown field(s) 'endpoints'"]
