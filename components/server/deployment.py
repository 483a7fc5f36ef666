"""The GPU Deployment running vLLM's OpenAI-compatible server on the downloaded model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ..config import ServingConfig
from ..config.engine_rules import engine_warnings
from ..engine import engine_profile
from ..env import env_var_args
from ..labels import COMPLETION_MARKER, MODEL_MOUNT, SERVER_PORT, common_labels, selector_labels
from ..options.monitoring import scrape_annotations
from ..storage.placement import server_placement, unconstrained_binding_warning
from .args import RUNTIME_LORA_MOUNT, adapter_mount, server_args
from .compile_cache import compile_cache
from .surface import (
    HEALTH_PATH,
    READY_PATH,
    drain_command,
    surface_config_map,
    surface_env,
    surface_mounts,
    surface_volumes,
)

PROBE_PERIOD_SECONDS = 10
READINESS_PERIOD_SECONDS = 5
# Image pull and scheduling come on top of the model load before `pulumi up` may give up.
ROLLOUT_MARGIN_MINUTES = 20
# Set on the pod template: a change of the API key (or of the Secret holding it) rolls the pods.
API_KEY_CHECKSUM_ANNOTATION = "vllm-serving/api-key-checksum"
ENV_CHECKSUM_ANNOTATION = "vllm-serving/env-checksum"


def rollout_step_seconds(config: ServingConfig) -> int:
    """The longest one step of a rollout may take: an old pod drains and stops, then a new one is
    scheduled, pulls the image and loads the model. It is the Deployment's progressDeadlineSeconds,
    so a long load is not reported as ProgressDeadlineExceeded (Kubernetes' default: 600 s)."""
    return config.termination_grace_seconds + config.server.startupTimeoutSeconds + ROLLOUT_MARGIN_MINUTES * 60


def rollout_timeout_minutes(config: ServingConfig) -> int:
    """How long `pulumi up` waits for the Deployment: one step per pod when they roll one by one."""
    steps = 1 if config.rollout == "recreate" else max(config.max_replicas, 1)
    return math.ceil(steps * rollout_step_seconds(config) / 60)


def deployment_strategy(rollout: str) -> k8s.apps.v1.DeploymentStrategyArgs:
    if rollout == "recreate":
        # The old pods free their GPUs before the new ones start: no spare GPU is needed, and
        # the server is down meanwhile.
        return k8s.apps.v1.DeploymentStrategyArgs(type="Recreate")
    surge = rollout == "surge"
    return k8s.apps.v1.DeploymentStrategyArgs(
        type="RollingUpdate",
        # oneAtATime: stop one old pod, then start its replacement, so the others keep serving and
        # no spare GPU is needed; surge: start one extra pod first, on a spare GPU.
        rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
            max_surge=1 if surge else 0, max_unavailable=0 if surge else 1
        ),
    )


# Waits until each directory given as an argument holds the completion marker with the
# fingerprint given after it. The paths and fingerprints are positional arguments, never part of
# the script, so no config value is ever read as shell.
WAIT_FOR_DOWNLOADS_SCRIPT = (
    'while [ "$#" -ge 2 ]; do '
    f'until [ "$(cat "$1/{COMPLETION_MARKER}" 2>/dev/null)" = "$2" ]; do '
    f'echo "waiting for the download into $1 to complete ($1/{COMPLETION_MARKER} = $2)"; sleep 10; done; '
    "shift 2; done"
)


def wait_for_downloads_command(expected: dict[str, str]) -> list[str]:
    """The init container's command: wait until each mounted directory holds its source's marker."""
    return ["sh", "-c", WAIT_FOR_DOWNLOADS_SCRIPT, "sh", *(item for pair in expected.items() for item in pair)]


@dataclass(frozen=True)
class VllmServerArgs:
    config: ServingConfig
    claim_name: pulumi.Input[str]
    # The model's directory in the volume, mounted at /model.
    model_dir: str
    # The source fingerprint the completion marker must hold; None when the model is not downloaded here.
    model_fingerprint: str | None
    # LoRA adapter name -> (directory in the volume, source fingerprint).
    adapters: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The Secret and key holding the API key, when the server requires one.
    api_key_secret: tuple[pulumi.Input[str], str] | None = None
    # A one-way checksum of the key's value (components/server/api_key.py); None when not known.
    api_key_checksum: pulumi.Input[str] | None = None
    # When `env` is a Pulumi secret: the EnvSecret its values are read from, and their checksum.
    env_secret_name: pulumi.Input[str] | None = None
    env_checksum: str | None = None
    # The first download reserves the server's resources (placement.reserves_server_resources).
    first_download_reserved: bool = False


