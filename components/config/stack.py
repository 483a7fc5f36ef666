"""ServingConfig: a whole stack's `vllm-serving:` config, and the values derived from it.

Each derived value (claim name, tensor-parallel size, each adapter as a model to download)
is computed here only; components, rules and tools read it from the config.
"""

from __future__ import annotations

from pydantic import Field, PrivateAttr, SecretStr, field_validator

from .chart import EnvVar, ImageConfig, ResourcesConfig, ServiceConfig
from .features import (
    ApiKeySecretRef,
    AutoscalingConfig,
    HttpRouteConfig,
    IngressConfig,
    LoraAdapter,
    LoraConfig,
    MetricsConfig,
    NetworkPolicyConfig,
    PodDisruptionBudgetConfig,
)
from .fields import INT32_MAX, StrictModel, dns1123_label, dns1123_subdomain
from .routing import RoutingConfig
from .server import DownloadConfig, EngineConfig, FitCheckConfig, ServerConfig
from .sources import ModelConfig

# After the drain and vLLM's shutdown timeout: the engine processes exit and release the GPUs.
TERMINATION_MARGIN_SECONDS = 30


class ServingConfig(StrictModel):
    """All of a stack's `vllm-serving:` config, validated."""

    namespace: str = Field("default", description="Namespace of every resource (must exist).")
    replicaCount: int = Field(1, ge=0, le=INT32_MAX, description="Number of server replicas.")
    image: ImageConfig = Field(default_factory=ImageConfig, description="The server image (the chart's image.*).")
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig, description="The server's resources (the chart's resources.*).")
    model: ModelConfig = Field(description="The served model: its name, volume and source.")
    env: list[EnvVar] = Field(default_factory=list, description="Environment of the server and download pods.")
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="The Service in front of the server.")
    server: ServerConfig = Field(default_factory=ServerConfig, description="Settings of the server pods.")
    download: DownloadConfig = Field(default_factory=DownloadConfig, description="Settings of the download Job.")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="vLLM engine arguments as typed keys.")
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA adapters served beside the model.")
    apiKey: SecretStr | None = Field(
        None, description="API key the server requires on /v1; set with `pulumi config set --secret apiKey`."
    )
    apiKeySecret: ApiKeySecretRef = Field(default_factory=ApiKeySecretRef, description="An existing Secret holding the API key, instead of apiKey.")
    allowUnauthenticated: bool = Field(
        False,
        description="Expose the server outside the cluster (ingress, httpRoute, a LoadBalancer or NodePort "
        "Service) without an API key, on purpose.",
    )
    imagePullSecrets: list[str] = Field(default_factory=list, description="Secrets to pull images with (every pod).")
    checkSecrets: bool = Field(
        True, description="Read the referenced Secrets at preview and refuse missing keys (needs the cluster)."
    )
    ingress: IngressConfig = Field(default_factory=IngressConfig, description="An Ingress for the Service.")
    httpRoute: HttpRouteConfig = Field(default_factory=HttpRouteConfig, description="A Gateway API HTTPRoute for the Service.")
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig, description="Autoscaling with KEDA on vLLM's metrics.")
    routing: RoutingConfig = Field(default_factory=RoutingConfig, description="An InferencePool with llm-d's endpoint picker (docs/routing.md).")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus Operator monitors and scrape annotations.")
    podDisruptionBudget: PodDisruptionBudgetConfig = Field(default_factory=PodDisruptionBudgetConfig, description="A PodDisruptionBudget for drains.")
    networkPolicy: NetworkPolicyConfig = Field(default_factory=NetworkPolicyConfig, description="A NetworkPolicy admitting only listed namespaces.")
    fitCheck: FitCheckConfig = Field(default_factory=FitCheckConfig, description="Where the fit check reads the model's architecture.")
    # The top-level keys Pulumi holds as secrets (parse_config sets it); not a config key itself.
    _secret_keys: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @field_validator("imagePullSecrets")
    @classmethod
    def _pull_secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            dns1123_subdomain(name, "Secret name")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return dns1123_label(value, "namespace")

    # --- derived values -----------------------------------------------------------------------

    @property
    def claim_name(self) -> str:
        """The claim holding the model: the existing one, or the one this program creates."""
        return self.model.volume.existingClaim or f"{self.model.deployName}-model"

    @property
    def multi_node(self) -> bool:
        """Each replica is a group of several pods on several nodes (a LeaderWorkerSet)."""
        return self.server.nodes > 1

    @property
    def gpus_per_replica(self) -> int:
        """The GPUs of one replica: the GPUs per pod times the pods (nodes) of its group."""
        return self.resources.limits.gpu * self.server.nodes

    @property
    def pipeline_parallel_size(self) -> int:
        """--pipeline-parallel-size: as set, or one stage per node (pipeline parallel across nodes)."""
        return self.engine.pipelineParallelSize or self.server.nodes

    @property
    def tensor_parallel_size(self) -> int:
        """--tensor-parallel-size: as set, or the replica's GPUs shared out over the pipeline stages
        (the GPUs of one pod, by default: tensor parallel within a node)."""
        return self.engine.tensorParallelSize or self.gpus_per_replica // self.pipeline_parallel_size

    @property
    def has_api_key(self) -> bool:
        return self.apiKey is not None or bool(self.apiKeySecret.name)

    @property
    def exposed_outside_cluster(self) -> list[str]:
        """The keys that make the server reachable from outside the cluster."""
        return [
            key
            for key, exposed in (
                ("ingress.enabled", self.ingress.enabled),
                ("httpRoute.enabled", self.httpRoute.enabled),
                ("service.type", self.service.type in ("LoadBalancer", "NodePort")),
            )
            if exposed
        ]

    @property
    def max_replicas(self) -> int:
        """The most server pods that can run at once."""
        return self.autoscaling.maxReplicas if self.autoscaling.enabled else self.replicaCount

    @property
    def scale_to_zero(self) -> bool:
        """Autoscaling may take the server to no replica at all."""
        return self.autoscaling.enabled and self.autoscaling.minReplicas == 0

    @property
    def lora_enabled(self) -> bool:
        """vLLM serves LoRA adapters: listed ones, or ones loaded at runtime."""
        return bool(self.lora.adapters) or self.routing.runtimeLora.enabled

    @property
    def runtime_lora_dir(self) -> str:
        """The volume's directory of adapters loaded at runtime (routing.runtimeLora), beside the model's."""
        return "/".join(part for part in (self.model.volume.subPath, "lora-runtime") if part)

    @property
    def env_is_secret(self) -> bool:
        """A value in `env` was set with `pulumi config set --secret`: every env value stays a secret."""
        return "env" in self._secret_keys

    @property
    def rollout(self) -> str:
        """server.rollout with `auto` resolved: one pod cannot roll without a second GPU, so it is
        recreated; several (on a shared volume, which rules.py requires) roll one at a time, so the
        others keep serving without needing a spare GPU."""
        if self.server.rollout != "auto":
            return self.server.rollout
        return "oneAtATime" if self.max_replicas > 1 else "recreate"

    @property
    def termination_grace_seconds(self) -> int:
        """The pod's grace period: the preStop drain, then vLLM's own shutdown timeout, plus time
        to tear down the engine and free the GPUs before the kubelet kills it."""
        return self.server.drainSeconds + self.server.shutdownTimeoutSeconds + TERMINATION_MARGIN_SECONDS

    @property
    def adapter_models(self) -> dict[str, ModelConfig]:
        """Each LoRA adapter by name, as a model to download into `<subPath>/lora/<name>` of the volume."""
        return {adapter.name: self._adapter_model(adapter) for adapter in self.lora.adapters}

    def _adapter_model(self, adapter: LoraAdapter) -> ModelConfig:
        volume = self.model.volume
        sub_path = "/".join(part for part in (volume.subPath, "lora", adapter.name) if part)
        return self.model.model_copy(
            update={
                "volume": volume.model_copy(update={"subPath": sub_path}),
                "source": adapter.source,
                "huggingface": adapter.huggingface,
                "git": adapter.git,
                "s3": adapter.s3,
            }
        )
