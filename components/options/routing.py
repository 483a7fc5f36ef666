"""The replicas behind an InferencePool, with llm-d's endpoint picker choosing one per request.

Built on two pinned upstream releases; nothing here routes a request itself:
- the InferencePool (inference.networking.k8s.io/v1) of the Gateway API Inference Extension
  v1.5.0 (config/crd/bases/inference.networking.k8s.io_inferencepools.yaml), and its chart's
  resources for one pool (config/charts/inferencepool/templates/inferencepool.yaml, rbac.yaml;
  config/charts/epplib/templates/_deployment.yaml, _service.yaml, _rbac.yaml,
  _leader-election-rbac.yaml), which this component follows;
- the endpoint picker of llm-d's router, llm-d/llm-d-inference-scheduler v0.8.0 (05c91f0d),
  built on the extension's v1.5.0 runner (go.mod; cmd/epp/main.go): its flags are the
  runner's (pkg/epp/server/options.go, AddFlags), its config file an EndpointPickerConfig
  (apix/config/v1alpha1/endpointpickerconfig_types.go).

The Gateway sends each request to the picker over ext_proc (port 9002); the picker scrapes every
server pod's /metrics, picks one by its scorers, and the Gateway forwards the request there.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from ..config import ServingConfig
from ..labels import SERVER_PORT, common_labels, selector_labels
from ..names import picker_name
from ..server.cold_start import predict_cold_start
from ..server.leader_worker_set import LEADER_SELECTOR
from .monitoring import METRICS_PATH

POOL_API_VERSION = "inference.networking.k8s.io/v1"
POOL_GROUP = "inference.networking.k8s.io"
# The picker's ports (epplib/templates/_deployment.yaml): ext_proc, gRPC health, Prometheus.
EXT_PROC_PORT = 9002
HEALTH_PORT = 9003
PICKER_METRICS_PORT = 9090
PICKER_COMPONENT = "picker"
# The ConfigMap key; vllm_serving/crd_schemas/picker_config.py finds the config by it (a test checks both agree).
PICKER_CONFIG_FILE = "endpoint-picker.yaml"
PICKER_CONFIG_MOUNT = "/config"
# The flow control feature gate (pkg/epp/flowcontrol/config.go, FeatureGate).
FLOW_CONTROL_GATE = "flowControl"
# The picker's own queue, by pool (pkg/epp/metrics/metrics.go, flowControlQueueSize): what
# scales a pool up from zero, when vLLM's own metrics have no pod to come from.
QUEUE_METRIC = "inference_extension_flow_control_queue_size"
# The Body-Based Router (extension v1.5.0, pkg/bbr/plugins/basemodelextractor): it reads the
# ConfigMaps with this label, each a base model and its adapters, and sets this header to the
# base model of the request's `model`.
BBR_MANAGED_LABEL = "inference.networking.k8s.io/bbr-managed"
BASE_MODEL_HEADER = "X-Gateway-Base-Model-Name"
# vLLM's runtime adapter API (vllm/entrypoints/openai/api_server.py, registered only with
# VLLM_ALLOW_RUNTIME_LORA_UPDATING): the routes never reach it from outside.
RUNTIME_LORA_PATHS = ("/v1/load_lora_adapter", "/v1/unload_lora_adapter")
# A queue timeout this many times the predicted start of a replica, when none is set.
QUEUE_TIMEOUT_FACTOR = 2


def pool_name(deploy_name: str) -> str:
    return deploy_name


def replica_start_seconds(config: ServingConfig) -> float | None:
    """How long a new replica takes to answer once the model is on the volume: the image pull
    (a fresh node has no copy) and the load. The download is done before the first replica
    ever starts, so it is no part of a scale-up (components/server/cold_start.py)."""
    predicted = predict_cold_start(config)
    return predicted.pull_seconds + predicted.load_seconds if predicted else None


def queue_timeout_seconds(config: ServingConfig) -> int | None:
    """The flow control queue's time-to-live: as set, or twice the predicted replica start,
    rounded up to a minute; None when neither is known."""
    flow = config.routing.flowControl
    if flow.queueTimeoutSeconds is not None:
        return flow.queueTimeoutSeconds
    start = replica_start_seconds(config)
    return None if start is None else 60 * math.ceil(QUEUE_TIMEOUT_FACTOR * start / 60)


def flow_control_on(config: ServingConfig) -> bool:
    return config.routing.enabled and config.routing.flowControl.enabled


def routing_line(config: ServingConfig) -> str | None:
    """What `render` prints for a routed stack: the queue's limit next to the predicted start of
    a replica, so that a user sees whether a request held at zero replicas would time out."""
    if not config.routing.enabled:
        return None
    if not flow_control_on(config):
        return "routing: InferencePool with llm-d's endpoint picker; flow control off (requests are not queued)"
    timeout = queue_timeout_seconds(config)
    if timeout is None:
        return "routing: flow control on, queue timeout unknown (set model.size or routing.flowControl.queueTimeoutSeconds)"
    start = replica_start_seconds(config)
    start_text = "unknown (set model.size to predict it)" if start is None else f"{start / 60:.1f} min"
    how = "routing.flowControl.queueTimeoutSeconds" if config.routing.flowControl.queueTimeoutSeconds else (
        f"{QUEUE_TIMEOUT_FACTOR} × the predicted replica start"
    )
    zero = "; at zero replicas a request waits for the first one" if config.scale_to_zero else ""
    return (
        f"routing: a request waits up to {timeout / 60:.1f} min in the picker's queue ({how}); "
        f"predicted start of a replica {start_text} (image pull + load; the formula: README, Cold start){zero}"
    )


# --- the picker's configuration ------------------------------------------------------------------


def _scorers(config: ServingConfig) -> list[tuple[str, int]]:
    """(plugin type, weight) of each scorer that is on. Types: the extension v1.5.0's in-tree
    plugins (cmd/epp/runner/runner.go, registerInTreePlugins)."""
    weights = config.routing.scorers
    chosen = [
        ("prefix-cache-scorer", weights.prefixCache),
        ("kv-cache-utilization-scorer", weights.kvCacheUtilization),
        ("queue-scorer", weights.queueDepth),
    ]
    # vLLM publishes vllm:lora_requests_info only with LoRA on (vllm/v1/metrics/loggers.py);
    # the scorer reads it.
    if config.lora_enabled:
        chosen.append(("lora-affinity-scorer", weights.loraAffinity))
    return [(plugin, weight) for plugin, weight in chosen if weight > 0]


def picker_config(config: ServingConfig) -> dict[str, Any]:
    """The EndpointPickerConfig the picker reads at start (--config-file).

    As the extension's chart writes it (epplib/templates/_config.yaml), with the scorers chosen
    here; the picker adds what is left out (a max-score picker, the single profile handler, the
    OpenAI parser, the metrics data source: pkg/epp/config/loader/defaults.go). Checked against
    the pinned release's plugin table by vllm_serving/crd_schemas/picker_config.py.
    """
    scorers = _scorers(config)
    plugins: list[dict[str, Any]] = [{"type": plugin} for plugin, _ in scorers]
    plugins += [
        # The server's /metrics, over plain HTTP on the pool's port (the datasource's defaults,
        # pkg/epp/framework/plugins/datalayer/source/metrics/datasource.go), said once here.
        {"type": "metrics-data-source", "parameters": {"scheme": "http", "path": METRICS_PATH}},
        # vLLM is the extractor's default engine: its metric names (extractor/metrics/factories.go).
        {"type": "core-metrics-extractor"},
        {"type": "max-score-picker"},
        {"type": "single-profile-handler"},
    ]
    document: dict[str, Any] = {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": plugins,
        "schedulingProfiles": [
            {
                "name": "default",
                "plugins": [{"pluginRef": plugin, "weight": weight} for plugin, weight in scorers]
                + [{"pluginRef": "max-score-picker"}],
            }
        ],
        "dataLayer": {
            "sources": [{"pluginRef": "metrics-data-source", "extractors": [{"pluginRef": "core-metrics-extractor"}]}]
        },
    }
    if flow_control_on(config):
        flow = config.routing.flowControl
        timeout = queue_timeout_seconds(config)
        document["featureGates"] = [FLOW_CONTROL_GATE]
        document["flowControl"] = {
            # metav1.Duration: Go's time.ParseDuration text.
            **({"defaultRequestTTL": f"{timeout}s"} if timeout is not None else {}),
            **({"maxRequests": str(flow.maxRequests)} if flow.maxRequests is not None else {}),
        }
    return document


def picker_args(config: ServingConfig) -> list[str]:
    """The picker's flags (pkg/epp/server/options.go, AddFlags), as the chart passes them."""
    deploy_name = config.model.deployName
    args = [
        "--pool-name", pool_name(deploy_name),
        "--pool-namespace", config.namespace,
        "--pool-group", POOL_GROUP,
        "--config-file", f"{PICKER_CONFIG_MOUNT}/{PICKER_CONFIG_FILE}",
        "--grpc-port", str(EXT_PROC_PORT),
        "--grpc-health-port", str(HEALTH_PORT),
        "--metrics-port", str(PICKER_METRICS_PORT),
        "--tracing=false",
        # Prometheus scrapes the picker's queue metric without a token, as it scrapes vLLM's
        # /metrics: both stay inside the cluster (ClusterIP Services).
        "--metrics-endpoint-auth=false",
    ]
    if config.routing.picker.replicas > 1:
        args.append("--ha-enable-leader-election")
    return args


