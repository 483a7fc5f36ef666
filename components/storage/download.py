"""The Job that fills the model directory from Hugging Face, git or S3, once.

The commands come from the files in components/scripts/, shipped unchanged in a
ConfigMap; the tests run those same files against local servers. The scripts write
a completion marker holding the source fingerprint only after every byte is in
place, so a re-run with the model complete exits at once and an interrupted one is
never taken for complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from ..checksum import secret_checksum
from ..config import DownloadConfig, EnvVar, ImageConfig, ModelConfig, ModelSource
from ..env import env_var_args
from ..labels import VERSION_LABEL, common_labels
from ..names import adapter_tag, download_names
from .placement import PodPlacement

# The pod-side payload stays in components/scripts/ (one level up from this package).
SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "scripts"
SCRIPTS_MOUNT = "/scripts"
# pulumi-kubernetes replaces a Job carrying this annotation when its live Job has not completed
# (provider/pkg/provider/provider.go, `Diff`: `metadata.ReplaceUnready` and the Job checker's
# `Ready`). Without it, a Job that failed (deadline, backoff limit) is checkpointed with
# initialization errors, and every later `pulumi up` issues an empty update that re-awaits the same
# failed Job (pulumi/pulumi pkg/resource/deploy/step_generator.go, "If resource was unchanged, but
# there were initialization errors"), failing at once until someone deletes the Job and refreshes.
# The Job's name is fixed, so the provider deletes the failed Job before creating its replacement,
# which resumes the download from what the failed one left on the volume.
REPLACE_UNREADY_ANNOTATION = "pulumi.com/replaceUnready"
# The whole volume, not a sub-path: the Job creates the model's directory itself (as its own
# user, so it can write there) and prunes superseded versions beside it.
VOLUME_MOUNT = "/volume"


def _in_volume(path: str) -> str:
    return f"{VOLUME_MOUNT}/{path}" if path else VOLUME_MOUNT


def download_scripts() -> dict[str, str]:
    return {
        path.name: path.read_text()
        for path in sorted(SCRIPTS_DIR.iterdir())
        if path.is_file() and not path.name.startswith(".") and path.suffix in (".sh", ".py")
    }


def source_env(
    source: ModelSource, parallelism: int, secret_name: pulumi.Input[str] | None = None
) -> list[k8s.core.v1.EnvVarArgs]:
    """The source's pod environment as Kubernetes EnvVars; Secret keys by reference only.

    secret_name: the source's Secret as the SecretCheck hands it out (resolving only once its keys
    were checked); the plain name from config without a check."""
    return [
        k8s.core.v1.EnvVarArgs(
            name=env.name,
            value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(
                    name=secret_name or source.secret_name, key=env.secret_key, optional=env.optional or None
                )
            ),
        )
        if env.secret_key
        else k8s.core.v1.EnvVarArgs(name=env.name, value=env.value)
        for env in source.pod_env(parallelism)
    ]


@dataclass(frozen=True)
class ModelDownloadArgs:
    deploy_name: str
    namespace: str
    model: ModelConfig
    download: DownloadConfig
    server_image: ImageConfig
    env: list[EnvVar]
    claim_name: pulumi.Input[str]
    # The claim's name as config gives it: a plain string to name the Job from.
    claim_name_in_config: str
    image_pull_secrets: list[str] = field(default_factory=list)
    # Which LoRA adapter of config.lora.adapters this downloads (its index); None: the model.
    adapter_index: int | None = None
    # Where the Job's pod may run (placement.py, download_placement).
    placement: PodPlacement = field(default_factory=PodPlacement)
    # The source's Secret name, gated on the SecretCheck (None: read it from config unchecked).
    checked_secret_name: pulumi.Input[str] | None = None
    # When `env` is a Pulumi secret: the EnvSecret its values are read from.
    env_secret_name: pulumi.Input[str] | None = None
    # The server container's resources, which an init container holds for the Job's life, so that
    # the Job binds a new volume only where the server fits (placement.reserves_server_resources).
    reserved_resources: dict[str, str] | None = None

    @property
    def source(self) -> ModelSource:
        source = self.model.download_source
        if source is None:
            raise ValueError(f"{self.model.deployName}: nothing to download (model.source is empty)")
        return source

    @property
    def version_owner(self) -> str:
        """Whose versions in the volume these are (prune_versions.sh). Written into every version the
        download starts, so it never changes for a model or adapter already on disk: an adapter's
        stays `<deployName>-a<index>`, though its Kubernetes names no longer start that way."""
        return f"{self.namespace}/{self.deploy_name}{adapter_tag(self.adapter_index)}"

    @property
    def image(self) -> str:
        return self.download.image or self.source.default_image(self.server_image.reference)

    @property
    def labels(self) -> dict[str, str]:
        return common_labels(self.deploy_name, "download", self.server_image.tag)

    @property
    def pod_labels(self) -> dict[str, str]:
        """The pod template's labels, without the server's version: the template is immutable, so a
        label that changes with image.tag would replace a Job whose image did not change."""
        return {key: value for key, value in self.labels.items() if key != VERSION_LABEL}


def _container(args: ModelDownloadArgs, fingerprint: str) -> k8s.core.v1.ContainerArgs:
    model, download = args.model, args.download
    own_env = [
        k8s.core.v1.EnvVarArgs(name="SOURCE", value=model.source),
        k8s.core.v1.EnvVarArgs(name="MODEL_DIR", value=_in_volume(model.model_dir)),
        k8s.core.v1.EnvVarArgs(name="VERSIONS_DIR", value=_in_volume(model.volume.subPath)),
        k8s.core.v1.EnvVarArgs(name="SOURCE_FINGERPRINT", value=fingerprint),
        # Whose versions prune_versions.sh may remove: this download's (model or adapter, in this
        # namespace) only, so stacks sharing a claim and a sub-path never prune each other's.
        k8s.core.v1.EnvVarArgs(name="VERSION_OWNER", value=args.version_owner),
        # prune_versions.sh: versions kept besides this one (the size check counts the same).
        k8s.core.v1.EnvVarArgs(name="KEEP_PREVIOUS_VERSIONS", value=str(model.volume.keepPreviousVersions)),
        k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp"),
        *source_env(args.source, download.parallelism, args.checked_secret_name),
    ]
    # The stack's env (proxies, mirrors) reaches the Job too, but never in place of the Job's own
    # variables: an HF_HOME meant for the server's cache would point the download at a read-only path.
    own_names = {var.name for var in own_env}
    return k8s.core.v1.ContainerArgs(
        name="download",
        image=args.image,
        image_pull_policy=args.server_image.pullPolicy,
        command=["sh", f"{SCRIPTS_MOUNT}/job.sh"],
        # The scripts end a failure with one `download failed: ...` line; with this policy the kubelet
        # copies the log's end into the container's termination message, which pulumi-kubernetes'
        # Job awaiter puts into the failed update's error (provider/pkg/await/checker/pod/check.go).
        termination_message_policy="FallbackToLogsOnError",
        env=[*own_env, *env_var_args([var for var in args.env if var.name not in own_names], args.env_secret_name)],
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": download.cpu, "memory": download.memory},
            limits={"memory": download.memory},
        ),
        security_context=k8s.core.v1.SecurityContextArgs(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        ),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name="model", mount_path=VOLUME_MOUNT),
            k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_MOUNT, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ],
    )


RESERVATION_CONTAINER = "reserve-server-resources"


def _reservation(args: ModelDownloadArgs, container: k8s.core.v1.ContainerArgs) -> list[k8s.core.v1.ContainerArgs]:
    """An init container requesting the server's resources and exiting at once: the pod's request is
    the larger of its containers' sum and any init container's, held until the pod ends."""
    if args.reserved_resources is None:
        return []
    return [k8s.core.v1.ContainerArgs(
        name=RESERVATION_CONTAINER,
        image=container.image,
        image_pull_policy=container.image_pull_policy,
        command=["sh", "-c", ":"],
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests=dict(args.reserved_resources), limits=dict(args.reserved_resources)
        ),
        security_context=container.security_context,
    )]


def _job_spec(
    args: ModelDownloadArgs, container: k8s.core.v1.ContainerArgs, scripts: pulumi.Input[str]
) -> k8s.batch.v1.JobSpecArgs:
    download = args.download
    return k8s.batch.v1.JobSpecArgs(
        backoff_limit=download.backoffLimit,
        ttl_seconds_after_finished=download.ttlSecondsAfterFinished,
        # Stop the pod when `pulumi up` stops waiting, so nothing downloads unobserved.
        active_deadline_seconds=download.timeoutMinutes * 60,
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels={**args.pod_labels, **args.placement.labels}),
            spec=k8s.core.v1.PodSpecArgs(
                restart_policy="Never",
                node_selector=args.placement.node_selector or None,
                tolerations=args.placement.tolerations or None,  # type: ignore[arg-type]  # Kubernetes-shaped dicts, which the provider takes as they are
                affinity=args.placement.affinity or None,  # type: ignore[arg-type]  # Kubernetes-shaped dicts, which the provider takes as they are
                image_pull_secrets=[k8s.core.v1.LocalObjectReferenceArgs(name=name) for name in args.image_pull_secrets] or None,
                security_context=k8s.core.v1.PodSecurityContextArgs(
                    run_as_non_root=download.runAsUser != 0,
                    run_as_user=download.runAsUser,
                    run_as_group=download.runAsUser,
                    fs_group=download.runAsUser,
                    # A recursive chown of hundreds of GB on every mount would stall each start.
                    fs_group_change_policy="OnRootMismatch",
                    seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                ),
                init_containers=_reservation(args, container) or None,
                containers=[container],
                volumes=[
                    k8s.core.v1.VolumeArgs(
                        name="model",
                        persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                            claim_name=args.claim_name
                        ),
                    ),
                    k8s.core.v1.VolumeArgs(
                        name="scripts", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=scripts)
                    ),
                    k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()),
                ],
            ),
        ),
    )


def _hashable_env(var: EnvVar, secret: bool) -> dict:
    """An env entry as the Job's name hash sees it: a secret value only through a one-way checksum,
    since the name is in plain text everywhere."""
    entry = var.model_dump(mode="json")
    if secret and var.value is not None:
        entry["value"] = secret_checksum(var.value, f"env/{var.name}")
    return entry


def _job_hash(args: ModelDownloadArgs, fingerprint: str, scripts_hash: str) -> str:
    """The Job's pod template is immutable, so any change replaces the Job. Naming it from its
    inputs gives the replacement a fresh name: Pulumi creates it before deleting the old one."""
    job_inputs = {
        "fingerprint": fingerprint,
        "scripts": scripts_hash,
        "image": args.image,
        "pullPolicy": args.server_image.pullPolicy,
        # assumedBandwidthGBps only feeds the predicted cold start: changing it must not replace the Job.
        "download": args.download.model_dump(mode="json", exclude={"assumedBandwidthGBps"}),
        "env": [_hashable_env(var, args.env_secret_name is not None) for var in args.env],
        "secret": args.model.secret_name,
        "imagePullSecrets": args.image_pull_secrets,
        "volume": [args.claim_name_in_config, args.model.model_dir],
        "placement": dataclasses.asdict(args.placement),
        # Only when set, so that the name of every Job without it stays as it was.
        **({"reserved": args.reserved_resources} if args.reserved_resources is not None else {}),
    }
    return hashlib.sha256(json.dumps(job_inputs, sort_keys=True).encode()).hexdigest()[:8]


class ModelDownload(pulumi.ComponentResource):
    """A ConfigMap of the download scripts and the Job that runs them; `job` is what to depend on."""

    job: k8s.batch.v1.Job
    fingerprint: str

    def __init__(
        self,
        name: str,
        args: ModelDownloadArgs,
        opts: pulumi.ResourceOptions | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ):
        super().__init__("vllm-serving:index:ModelDownload", name, None, opts)
        self.fingerprint = args.model.source_fingerprint
        scripts = download_scripts()
        scripts_hash = hashlib.sha256(repr(sorted(scripts.items())).encode()).hexdigest()[:8]
        scripts_name, job_name = download_names(
            args.deploy_name, args.adapter_index, scripts_hash, _job_hash(args, self.fingerprint, scripts_hash)
        )
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-scripts",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=scripts_name, namespace=args.namespace, labels=args.labels
            ),
            data=scripts,
            immutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        timeout = f"{args.download.timeoutMinutes}m"
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=job_name,
                namespace=args.namespace,
                labels=args.labels,
                annotations={REPLACE_UNREADY_ANNOTATION: "true"},
            ),
            spec=_job_spec(args, _container(args, self.fingerprint), config_map.metadata.name),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(depends_on),
                # pulumi-kubernetes waits for the Job to complete; its default of 10 minutes is far
                # shorter than a large model's download.
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
            ),
        )
        self.register_outputs({"jobName": self.job.metadata.name, "fingerprint": self.fingerprint})
