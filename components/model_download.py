"""The Job that fills the model directory from Hugging Face, git or S3, once.

The commands come from the files in components/scripts/, shipped unchanged in a
ConfigMap; the tests run those same files against local servers. The scripts write
a completion marker holding the source fingerprint only after every byte is in
place, so a re-run with the model complete exits at once and an interrupted one is
never taken for complete.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from .config import DEFAULT_GIT_IMAGE, DEFAULT_S3_IMAGE, DownloadConfig, EnvVar, ImageConfig, ModelConfig
from .env import env_var_args
from .labels import common_labels

SCRIPTS_DIR = Path(__file__).parent / "scripts"
SCRIPTS_MOUNT = "/scripts"
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


def _secret_env(name: str, secret: str, key: str, optional: bool = False) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(
        name=name,
        value_from=k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret, key=key, optional=optional or None)
        ),
    )


def source_env(model: ModelConfig, parallelism: int) -> list[k8s.core.v1.EnvVarArgs]:
    """What download.sh reads for the model's source; tokens only ever by reference to a Secret."""
    plain = lambda name, value: k8s.core.v1.EnvVarArgs(name=name, value=value)  # noqa: E731
    if model.source == "huggingface":
        hf = model.huggingface
        env = [
            plain("HF_MODEL_ID", hf.id),
            plain("HF_REVISION", hf.revision),
            plain("HF_FILES", hf.files),
            plain("HF_MAX_WORKERS", str(parallelism)),
            # The Job runs as a non-root user in an image whose HOME is root's.
            plain("HF_HOME", "/tmp/hf-home"),
        ]
        if hf.existingSecret:
            env.append(_secret_env("HF_TOKEN", hf.existingSecret, "token"))
        return env
    if model.source == "git":
        env = [
            plain("GIT_URL", model.git.url),
            plain("GIT_REF", model.git.ref),
            plain("GIT_LFS_CONCURRENCY", str(parallelism)),
        ]
        if model.git.existingSecret:
            env.append(_secret_env("GIT_TOKEN", model.git.existingSecret, "token"))
        return env
    secret = model.s3.existingSecret
    return [
        plain("S3_URL", model.s3.url),
        plain("S3_CONCURRENCY", str(parallelism)),
        # The keys of the T9k chart's s3-env Secret, so migrated Secrets work unchanged.
        _secret_env("AWS_ACCESS_KEY_ID", secret, "accessKeyID"),
        _secret_env("AWS_SECRET_ACCESS_KEY", secret, "secretAccessKey"),
        _secret_env("S3_ENDPOINT_URL", secret, "endpoint", optional=True),
        _secret_env("AWS_REGION", secret, "region", optional=True),
    ]


def download_image(model: ModelConfig, download: DownloadConfig, server_image: ImageConfig) -> str:
    if download.image:
        return download.image
    # The server image already carries huggingface_hub, and the node will pull it anyway.
    return {"huggingface": server_image.reference, "git": DEFAULT_GIT_IMAGE, "s3": DEFAULT_S3_IMAGE}[model.source]


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
    # Start of the ConfigMap's and the Job's names; the model's deployName unless a LoRA adapter's.
    name_prefix: str = ""


