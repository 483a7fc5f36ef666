"""The top-level component: one model served end to end, from volume to Service.

VllmServing only composes the parts: model storage (storage/), the server (server/) and the
optional features (options/); each helper below builds one part from the typed config.
"""

from __future__ import annotations

from typing import Optional

import pulumi

from .config import ModelConfig, ServingConfig, quantity_bytes
from .labels import SERVER_PORT
from .options.autoscaling import Autoscaling, AutoscalingArgs
from .options.exposure import Exposure, ExposureArgs
from .options.monitoring import Monitoring, MonitoringArgs
from .options.network_policy import NetworkPolicy, NetworkPolicyArgs
from .options.pod_disruption_budget import PodDisruptionBudget, PodDisruptionBudgetArgs, wants_budget
from .server.api_key import ApiKeySecret, ApiKeySecretArgs
from .server.deployment import VllmServer, VllmServerArgs
from .server.pre_pull import PrePullImage
from .server.service import ModelService, ModelServiceArgs
from .storage.download import ModelDownload, ModelDownloadArgs
from .storage.placement import download_placement
from .storage.secret_check import SecretCheck
from .storage.volume import ModelVolume, ModelVolumeArgs


class VllmServing(pulumi.ComponentResource):
    """Outputs: `endpoint`, `openai_base_url`, `served_model_name`, `verify_commands`,
    `external_base_url` (empty when the model is not exposed outside the cluster)."""

    def __init__(self, name: str, config: ServingConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("vllm-serving:index:VllmServing", name, None, opts)
        self._name, self._config, self._child = name, config, pulumi.ResourceOptions(parent=self)
        # Everything that reads a Secret waits for the check, so a missing key stops the update first.
        self.secret_check = SecretCheck(f"{name}-secrets", config, opts=self._child) if config.checkSecrets else None
        secrets_read = self.secret_check.checked if self.secret_check else []
        self._storage(secrets_read)
        # Beside the download, waiting for nothing: the image is on the node when the server starts.
        self.pre_pull = PrePullImage(f"{name}-pre-pull", config, opts=self._child) if config.server.prePullImage else None
        api_key_secret = self._api_key()
        self._server(secrets_read, api_key_secret)
        self._options()
        self._outputs(api_key_secret)

    # --- model storage and download -----------------------------------------------------------

    def _storage(self, secrets_read: list[pulumi.Resource]) -> None:
        config, name = self._config, self._name
        model = config.model
        self.volume = ModelVolume(
            f"{name}-volume",
            ModelVolumeArgs(
                deploy_name=model.deployName,
                claim_name=config.claim_name,
                namespace=config.namespace,
                volume=model.volume,
                version=config.image.tag,
                model_bytes=int(quantity_bytes(model.size)) if model.size else None,
            ),
            opts=self._child,
        )
        self.download = self._download(f"{name}-download", model, "", secrets_read) if model.source else None
        self.adapter_downloads = {
            # A short name prefix: a Job's name must leave room for its hash within 63 characters.
            adapter: self._download(f"{name}-lora-{adapter}", spec, f"{model.deployName}-a{index}", secrets_read)
            for index, (adapter, spec) in enumerate(config.adapter_models.items())
        }

    def _download(
        self, resource_name: str, model: ModelConfig, name_prefix: str, secrets_read: list[pulumi.Resource]
    ) -> ModelDownload:
        config = self._config
        return ModelDownload(
            resource_name,
            ModelDownloadArgs(
                deploy_name=config.model.deployName,
                namespace=config.namespace,
                model=model,
                download=config.download,
                server_image=config.image,
                env=list(config.env),
                claim_name=self.volume.claim_name,
                claim_name_in_config=config.claim_name,
                image_pull_secrets=list(config.imagePullSecrets),
                name_prefix=name_prefix,
                placement=download_placement(config),
            ),
            opts=self._child,
            depends_on=secrets_read,
        )

    # --- the server ---------------------------------------------------------------------------

    def _api_key(self) -> Optional[tuple[pulumi.Input[str], str]]:
        """The Secret and key the server reads its API key from; None without one."""
        config = self._config
        self.api_key: Optional[ApiKeySecret] = None
        if config.apiKey is not None:
            self.api_key = ApiKeySecret(
                f"{self._name}-api-key",
                ApiKeySecretArgs(
                    deploy_name=config.model.deployName,
                    namespace=config.namespace,
                    api_key=config.apiKey,
                    version=config.image.tag,
                ),
                opts=self._child,
            )
            return self.api_key.secret_name, self.api_key.key
        if config.apiKeySecret.name:
            return config.apiKeySecret.name, config.apiKeySecret.key
        return None

    def _server(
        self, secrets_read: list[pulumi.Resource], api_key_secret: Optional[tuple[pulumi.Input[str], str]]
    ) -> None:
        config, name = self._config, self._name
        downloads = [d for d in (self.download, *self.adapter_downloads.values()) if d is not None]
        self.server = VllmServer(
            f"{name}-server",
            VllmServerArgs(
                config=config,
                claim_name=self.volume.claim_name,
                model_dir=config.model.model_dir,
                model_fingerprint=self.download.fingerprint if self.download else None,
                adapters={
                    adapter: (spec.model_dir, self.adapter_downloads[adapter].fingerprint)
                    for adapter, spec in config.adapter_models.items()
                },
                api_key_secret=api_key_secret,
            ),
            opts=self._child,
            # The server only starts once the weights are complete: Pulumi waits for the Jobs, and
            # the pod itself waits for the completion markers.
            depends_on=[*secrets_read, *(download.job for download in downloads)],
        )
        self.service = ModelService(
            f"{name}-service",
            ModelServiceArgs(
                deploy_name=config.model.deployName,
                namespace=config.namespace,
                service=config.service,
                version=config.image.tag,
                replicas=config.replicaCount,
            ),
            opts=self._child,
            depends_on=[self.server.deployment],
        )

    # --- optional features (docs/production.md) -------------------------------------------------

    def _options(self) -> None:
        """Each component exists only when its feature is set, so a stack that uses none renders,
        and updates, exactly as before."""
        config, name, child = self._config, self._name, self._child
        deploy_name, namespace, version = config.model.deployName, config.namespace, config.image.tag
        self.exposure: Optional[Exposure] = None
        if config.ingress.enabled or config.httpRoute.enabled:
            self.exposure = Exposure(
                f"{name}-exposure",
                ExposureArgs(
                    deploy_name=deploy_name, namespace=namespace, version=version,
                    service_name=self.service.service.metadata.name,
                    ingress=config.ingress,
                    http_route=config.httpRoute,
                ),
                opts=child,
            )
        self.autoscaling: Optional[Autoscaling] = None
        if config.autoscaling.enabled:
            self.autoscaling = Autoscaling(
                f"{name}-autoscaling",
                AutoscalingArgs(
                    deploy_name=deploy_name, namespace=namespace, version=version,
                    deployment_name=self.server.deployment.metadata.name,
                    served_model_name=deploy_name,
                    autoscaling=config.autoscaling,
                ),
                opts=child,
            )
        self.monitoring: Optional[Monitoring] = None
        if config.metrics.serviceMonitor.enabled or config.metrics.podMonitor.enabled:
            self.monitoring = Monitoring(
                f"{name}-monitoring",
                MonitoringArgs(deploy_name=deploy_name, namespace=namespace, version=version, metrics=config.metrics),
                opts=child,
            )
        self.pod_disruption_budget: Optional[PodDisruptionBudget] = None
        if wants_budget(config.podDisruptionBudget, config.max_replicas):
            self.pod_disruption_budget = PodDisruptionBudget(
                f"{name}-pdb",
                PodDisruptionBudgetArgs(
                    deploy_name=deploy_name, namespace=namespace, version=version,
                    budget=config.podDisruptionBudget,
                    aliases=[self._formerly_in_disruption("pdb", "kubernetes:policy/v1:PodDisruptionBudget")],
                ),
                opts=child,
            )
        self.network_policy: Optional[NetworkPolicy] = None
        if config.networkPolicy.enabled:
            self.network_policy = NetworkPolicy(
                f"{name}-network-policy",
                NetworkPolicyArgs(
                    deploy_name=deploy_name, namespace=namespace, version=version,
                    network_policy=config.networkPolicy,
                    aliases=[self._formerly_in_disruption("networkpolicy", "kubernetes:networking.k8s.io/v1:NetworkPolicy")],
                ),
                opts=child,
            )

    def _formerly_in_disruption(self, suffix: str, type_: str) -> pulumi.Output[str]:
        """The URN a resource had as a child of the `Disruption` component, which held both the
        PodDisruptionBudget and the NetworkPolicy until they became components of their own: as an
        alias, it makes Pulumi adopt the existing resource instead of replacing it."""
        former_parent = self.urn.apply(
            lambda urn: f"{_engine_form(urn).rsplit('::', 1)[0]}$vllm-serving:index:Disruption::{self._name}-disruption"
        )
        return pulumi.create_urn(f"{self._name}-disruption-{suffix}", type_, parent=former_parent)

    # --- outputs ------------------------------------------------------------------------------

    def _outputs(self, api_key_secret: Optional[tuple[pulumi.Input[str], str]]) -> None:
        namespace, deploy_name = self._config.namespace, self._config.model.deployName
        # A plain string, always set: `pulumi stack output externalBaseUrl` works on every stack.
        self.external_base_url = (self.exposure.external_base_url if self.exposure else None) or ""
        self.endpoint = self.service.service.metadata.name.apply(
            lambda service: f"http://{service}.{namespace}.svc.cluster.local:{SERVER_PORT}"
        )
        self.openai_base_url = self.endpoint.apply(lambda endpoint: f"{endpoint}/v1")
        self.served_model_name = deploy_name
        key_ref = (
            pulumi.Output.from_input(api_key_secret[0]).apply(lambda secret: (secret, api_key_secret[1]))
            if api_key_secret
            else pulumi.Output.from_input(None)
        )
        self.verify_commands = pulumi.Output.all(self.openai_base_url, key_ref).apply(
            lambda values: verify_commands(values[0], deploy_name, namespace, values[1])
        )
        self.register_outputs({
            "endpoint": self.endpoint,
            "openaiBaseUrl": self.openai_base_url,
            "servedModelName": self.served_model_name,
            "verifyCommands": self.verify_commands,
            "externalBaseUrl": self.external_base_url,
        })


def _engine_form(urn: str) -> str:
    """A URN as the engine forms it. Pulumi's mocks keep the root stack's type in the URN of its
    children, the engine does not (sdk/go/common/resource/urn.go, NewURN): a no-op under the engine,
    this lets the tests compare an alias with the URN the engine gave the resource."""
    return urn.replace("::pulumi:pulumi:Stack$", "::", 1)


def verify_commands(
    base_url: str, served_model_name: str, namespace: str, api_key_ref: Optional[tuple[str, str]] = None
) -> list[str]:
    """The chart's "application information" step: what to run in the cluster to check the endpoint.

    With an API key, the commands read it from its Secret when run: the key itself never
    appears in an output.
    """
    chat = (
        '{"model": "' + served_model_name + '", '
        '"messages": [{"role": "user", "content": "Say hello in one short sentence."}], "max_tokens": 32}'
    )
    commands, auth = [], ""
    if api_key_ref:
        secret, key = api_key_ref
        commands.append(
            f"export VLLM_API_KEY=\"$(kubectl get secret {secret} -n {namespace} -o jsonpath='{{.data.{key}}}' | base64 -d)\""
        )
        auth = ' -H "Authorization: Bearer $VLLM_API_KEY"'
    return commands + [
        f"curl -sS {base_url}/models{auth}",
        f"curl -sS {base_url}/chat/completions{auth} -H 'Content-Type: application/json' -d '{chat}'",
    ]