def _model_mounts(args: VllmServerArgs) -> list[k8s.core.v1.VolumeMountArgs]:
    """The model's directory at /model and each adapter's at /adapters/<name>, read-only; with
    runtime LoRA, the volume's lora-runtime/ directory at /lora-runtime."""
    runtime = (
        [k8s.core.v1.VolumeMountArgs(name="model", mount_path=RUNTIME_LORA_MOUNT, sub_path=args.config.runtime_lora_dir, read_only=True)]
        if args.config.routing.runtimeLora.enabled
        else []
    )
    return [*runtime,
        k8s.core.v1.VolumeMountArgs(name="model", mount_path=MODEL_MOUNT, sub_path=args.model_dir or None, read_only=True),
        *(
            k8s.core.v1.VolumeMountArgs(name="model", mount_path=adapter_mount(adapter), sub_path=directory, read_only=True)
            for adapter, (directory, _) in args.adapters.items()
        ),
    ]


def _server_env(args: VllmServerArgs) -> list[k8s.core.v1.EnvVarArgs]:
    config = args.config
    user_env_names = {var.name for var in config.env}
    # The weights are on the volume: the server must not reach for the Hub at start. vLLM reports
    # usage statistics upstream unless one of these is set (vllm/usage/usage_lib.py).
    fixed = [("HF_HUB_OFFLINE", "1")]
    if not config.server.usageStats:
        fixed += [("VLLM_NO_USAGE_STATS", "1"), ("DO_NOT_TRACK", "1")]
    if config.routing.runtimeLora.enabled:
        # Adapters load on a request that names them, from the volume (docs/routing.md, Runtime LoRA).
        # The flag also registers /v1/load_lora_adapter and /v1/unload_lora_adapter
        # (vllm/entrypoints/openai/api_server.py): the HTTPRoute never forwards them (options/routing.py).
        fixed += [
            ("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "True"),
            # vLLM loads every general plugin unless VLLM_PLUGINS names some (vllm/plugins/__init__.py,
            # load_plugins_by_group); the filesystem resolver, one of them, registers itself when this
            # is set (vllm/plugins/lora_resolvers/filesystem_resolver.py, register_filesystem_resolver).
            ("VLLM_LORA_RESOLVER_CACHE_DIR", RUNTIME_LORA_MOUNT),
        ]
    defaults = [k8s.core.v1.EnvVarArgs(name=name, value=value) for name, value in fixed if name not in user_env_names]
    if cache := compile_cache(config, args.claim_name):
        defaults += [var for var in cache.env() if var.name not in user_env_names]
    if args.api_key_secret is not None:
        secret_name, secret_key = args.api_key_secret
        # vLLM requires it as a bearer token on /v1 only; the allow-list (surface.py) on every path
        # but the probes' (and /metrics where something scrapes it).
        defaults.append(
            k8s.core.v1.EnvVarArgs(
                name="VLLM_API_KEY",
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret_name, key=secret_key)
                ),
            )
        )
    return [*defaults, *env_var_args(config.env, args.env_secret_name)]


@dataclass(frozen=True)
class ServerLaunch:
    """How the server container starts: the Deployment's by default; a multi-node group's leader
    and workers (leader_worker_set.py) change the command line and add to the container."""

    # None: the entry point of the release's engine profile (components/engine): the api_server
    # module up to 0.33 (it also exists in the chart's v0.3.3, and starts the CPU build), `vllm
    # serve` from 0.34 on.
    command: tuple[str, ...] | None = None
    # None: the single-node command line, server_args(config).
    args: tuple[str, ...] | None = None
    # The OpenAI server's port, /health probes and the drain; a headless worker has none of them.
    serves_http: bool = True
    env: tuple[k8s.core.v1.EnvVarArgs, ...] = ()
    extra_limits: tuple[tuple[str, str], ...] = ()
    add_capabilities: tuple[str, ...] = ()
    # A container without the HTTP server drains its own way (a multi-node worker's preStop).
    lifecycle: k8s.core.v1.LifecycleArgs | None = None


def _security_context(config: ServingConfig, add_capabilities: Sequence[str]) -> dict | None:
    context = dict(config.server.securityContext)
    if add_capabilities:
        capabilities = dict(context.get("capabilities") or {})
        added = list(capabilities.get("add") or [])
        capabilities["add"] = added + [name for name in add_capabilities if name not in added]
        context["capabilities"] = capabilities
    return context or None