# --- the resources --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingArgs:
    config: ServingConfig


class Routing(pulumi.ComponentResource):
    """Outputs: `pool_name`, `picker_service_name`."""

    pool: k8s.apiextensions.CustomResource
    picker: k8s.apps.v1.Deployment
    picker_service: k8s.core.v1.Service
    model_names: k8s.core.v1.ConfigMap | None
    picker_monitor: k8s.apiextensions.CustomResource | None

    def __init__(self, name: str, args: RoutingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:Routing", name, None, opts)
        config = args.config
        self._config = config
        self._deploy_name = config.model.deployName
        self._picker = picker_name(self._deploy_name)
        # Versioned by the picker's own image: a new vLLM tag leaves the picker running.
        self._labels = common_labels(self._deploy_name, PICKER_COMPONENT, image_version(config.routing.picker.image))
        child = pulumi.ResourceOptions(parent=self)
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount", metadata=self._metadata(), opts=child
        )
        self.role, self.role_binding = self._role(name, "", self._rules())
        self.leader_role = None
        if config.routing.picker.replicas > 1:
            # Leader election (epplib/templates/_leader-election-rbac.yaml).
            self.leader_role = self._role(name, "-leader-election", [
                _rule(["coordination.k8s.io"], ["leases"], ["get", "list", "watch", "create", "update", "patch", "delete"]),
                _rule([""], ["events"], ["create", "patch"]),
            ])
        text = yaml.safe_dump(picker_config(config), sort_keys=False)
        self.picker_config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=self._metadata(), data={PICKER_CONFIG_FILE: text}, opts=child
        )
        self.picker = self._deployment(name, text)
        self.picker_service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=self._metadata(),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector_labels(self._deploy_name, PICKER_COMPONENT),
                ports=[
                    k8s.core.v1.ServicePortArgs(name="grpc-ext-proc", port=EXT_PROC_PORT, protocol="TCP"),
                    k8s.core.v1.ServicePortArgs(name="http-metrics", port=PICKER_METRICS_PORT, protocol="TCP"),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.picker]),
        )
        self.pool = self._pool(name)
        self.model_names = self._model_names(name) if config.routing.routeByModel else None
        self.picker_monitor = self._monitor(name) if config.metrics.serviceMonitor.enabled else None
        self.pool_name = pool_name(self._deploy_name)
        self.register_outputs({"poolName": self.pool_name, "pickerServiceName": self._picker})

    def _metadata(self, suffix: str = "", labels: dict[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=f"{self._picker}{suffix}", namespace=self._config.namespace, labels=labels or self._labels
        )

    def _rules(self) -> list[k8s.rbac.v1.PolicyRuleArgs]:
        """What the picker reads (inferencepool/templates/rbac.yaml, epplib/templates/_rbac.yaml):
        its pool, the pods it selects, and the optional objectives and model rewrites."""
        return [
            _rule([POOL_GROUP], ["inferencepools"], ["get", "watch", "list"]),
            _rule(["inference.networking.x-k8s.io"], ["inferenceobjectives", "inferencemodelrewrites"], ["get", "watch", "list"]),
            _rule([""], ["pods"], ["get", "watch", "list"]),
        ]

    def _role(
        self, name: str, suffix: str, rules: list[k8s.rbac.v1.PolicyRuleArgs]
    ) -> tuple[k8s.rbac.v1.Role, k8s.rbac.v1.RoleBinding]:
        child = pulumi.ResourceOptions(parent=self)
        role = k8s.rbac.v1.Role(f"{name}-role{suffix}", metadata=self._metadata(suffix), rules=rules, opts=child)
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-rolebinding{suffix}",
            metadata=self._metadata(suffix),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=self._picker, namespace=self._config.namespace)],
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=f"{self._picker}{suffix}"),
            opts=child,
        )
        return role, binding

    def _deployment(self, name: str, config_text: str) -> k8s.apps.v1.Deployment:
        config = self._config
        picker = config.routing.picker
        selector = selector_labels(self._deploy_name, PICKER_COMPONENT)
        # With leader election only the leader answers ready (epplib/templates/_deployment.yaml).
        elected = picker.replicas > 1
        liveness = k8s.core.v1.GRPCActionArgs(port=HEALTH_PORT, service="liveness" if elected else "inference-extension")
        readiness = k8s.core.v1.GRPCActionArgs(port=HEALTH_PORT, service="readiness" if elected else "inference-extension")
        annotations = {
            # A changed config restarts the picker: it reads the file once, at start.
            "vllm-serving/picker-config-checksum": _checksum(config_text),
            **({"prometheus.io/scrape": "true", "prometheus.io/port": str(PICKER_METRICS_PORT),
                "prometheus.io/path": METRICS_PATH} if config.metrics.scrapeAnnotations else {}),
        }
        return k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=self._metadata(),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=picker.replicas,
                # One active picker holds the prefix index; the old one goes before the new one
                # starts, as upstream deploys it (epplib/templates/_deployment.yaml).
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=self._labels, annotations=annotations),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=self._picker,
                        image_pull_secrets=[k8s.core.v1.LocalObjectReferenceArgs(name=secret) for secret in config.imagePullSecrets]
                        or None,
                        # "this timeout should mirror the longest grace period of the pods within the pool"
                        termination_grace_period_seconds=config.termination_grace_seconds,
                        # The image runs as 65532 (Dockerfile.epp, USER 65532:65532).
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True, seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")
                        ),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="epp",
                                image=picker.image,
                                image_pull_policy="IfNotPresent",
                                args=picker_args(config),
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(name="grpc", container_port=EXT_PROC_PORT),
                                    k8s.core.v1.ContainerPortArgs(name="grpc-health", container_port=HEALTH_PORT),
                                    k8s.core.v1.ContainerPortArgs(name="metrics", container_port=PICKER_METRICS_PORT),
                                ],
                                env=[
                                    k8s.core.v1.EnvVarArgs(
                                        name="NAMESPACE",
                                        value_from=k8s.core.v1.EnvVarSourceArgs(
                                            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="metadata.namespace")
                                        ),
                                    ),
                                    k8s.core.v1.EnvVarArgs(
                                        name="POD_NAME",
                                        value_from=k8s.core.v1.EnvVarSourceArgs(
                                            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="metadata.name")
                                        ),
                                    ),
                                ],
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": picker.cpu, "memory": picker.memory},
                                    limits={"memory": picker.memory},
                                ),
                                liveness_probe=k8s.core.v1.ProbeArgs(grpc=liveness, initial_delay_seconds=5, period_seconds=10),
                                readiness_probe=k8s.core.v1.ProbeArgs(grpc=readiness, period_seconds=2),
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    allow_privilege_escalation=False,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                                ),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(name="config", mount_path=PICKER_CONFIG_MOUNT, read_only=True)
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(name="config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=self._picker))
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.picker_config, self.role_binding]),
        )

    def _pool(self, name: str) -> k8s.apiextensions.CustomResource:
        config = self._config
        # The server pods (the Service's selector); of a multi-node group only the leader serves.
        match_labels = {**selector_labels(self._deploy_name, "server"), **(LEADER_SELECTOR if config.multi_node else {})}
        return k8s.apiextensions.CustomResource(
            f"{name}-inferencepool",
            api_version=POOL_API_VERSION,
            kind="InferencePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=pool_name(self._deploy_name),
                namespace=config.namespace,
                labels=common_labels(self._deploy_name, "server", config.image.tag),
            ),
            spec={
                "selector": {"matchLabels": match_labels},
                "targetPorts": [{"number": SERVER_PORT}],
                "appProtocol": "http",
                "endpointPickerRef": {
                    "name": self._picker,
                    "port": {"number": EXT_PROC_PORT},
                    "failureMode": config.routing.failureMode,
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.picker_service]),
        )

    def _model_names(self, name: str) -> k8s.core.v1.ConfigMap:
        """The Body-Based Router's entry for this pool: its base model and adapters
        (config/manifests/bbr/configmap.yaml; pkg/bbr/plugins/basemodelextractor/adapters_store.go)."""
        config = self._config
        return k8s.core.v1.ConfigMap(
            f"{name}-model-names",
            metadata=self._metadata("-models", {**self._labels, BBR_MANAGED_LABEL: "true"}),
            data={
                "baseModel": config.model.deployName,
                "adapters": yaml.safe_dump(served_adapter_names(config)),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _monitor(self, name: str) -> k8s.apiextensions.CustomResource:
        monitor = self._config.metrics.serviceMonitor
        return k8s.apiextensions.CustomResource(
            f"{name}-servicemonitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=self._metadata(labels={**self._labels, **monitor.labels}),
            spec={
                "endpoints": [{"port": "http-metrics", "path": METRICS_PATH, "interval": monitor.interval}],
                "selector": {"matchLabels": selector_labels(self._deploy_name, PICKER_COMPONENT)},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> k8s.rbac.v1.PolicyRuleArgs:
    return k8s.rbac.v1.PolicyRuleArgs(api_groups=groups, resources=resources, verbs=verbs)


def served_adapter_names(config: ServingConfig) -> list[str]:
    """Every adapter name a request may ask this stack for: listed ones, then runtime ones."""
    return [adapter.name for adapter in config.lora.adapters] + list(config.routing.runtimeLora.adapterNames)


def image_version(image: str) -> str:
    """The version label of an image reference: its tag, or the start of its digest."""
    if "@" in image:
        return image.rsplit(":", 1)[-1][:12]
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[-1] if ":" in last else "latest"


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def http_route_rules(config: ServingConfig, paths: list[str], request_timeout: str) -> list[dict[str, Any]]:
    """The HTTPRoute's rules when routing is on: the paths to the pool, matched by the request's
    model when several stacks share the Gateway, and the runtime adapter API to nowhere.

    A rule without backendRefs is answered with a 500 by every conformant Gateway
    (gateway-api apis/v1/httproute_types.go, HTTPRouteRule.BackendRefs), and the longer path
    wins over /v1 (HTTPRouteRule: "the longest" prefix match takes precedence).
    """
    deploy_name = config.model.deployName
    header = [{"type": "Exact", "name": BASE_MODEL_HEADER, "value": deploy_name}] if config.routing.routeByModel else []
    rules: list[dict[str, Any]] = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": path}, **({"headers": header} if header else {})} for path in paths],
            "backendRefs": [{"group": POOL_GROUP, "kind": "InferencePool", "name": pool_name(deploy_name)}],
            "timeouts": {"request": request_timeout},
        }
    ]
    if config.routing.runtimeLora.enabled:
        rules.append({"matches": [{"path": {"type": "PathPrefix", "value": path}} for path in RUNTIME_LORA_PATHS]})
    return rules
