"""The top-level component: one model served end to end, from volume to Service.

VllmServing only composes the parts: model storage (storage/), the server (server/) and the
optional features (options/); each helper below builds one part from the typed config.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from .config import ModelConfig, ServingConfig, quantity_bytes
from .env import EnvSecret, EnvSecretArgs, env_checksum
from .labels import SERVER_PORT
from .options.autoscaling import Autoscaling, AutoscalingArgs
from .options.exposure import Exposure, ExposureArgs
from .options.monitoring import Monitoring, MonitoringArgs
from .options.network_policy import NetworkPolicy, NetworkPolicyArgs
from .options.pod_disruption_budget import PodDisruptionBudget, PodDisruptionBudgetArgs, wants_budget
from .options.routing import Routing, RoutingArgs, flow_control_on, http_route_rules
from .rename_guard import never_deployed
from .server.api_key import ApiKeySecret, ApiKeySecretArgs, api_key_checksum
from .server.deployment import VllmServer, VllmServerArgs, server_resources
from .server.leader_worker_set import LEADER_SELECTOR, MultiNodeServer
from .server.pre_pull import PrePullImage
from .server.service import ModelService, ModelServiceArgs
from .storage.download import ModelDownload, ModelDownloadArgs
from .storage.placement import download_placement, reserves_server_resources
from .storage.secret_check import SecretCheck
from .storage.volume import ModelVolume, ModelVolumeArgs


class VllmServing(pulumi.ComponentResource):
    """Outputs: `endpoint`, `openai_base_url`, `served_model_name`, `verify_commands`,
    `external_base_url` (empty when the model is not exposed outside the cluster),
    `download_logs_command` (empty when the model is not downloaded)."""

    def __init__(self, name: str, config: ServingConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:VllmServing", name, None, opts)
        self._name, self._config, self._child = name, config, pulumi.ResourceOptions(parent=self)
        # Everything that reads a Secret takes its name from the check, so a missing key stops the
        # update before any of them is registered.
        self.secret_check = SecretCheck(f"{name}-secrets", config, opts=self._child) if config.checkSecrets else None
        self.env_secret = (
            EnvSecret(
                f"{name}-env",
                EnvSecretArgs(config.model.deployName, config.namespace, list(config.env), config.image.tag),
                opts=self._child,
            )
            if config.env_is_secret
            else None
        )
        self._storage()
        # Beside the download, waiting for nothing: the image is on the node when the server starts.
        self.pre_pull = PrePullImage(f"{name}-pre-pull", config, opts=self._child) if config.server.prePullImage else None
        api_key_secret, api_key_checksum = self._api_key()
        self._server(api_key_secret, api_key_checksum)
        self._options()
        self._outputs(api_key_secret)

    def _checked(self, secret: str) -> pulumi.Input[str]:
        """A Secret's name for whatever reads it: gated on the check when there is one."""
        return self.secret_check.gate(secret) if self.secret_check else secret

    # --- model storage and download -----------------------------------------------------------

    def _storage(self) -> None:
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
        self.first_download_reserved = reserves_server_resources(config, never_deployed())
        self.download = (
            self._download(f"{name}-download", model, reserve=self.first_download_reserved) if model.source else None
        )
        # While the model's Job holds the server's room, an adapter's Job must not bind the volume
        # first: it starts once the model's Job has completed, beside nothing (the claim's affinity).
        after_model = [self.download.job] if self.first_download_reserved and self.download else []
        self.adapter_downloads = {
            adapter: self._download(f"{name}-lora-{adapter}", spec, adapter_index=index, after=after_model)
            for index, (adapter, spec) in enumerate(config.adapter_models.items())
        }

    def _download(
        self, resource_name: str, model: ModelConfig, adapter_index: int | None = None, reserve: bool = False,
        after: Sequence[pulumi.Resource] = (),
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
                adapter_index=adapter_index,
                placement=download_placement(config),
                checked_secret_name=self._checked(model.secret_name) if model.secret_name else None,
                env_secret_name=self.env_secret.secret_name if self.env_secret else None,
                reserved_resources=server_resources(config) if reserve else None,
            ),
            opts=self._child,
            depends_on=after,
        )

    # --- the server ---------------------------------------------------------------------------

    def _api_key(self) -> tuple[tuple[pulumi.Input[str], str] | None, pulumi.Input[str] | None]:
        """The Secret and key the server reads its API key from, and a one-way checksum of the key
        (None where it cannot be known: an apiKeySecret not read, with checkSecrets off)."""
        config = self._config
        namespace, deploy_name = config.namespace, config.model.deployName
        self.api_key: ApiKeySecret | None = None
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
            checksum = api_key_checksum(config.apiKey.get_secret_value(), namespace, deploy_name)
            return (self.api_key.secret_name, self.api_key.key), checksum
        reference = config.apiKeySecret
        if not reference.name:
            return None, None
        if self.secret_check is None:
            return (reference.name, reference.key), None
        # The Secret was read at preview: its value's checksum changes when the key is rotated in
        # place. One-way, so it need not stay a Pulumi secret (and must not: a masked value would
        # hide the change from `pulumi preview`).
        read_checksum = pulumi.Output.unsecret(
            self.secret_check.data(reference.name).apply(
                lambda data: api_key_checksum((data or {}).get(reference.key, ""), namespace, deploy_name)
            )
        )
        return (self.secret_check.gate(reference.name), reference.key), read_checksum

    def _server(
        self,
        api_key_secret: tuple[pulumi.Input[str], str] | None,
        api_key_checksum: pulumi.Input[str] | None,
    ) -> None:
        config, name = self._config, self._name
        downloads = [d for d in (self.download, *self.adapter_downloads.values()) if d is not None]
        server_args = VllmServerArgs(
            config=config,
            claim_name=self.volume.claim_name,
            model_dir=config.model.model_dir,
            model_fingerprint=self.download.fingerprint if self.download else None,
            adapters={
                adapter: (spec.model_dir, self.adapter_downloads[adapter].fingerprint)
                for adapter, spec in config.adapter_models.items()
            },
            api_key_secret=api_key_secret,
            api_key_checksum=api_key_checksum,
            env_secret_name=self.env_secret.secret_name if self.env_secret else None,
            env_checksum=env_checksum(list(config.env), config.namespace, config.model.deployName)
            if self.env_secret
            else None,
            first_download_reserved=self.first_download_reserved,
        )
        # The server only starts once the weights are complete: Pulumi waits for the Jobs, and
        # the pod itself waits for the completion markers.
        server_depends_on = [download.job for download in downloads]
        self.server: VllmServer | MultiNodeServer
        workload: pulumi.CustomResource
        if config.multi_node:
            self.server = MultiNodeServer(f"{name}-server", server_args, opts=self._child, depends_on=server_depends_on)
            workload = self.server.leader_worker_set
        else:
            self.server = VllmServer(f"{name}-server", server_args, opts=self._child, depends_on=server_depends_on)
            workload = self.server.deployment
        self.service = ModelService(
            f"{name}-service",
            ModelServiceArgs(
                deploy_name=config.model.deployName,
                namespace=config.namespace,
                service=config.service,
                version=config.image.tag,
                replicas=config.replicaCount,
                # Only a group's leader runs the OpenAI server; its workers are headless.
                extra_selector=LEADER_SELECTOR if config.multi_node else {},
            ),
            opts=self._child,
            depends_on=[workload],
        )

    # --- optional features (docs/production.md) -------------------------------------------------

    def _deployment(self) -> k8s.apps.v1.Deployment:
        """The single-node server's Deployment, for what only scales or watches a Deployment."""
        if not isinstance(self.server, VllmServer):
            raise TypeError("a multi-node server has no Deployment (config refuses what would need one)")
        return self.server.deployment

    def _options(self) -> None:
        """Each component exists only when its feature is set, so a stack that uses none renders,
        and updates, exactly as before."""
        config, name, child = self._config, self._name, self._child
        deploy_name, namespace, version = config.model.deployName, config.namespace, config.image.tag
        # Before the route, which sends to its pool (docs/routing.md).
        self.routing: Routing | None = None
        if config.routing.enabled:
            self.routing = Routing(f"{name}-routing", RoutingArgs(config=config), opts=child)
        self.exposure: Exposure | None = None
        if config.ingress.enabled or config.httpRoute.enabled:
            self.exposure = Exposure(
                f"{name}-exposure",
                ExposureArgs(
                    deploy_name=deploy_name, namespace=namespace, version=version,
                    service_name=self.service.service.metadata.name,
                    ingress=config.ingress,
                    http_route=config.httpRoute,
                    pool_rules=(lambda paths, timeout: http_route_rules(config, paths, timeout)) if self.routing else None,
                ),
                opts=child,
            )
        self.autoscaling: Autoscaling | None = None
        if config.autoscaling.enabled:
            self.autoscaling = Autoscaling(
                f"{name}-autoscaling",
                AutoscalingArgs(
                    deploy_name=deploy_name, namespace=namespace, version=version,
                    # Config refuses autoscaling with server.nodes > 1: the server is the Deployment.
                    deployment_name=self._deployment().metadata.name,
                    served_model_name=deploy_name,
                    autoscaling=config.autoscaling,
                    # With the picker's queue on, its length scales the pool, from zero too.
                    queued_pool=self.routing.pool_name if self.routing and flow_control_on(config) else None,
                ),
                opts=child,
            )
        self.monitoring: Monitoring | None = None
        if config.metrics.serviceMonitor.enabled or config.metrics.podMonitor.enabled:
            self.monitoring = Monitoring(
                f"{name}-monitoring",
                MonitoringArgs(deploy_name=deploy_name, namespace=namespace, version=version, metrics=config.metrics),
                opts=child,
            )
        self.pod_disruption_budget: PodDisruptionBudget | None = None
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
        self.network_policy: NetworkPolicy | None = None
        if config.networkPolicy.enabled:
            self.network_policy = NetworkPolicy(
                f"{name}-network-policy",
                NetworkPolicyArgs(
                    deploy_name=deploy_name, namespace=namespace, version=version,
                    network_policy=config.networkPolicy,
                    admit_group_peers=config.multi_node,
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

    def _outputs(self, api_key_secret: tuple[pulumi.Input[str], str] | None) -> None:
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
        # The Job's name is a hash of its inputs; this saves looking it up. Empty without a download.
        self.download_logs_command: pulumi.Input[str] = (
            self.download.job.metadata.name.apply(lambda job: f"kubectl logs -n {namespace} -f job/{job}")
            if self.download
            else ""
        )
        self.register_outputs({
            "downloadLogsCommand": self.download_logs_command,
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
    base_url: str, served_model_name: str, namespace: str, api_key_ref: tuple[str, str] | None = None
) -> list[str]:
    """The chart's "application information" step: what to run in the cluster to check the endpoint.

    With an API key, the commands read it from its Secret when run: the key itself never
    appears in an output.
    """
    chat = json.dumps({
        "model": served_model_name,
        "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
        "max_tokens": 32,
    })
    commands, auth = [], ""
    if api_key_ref:
        secret, key = api_key_ref
        # Every value in a printed command is quoted: a user copies these into a shell.
        jsonpath = shlex.quote(f"{{.data.{key}}}")
        commands.append(
            f'export VLLM_API_KEY="$(kubectl get secret {shlex.quote(secret)} -n {shlex.quote(namespace)} '
            f'-o jsonpath={jsonpath} | base64 -d)"'
        )
        auth = ' -H "Authorization: Bearer $VLLM_API_KEY"'
    return [*commands, f"curl -sS {shlex.quote(base_url + '/models')}{auth}", f"curl -sS {shlex.quote(base_url + '/chat/completions')}{auth} -H 'Content-Type: application/json' -d {shlex.quote(chat)}"]