def _health_probes(config: ServingConfig) -> dict[str, Any]:
    health = k8s.core.v1.HTTPGetActionArgs(path=HEALTH_PATH, port="http")
    # /ready is /health until the preStop hook starts the drain, then 503 (surface.py): readiness
    # means "takes new requests", liveness stays vLLM's "the engine is alive".
    ready = k8s.core.v1.HTTPGetActionArgs(path=READY_PATH, port="http")
    return {
        # Loading weights can take many minutes; until /health answers once, only this probe runs.
        "startup_probe": k8s.core.v1.ProbeArgs(
            http_get=health,
            period_seconds=PROBE_PERIOD_SECONDS,
            timeout_seconds=5,
            failure_threshold=math.ceil(config.server.startupTimeoutSeconds / PROBE_PERIOD_SECONDS),
        ),
        # Every 5 s, out after 2 failures: a draining pod leaves the endpoints within 10 s.
        "readiness_probe": k8s.core.v1.ProbeArgs(
            http_get=ready, period_seconds=READINESS_PERIOD_SECONDS, timeout_seconds=5, failure_threshold=2
        ),
        # Generous: a server busy with long generations answers /health slowly, and a restart
        # costs a full model load.
        "liveness_probe": k8s.core.v1.ProbeArgs(
            http_get=health, period_seconds=30, timeout_seconds=10, failure_threshold=5
        ),
    }


def server_resources(config: ServingConfig) -> dict[str, str]:
    """The server container's requests and limits (equal), before a multi-node launch's extras."""
    limits = config.resources.limits
    return {"cpu": limits.cpu, "memory": limits.memory, "nvidia.com/gpu": str(limits.gpu)}


def server_container(args: VllmServerArgs, launch: ServerLaunch = ServerLaunch()) -> k8s.core.v1.ContainerArgs:
    config, image = args.config, args.config.image
    resources = {**server_resources(config), **dict(launch.extra_limits)}
    return k8s.core.v1.ContainerArgs(
        name="vllm",
        image=image.reference,
        image_pull_policy=image.pullPolicy,
        command=list(launch.command or engine_profile(config).entry_point),
        args=server_args(config) if launch.args is None else list(launch.args),
        ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=SERVER_PORT, protocol="TCP")]
        if launch.serves_http else None,
        env=[*_server_env(args), *(surface_env(config) if launch.serves_http else []), *launch.env],
        resources=k8s.core.v1.ResourceRequirementsArgs(limits=resources, requests=resources),
        volume_mounts=[
            *_model_mounts(args), k8s.core.v1.VolumeMountArgs(name="shm", mount_path="/dev/shm"),
            *(cache.mounts() if (cache := compile_cache(config, args.claim_name)) else []),
            *(surface_mounts() if launch.serves_http else []),
        ],
        security_context=_security_context(config, launch.add_capabilities),  # type: ignore[arg-type]  # Kubernetes-shaped dicts, which the provider takes as they are
        **(_health_probes(config) if launch.serves_http else {}),
        lifecycle=_drain(config) if launch.serves_http else launch.lifecycle,
    )


def _drain(config: ServingConfig) -> k8s.core.v1.LifecycleArgs:
    """Leave the endpoints, keep serving while they catch up, then refuse new requests honestly.

    The preStop hook marks the pod as draining: /ready answers 503 from then on, so whatever
    honours readiness (the endpoints' `serving` condition, ingress controllers, the endpoint picker)
    stops sending. A terminating pod leaves the ready endpoints at once, but kube-proxy and ingress
    controllers learn of it a few seconds later, so the pod still serves for drainSeconds. Just
    before SIGTERM the hook marks it as stopping: from then on a new request gets 503 with
    Retry-After from the allow-list (vLLM itself would answer 500, "cannot schedule new futures
    after shutdown"), while vLLM lets the requests in flight finish within --shutdown-timeout.
    An exec hook because the `sleep` lifecycle action is beta only from Kubernetes 1.30 and the
    program supports 1.29; the image has `sh`, `touch` and `sleep` (the wait-for-model init
    container already runs `sh` from the same image).
    """
    return k8s.core.v1.LifecycleArgs(
        pre_stop=k8s.core.v1.LifecycleHandlerArgs(
            exec_=k8s.core.v1.ExecActionArgs(command=drain_command(config.server.drainSeconds))
        )
    )


def _wait_for_model(args: VllmServerArgs) -> list[k8s.core.v1.ContainerArgs]:
    """An init container that holds the server back until every download it mounts is complete."""
    awaited = {adapter_mount(adapter): fingerprint for adapter, (_, fingerprint) in args.adapters.items()}
    if args.model_fingerprint is not None:
        awaited = {MODEL_MOUNT: args.model_fingerprint, **awaited}
    if not awaited:
        return []
    image = args.config.image
    return [
        k8s.core.v1.ContainerArgs(
            name="wait-for-model",
            image=image.reference,
            image_pull_policy=image.pullPolicy,
            command=wait_for_downloads_command(awaited),
            volume_mounts=_model_mounts(args),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "10m", "memory": "32Mi"}, limits={"memory": "64Mi"}
            ),
        )
    ]


