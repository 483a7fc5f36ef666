"""The GPU Deployment running vLLM's OpenAI-compatible server on the downloaded model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from ..config import ServingConfig
from ..env import env_var_args
from ..labels import COMPLETION_MARKER, MODEL_MOUNT, SERVER_PORT, common_labels, selector_labels
from ..storage.placement import server_placement, unconstrained_binding_warning
from ..options.monitoring import scrape_annotations
from .args import adapter_mount, server_args
from .compile_cache import compile_cache

PROBE_PERIOD_SECONDS = 10
# Image pull and scheduling come on top of the model load before `pulumi up` may give up.
ROLLOUT_MARGIN_MINUTES = 20


def wait_for_downloads_script(expected: dict[str, str]) -> str:
    """Wait until each mounted directory holds the completion marker of its expected source."""
    waits = []
    for directory, fingerprint in expected.items():
        marker = f"{directory}/{COMPLETION_MARKER}"
        waits.append(
            f'until [ "$(cat {marker} 2>/dev/null)" = "{fingerprint}" ]; do '
            f'echo "waiting for the download into {directory} to complete ({marker} = {fingerprint})"; sleep 10; done'
        )
    return "; ".join(waits)


@dataclass(frozen=True)
class VllmServerArgs:
    config: ServingConfig
    claim_name: pulumi.Input[str]
    # The model's directory in the volume, mounted at /model.
    model_dir: str
    # The source fingerprint the completion marker must hold; None when the model is not downloaded here.
    model_fingerprint: Optional[str]
    # LoRA adapter name -> (directory in the volume, source fingerprint).
    adapters: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The Secret and key holding the API key, when the server requires one.
    api_key_secret: Optional[tuple[pulumi.Input[str], str]] = None


def _model_mounts(args: VllmServerArgs) -> list[k8s.core.v1.VolumeMountArgs]:
    """The model's directory at /model and each adapter's at /adapters/<name>, read-only."""
    return [
        k8s.core.v1.VolumeMountArgs(name="model", mount_path=MODEL_MOUNT, sub_path=args.model_dir or None, read_only=True),
        *(
            k8s.core.v1.VolumeMountArgs(name="model", mount_path=adapter_mount(adapter), sub_path=directory, read_only=True)
            for adapter, (directory, _) in args.adapters.items()
        ),
    ]


def _server_env(args: VllmServerArgs) -> list[k8s.core.v1.EnvVarArgs]:
    config = args.config
    user_env_names = {var.name for var in config.env}
    defaults = [
        # The weights are on the volume; the server must not reach for the Hub at start.
        k8s.core.v1.EnvVarArgs(name=name, value=value)
        for name, value in (("HF_HUB_OFFLINE", "1"),)
        if name not in user_env_names
    ]
    if cache := compile_cache(config, args.claim_name):
        defaults += [var for var in cache.env() if var.name not in user_env_names]
    if args.api_key_secret is not None:
        secret_name, secret_key = args.api_key_secret
        # vLLM requires it as a bearer token on /v1 only; /health and /metrics stay open for probes.
        defaults.append(
            k8s.core.v1.EnvVarArgs(
                name="VLLM_API_KEY",
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret_name, key=secret_key)
                ),
            )
        )
    return [*defaults, *env_var_args(config.env)]


def _server_container(args: VllmServerArgs) -> k8s.core.v1.ContainerArgs:
    config, image = args.config, args.config.image
    limits = config.resources.limits
    resources = {"cpu": limits.cpu, "memory": limits.memory, "nvidia.com/gpu": str(limits.gpu)}
    health = k8s.core.v1.HTTPGetActionArgs(path="/health", port="http")
    return k8s.core.v1.ContainerArgs(
        name="vllm",
        image=image.reference,
        image_pull_policy=image.pullPolicy,
        # This module is the server behind `vllm serve` in every release, including the chart's v0.3.3.
        command=["python3", "-m", "vllm.entrypoints.openai.api_server"],
        args=server_args(config),
        ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=SERVER_PORT, protocol="TCP")],
        env=_server_env(args),
        resources=k8s.core.v1.ResourceRequirementsArgs(limits=resources, requests=resources),
        volume_mounts=[
            *_model_mounts(args), k8s.core.v1.VolumeMountArgs(name="shm", mount_path="/dev/shm"),
            *(cache.mounts() if (cache := compile_cache(config, args.claim_name)) else []),
        ],
        security_context=dict(config.server.securityContext) or None,
        # Loading weights can take many minutes; until /health answers once, only this probe runs.
        startup_probe=k8s.core.v1.ProbeArgs(
            http_get=health,
            period_seconds=PROBE_PERIOD_SECONDS,
            timeout_seconds=5,
            failure_threshold=math.ceil(config.server.startupTimeoutSeconds / PROBE_PERIOD_SECONDS),
        ),
        readiness_probe=k8s.core.v1.ProbeArgs(
            http_get=health, period_seconds=PROBE_PERIOD_SECONDS, timeout_seconds=5, failure_threshold=3
        ),
        # Generous: a server busy with long generations answers /health slowly, and a restart
        # costs a full model load.
        liveness_probe=k8s.core.v1.ProbeArgs(
            http_get=health, period_seconds=30, timeout_seconds=10, failure_threshold=5
        ),
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
            command=["sh", "-c", wait_for_downloads_script(awaited)],
            volume_mounts=_model_mounts(args),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "10m", "memory": "32Mi"}, limits={"memory": "64Mi"}
            ),
        )
    ]


def _pod_spec(args: VllmServerArgs) -> k8s.core.v1.PodSpecArgs:
    config, server = args.config, args.config.server
    placement = server_placement(config)
    return k8s.core.v1.PodSpecArgs(
        init_containers=_wait_for_model(args) or None,
        containers=[_server_container(args)],
        node_selector=placement.node_selector or None,
        tolerations=placement.tolerations or None,
        affinity=placement.affinity or None,
        runtime_class_name=server.runtimeClassName or None,
        priority_class_name=server.priorityClassName or None,
        service_account_name=server.serviceAccountName or None,
        security_context=dict(server.podSecurityContext) or None,
        image_pull_secrets=[{"name": name} for name in config.imagePullSecrets] or None,
        termination_grace_period_seconds=60,
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
        ],
    )


class VllmServer(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment

    def __init__(
        self,
        name: str,
        args: VllmServerArgs,
        opts: Optional[pulumi.ResourceOptions] = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ):
        super().__init__("vllm-serving:index:VllmServer", name, None, opts)
        config = args.config
        deploy_name = config.model.deployName
        labels = common_labels(deploy_name, "server", config.image.tag)
        if warning := unconstrained_binding_warning(config):
            pulumi.log.warn(warning)
        rollout_minutes = math.ceil(config.server.startupTimeoutSeconds / 60) + ROLLOUT_MARGIN_MINUTES
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=deploy_name, namespace=config.namespace, labels=labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # KEDA owns the replica count when it scales; Pulumi would reset it on every up.
                replicas=None if config.autoscaling.enabled else config.replicaCount,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(deploy_name, "server")),
                # A rolling update starts the new pod before stopping the old one, and waits forever
                # for a spare GPU where none exists; Recreate frees the GPUs first.
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels={**labels, **server_placement(config).labels},
                        annotations={**scrape_annotations(config.metrics), **config.server.podAnnotations} or None,
                    ),
                    spec=_pod_spec(args),
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