class ModelDownload(pulumi.ComponentResource):
    """A ConfigMap of the download scripts and the Job that runs them; `job` is what to depend on."""

    job: k8s.batch.v1.Job
    fingerprint: str

    def __init__(
        self,
        name: str,
        args: ModelDownloadArgs,
        opts: Optional[pulumi.ResourceOptions] = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ):
        super().__init__("vllm-serving:index:ModelDownload", name, None, opts)
        model, download = args.model, args.download
        self.fingerprint = model.source_fingerprint
        version = args.server_image.tag
        prefix = args.name_prefix or args.deploy_name
        scripts = download_scripts()
        scripts_hash = hashlib.sha256(repr(sorted(scripts.items())).encode()).hexdigest()[:8]
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-scripts",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{prefix}-scripts-{scripts_hash}",
                namespace=args.namespace,
                labels=common_labels(args.deploy_name, "download", version),
            ),
            data=scripts,
            immutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

        own_env = [
            k8s.core.v1.EnvVarArgs(name="SOURCE", value=model.source),
            k8s.core.v1.EnvVarArgs(name="MODEL_DIR", value=_in_volume(model.model_dir)),
            k8s.core.v1.EnvVarArgs(name="VERSIONS_DIR", value=_in_volume(model.volume.subPath)),
            k8s.core.v1.EnvVarArgs(name="SOURCE_FINGERPRINT", value=self.fingerprint),
            # Whose versions prune_versions.sh may remove: this download's (model or adapter) only.
            k8s.core.v1.EnvVarArgs(name="VERSION_OWNER", value=prefix),
            k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp"),
            *source_env(model, download.parallelism),
        ]
        # The stack's env (proxies, mirrors) reaches the Job too, but never in place of the Job's own
        # variables: an HF_HOME meant for the server's cache would point the download at a read-only path.
        own_names = {var.name for var in own_env}
        container = k8s.core.v1.ContainerArgs(
            name="download",
            image=download_image(model, download, args.server_image),
            image_pull_policy=args.server_image.pullPolicy,
            command=["sh", f"{SCRIPTS_MOUNT}/job.sh"],
            env=[*own_env, *env_var_args([var for var in args.env if var.name not in own_names])],
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
        job_spec = k8s.batch.v1.JobSpecArgs(
            backoff_limit=download.backoffLimit,
            ttl_seconds_after_finished=download.ttlSecondsAfterFinished,
            # Stop the pod when `pulumi up` stops waiting, so nothing downloads unobserved.
            active_deadline_seconds=download.timeoutMinutes * 60,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=common_labels(args.deploy_name, "download", version)),
                spec=k8s.core.v1.PodSpecArgs(
                    restart_policy="Never",
                    image_pull_secrets=[{"name": name} for name in args.image_pull_secrets] or None,
                    security_context=k8s.core.v1.PodSecurityContextArgs(
                        run_as_non_root=download.runAsUser != 0,
                        run_as_user=download.runAsUser,
                        run_as_group=download.runAsUser,
                        fs_group=download.runAsUser,
                        # A recursive chown of hundreds of GB on every mount would stall each start.
                        fs_group_change_policy="OnRootMismatch",
                        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                    ),
                    containers=[container],
                    volumes=[
                        k8s.core.v1.VolumeArgs(
                            name="model",
                            persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                                claim_name=args.claim_name
                            ),
                        ),
                        k8s.core.v1.VolumeArgs(
                            name="scripts",
                            config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config_map.metadata.name),
                        ),
                        k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()),
                    ],
                ),
            ),
        )
        # The Job's pod template is immutable, so any change replaces the Job. Naming it from its
        # inputs gives the replacement a fresh name: Pulumi creates it before deleting the old one.
        job_inputs = {
            "fingerprint": self.fingerprint,
            "scripts": scripts_hash,
            "image": container.image,
            "pullPolicy": args.server_image.pullPolicy,
            "download": download.model_dump(mode="json"),
            "env": [var.model_dump(mode="json") for var in args.env],
            "secret": model.secret_name,
            "imagePullSecrets": args.image_pull_secrets,
            "volume": [args.claim_name_in_config, model.model_dir],
        }
        job_hash = hashlib.sha256(json.dumps(job_inputs, sort_keys=True).encode()).hexdigest()[:8]
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{prefix}-download-{job_hash}",
                namespace=args.namespace,
                labels=common_labels(args.deploy_name, "download", version),
            ),
            spec=job_spec,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(depends_on),
                # pulumi-kubernetes waits for the Job to complete; its default of 10 minutes is far
                # shorter than a large model's download.
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{download.timeoutMinutes}m", update=f"{download.timeoutMinutes}m"
                ),
            ),
        )
        self.register_outputs({"jobName": self.job.metadata.name, "fingerprint": self.fingerprint})