def pod_spec(
    args: VllmServerArgs,
    container: k8s.core.v1.ContainerArgs,
    host_network: bool = False,
    surface_config_map: pulumi.Input[str] | None = None,
) -> k8s.core.v1.PodSpecArgs:
    """surface_config_map: the allow-list's ConfigMap, for a pod that runs the OpenAI server."""
    config, server = args.config, args.config.server
    placement = server_placement(config)
    return k8s.core.v1.PodSpecArgs(
        init_containers=_wait_for_model(args) or None,
        containers=[container],
        host_network=host_network or None,
        # In the node's network namespace, only this policy still resolves cluster names (the leader's address).
        dns_policy="ClusterFirstWithHostNet" if host_network else None,
        node_selector=placement.node_selector or None,
        tolerations=placement.tolerations or None,  # type: ignore[arg-type]  # Kubernetes-shaped dicts, which the provider takes as they are
        affinity=placement.affinity or None,  # type: ignore[arg-type]  # Kubernetes-shaped dicts, which the provider takes as they are
        runtime_class_name=server.runtimeClassName or None,
        priority_class_name=server.priorityClassName or None,
        service_account_name=server.serviceAccountName or None,
        security_context=dict(server.podSecurityContext) or None,  # type: ignore[arg-type]  # Kubernetes-shaped dicts, which the provider takes as they are
        image_pull_secrets=[k8s.core.v1.LocalObjectReferenceArgs(name=name) for name in config.imagePullSecrets] or None,
        termination_grace_period_seconds=config.termination_grace_seconds,
        volumes=[
            k8s.core.v1.VolumeArgs(
                name="model",
                persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                    claim_name=args.claim_name, read_only=True
                ),
            ),
            # Tensor parallel workers exchange tensors through /dev/shm; the
            # container runtime's default of 64Mi makes NCCL fail.
            k8s.core.v1.VolumeArgs(
                name="shm",
                empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit=server.shmSizeLimit or None),
            ),
            *(cache.volumes() if (cache := compile_cache(config, args.claim_name)) else []),
            *(surface_volumes(surface_config_map) if surface_config_map is not None else []),
        ],
    )


def _pod_annotations(args: VllmServerArgs) -> pulumi.Input[dict[str, pulumi.Input[str]]] | None:
    config = args.config
    annotations: dict[str, pulumi.Input[str]] = {**scrape_annotations(config.metrics), **config.server.podAnnotations}
    if args.api_key_checksum is not None:
        annotations[API_KEY_CHECKSUM_ANNOTATION] = args.api_key_checksum
    if args.env_checksum is not None:
        annotations[ENV_CHECKSUM_ANNOTATION] = args.env_checksum
    return annotations or None


def pod_template(
    args: VllmServerArgs, labels: dict[str, str], spec: k8s.core.v1.PodSpecArgs
) -> k8s.core.v1.PodTemplateSpecArgs:
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(
            labels={**labels, **server_placement(args.config).labels}, annotations=_pod_annotations(args)
        ),
        spec=spec,
    )


class VllmServer(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment

    def __init__(
        self,
        name: str,
        args: VllmServerArgs,
        opts: pulumi.ResourceOptions | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ):
        super().__init__("vllm-serving:index:VllmServer", name, None, opts)
        config = args.config
        deploy_name = config.model.deployName
        labels = common_labels(deploy_name, "server", config.image.tag)
        if warning := unconstrained_binding_warning(config, args.first_download_reserved):
            pulumi.log.warn(warning)
        for warning in engine_warnings(config):  # a tag without a profile of its own release
            pulumi.log.warn(warning)
        rollout_minutes = rollout_timeout_minutes(config)
        surface = surface_config_map(self, name, config)
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=deploy_name, namespace=config.namespace, labels=labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # KEDA owns the replica count when it scales; Pulumi would reset it on every up.
                replicas=None if config.autoscaling.enabled else config.replicaCount,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(deploy_name, "server")),
                strategy=deployment_strategy(config.rollout),
                progress_deadline_seconds=rollout_step_seconds(config),
                template=pod_template(
                    args, labels, pod_spec(args, server_container(args), surface_config_map=surface.metadata.name)
                ),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(depends_on),
                # pulumi-kubernetes waits for the rollout; its 10-minute default is shorter than a model load.
                custom_timeouts=pulumi.CustomTimeouts(create=f"{rollout_minutes}m", update=f"{rollout_minutes}m"),
            ),
        )
        self.register_outputs({"deploymentName": self.deployment.metadata.name})
