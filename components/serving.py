"""The top-level component: one model served end to end, from volume to Service."""

from __future__ import annotations

from typing import Optional

import pulumi

from .api_key import ApiKeySecret, ApiKeySecretArgs
from .autoscaling import Autoscaling, AutoscalingArgs
from .disruption import Disruption, DisruptionArgs, wants_budget
from .exposure import Exposure, ExposureArgs
from .monitoring import Monitoring, MonitoringArgs
from .secret_check import SecretCheck
from .config import ModelConfig, ServingConfig, adapter_model, quantity_bytes
from .labels import SERVER_PORT
from .model_download import ModelDownload, ModelDownloadArgs
from .model_service import ModelService, ModelServiceArgs
from .model_volume import ModelVolume, ModelVolumeArgs
from .placement import claim_name, download_placement
from .vllm_server import VllmServer, VllmServerArgs


class VllmServing(pulumi.ComponentResource):
    """Outputs: `endpoint`, `openai_base_url`, `served_model_name`, `verify_commands`,
    `external_base_url` (empty when the model is not exposed outside the cluster)."""

    def __init__(self, name: str, config: ServingConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("vllm-serving:index:VllmServing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        model, deploy_name, namespace = config.model, config.model.deployName, config.namespace
        version = config.image.tag

        # Everything that reads a Secret waits for the check, so a missing key stops the update first.
        self.secret_check = SecretCheck(f"{name}-secrets", config, opts=child) if config.checkSecrets else None
        secrets_read = self.secret_check.checked if self.secret_check else []

        self.volume = ModelVolume(
            f"{name}-volume",
            ModelVolumeArgs(
                deploy_name=deploy_name,
                namespace=namespace,
                volume=model.volume,
                version=version,
                model_bytes=int(quantity_bytes(model.size)) if model.size else None,
            ),
            opts=child,
        )
        def download(resource_name: str, source: ModelConfig, name_prefix: str = "") -> ModelDownload:
            return ModelDownload(
                resource_name,
                ModelDownloadArgs(
                    deploy_name=deploy_name,
                    namespace=namespace,
                    model=source,
                    download=config.download,
                    server_image=config.image,
                    env=list(config.env),
                    claim_name=self.volume.claim_name,
                    claim_name_in_config=claim_name(config),
                    image_pull_secrets=list(config.imagePullSecrets),
                    name_prefix=name_prefix,
                    placement=download_placement(config),
                ),
                opts=child,
                depends_on=secrets_read,
            )

        self.download = download(f"{name}-download", model) if model.source else None
        self.adapter_downloads = {
            # A short name prefix: a Job's name must leave room for its hash within 63 characters.
            adapter.name: download(f"{name}-lora-{adapter.name}", adapter_model(config, adapter), f"{deploy_name}-a{index}")
            for index, adapter in enumerate(config.lora.adapters)
        }
        self.api_key: Optional[ApiKeySecret] = None
        api_key_secret = None
        if config.apiKey is not None:
            self.api_key = ApiKeySecret(
                f"{name}-api-key",
                ApiKeySecretArgs(deploy_name=deploy_name, namespace=namespace, api_key=config.apiKey, version=version),
                opts=child,
            )
            api_key_secret = (self.api_key.secret_name, self.api_key.key)
        elif config.apiKeySecret.name:
            api_key_secret = (config.apiKeySecret.name, config.apiKeySecret.key)
        downloads = [d for d in (self.download, *self.adapter_downloads.values()) if d is not None]
        self.server = VllmServer(
            f"{name}-server",
            VllmServerArgs(
                config=config,
                claim_name=self.volume.claim_name,
                model_dir=model.model_dir,
                model_fingerprint=self.download.fingerprint if self.download else None,
                adapters={
                    adapter: (adapter_model(config, spec).model_dir, self.adapter_downloads[adapter].fingerprint)
                    for adapter, spec in ((a.name, a) for a in config.lora.adapters)
                },
                api_key_secret=api_key_secret,
            ),
            opts=child,
            # The server only starts once the weights are complete: Pulumi waits for the Jobs, and
            # the pod itself waits for the completion markers.
            depends_on=[*secrets_read, *(download.job for download in downloads)],
        )
        self.service = ModelService(
            f"{name}-service",
            ModelServiceArgs(
                deploy_name=deploy_name,
                namespace=namespace,
                service=config.service,
                version=version,
                replicas=config.replicaCount,
            ),
            opts=child,
            depends_on=[self.server.deployment],
        )

        # Production features (docs/production.md): each component exists only when its feature is
        # set, so a stack that uses none renders, and updates, exactly as before.
        self.exposure: Optional[Exposure] = None
        if config.ingress.enabled or config.httpRoute.enabled:
            self.exposure = Exposure(
                f"{name}-exposure",
                ExposureArgs(
                    deploy_name=deploy_name,
                    namespace=namespace,
                    version=version,
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
                    deploy_name=deploy_name,
                    namespace=namespace,
                    version=version,
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
        self.disruption: Optional[Disruption] = None
        if config.networkPolicy.enabled or wants_budget(
            config.podDisruptionBudget, config.replicaCount, config.autoscaling
        ):
            self.disruption = Disruption(
                f"{name}-disruption",
                DisruptionArgs(
                    deploy_name=deploy_name,
                    namespace=namespace,
                    version=version,
                    replica_count=config.replicaCount,
                    autoscaling=config.autoscaling,
                    pod_disruption_budget=config.podDisruptionBudget,
                    network_policy=config.networkPolicy,
                ),
                opts=child,
            )
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
