"""The T9k vLLM chart's own fields: image, resources, the model volume, env and the Service.

Names, meanings and defaults are the chart's (`image.*`, `resources.limits.*`,
`model.volume.*`, `env`, `service.*`), so a values file from the chart maps over key for key.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from .fields import (
    CpuQuantity,
    KubernetesString,
    MemoryQuantity,
    StrictModel,
    dns1123_subdomain,
    env_name,
    kubernetes_string,
    quantity,
)

# The vLLM release this project was built and documented against (PyPI `vllm`
# 0.33.0, November 2026). The chart's own default, v0.3.3, predates the
# `vllm serve` entrypoint and most models served today.
DEFAULT_VLLM_TAG = "v0.33.0"

ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
SINGLE_NODE_ACCESS_MODES = ("ReadWriteOnce", "ReadWriteOncePod")


class ImageConfig(StrictModel):
    registry: str = Field("docker.io", description="Image registry.")
    repository: str = Field("vllm/vllm-openai", description="Image repository.")
    tag: str = Field(DEFAULT_VLLM_TAG, description="Image tag; pin a release, never `latest`.")
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="Kubernetes image pull policy."
    )

    @field_validator("repository")
    @classmethod
    def _repository_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("tag")
    @classmethod
    def _tag_pinned(cls, value: str) -> str:
        if not value.strip() or value == "latest":
            raise ValueError(
                f"{value!r} is not a pinned tag: use a vLLM release such as {DEFAULT_VLLM_TAG!r}, "
                "so that every `pulumi up` runs the same server"
            )
        return value

    @property
    def reference(self) -> str:
        prefix = f"{self.registry.rstrip('/')}/" if self.registry else ""
        return f"{prefix}{self.repository}:{self.tag}"


class ResourceLimits(StrictModel):
    cpu: CpuQuantity = Field("4", description="CPU limit (and request) of the server container.")
    memory: MemoryQuantity = Field("64Gi", description="Memory limit (and request) of the server container.")
    gpu: int = Field(
        1,
        alias="nvidia.com/gpu",
        description="GPUs per replica; also vLLM's tensor parallel size.",
    )

    @field_validator("gpu")
    @classmethod
    def _at_least_one_gpu(cls, value: int) -> int:
        if value < 1:
            raise ValueError(
                f"{value} GPUs: the vllm/vllm-openai image serves on NVIDIA GPUs, so at least 1 is needed"
            )
        return value


class ResourcesConfig(StrictModel):
    limits: ResourceLimits = Field(default_factory=ResourceLimits, description="Resource limits of the server container; the requests are the same.")


class VolumeConfig(StrictModel):
    storageClass: str = Field("", description="Storage class of a new model volume; empty for the cluster default.")
    size: str = Field("32Gi", description="Size of a new model volume.")
    accessModes: list[str] = Field(
        default_factory=lambda: ["ReadWriteOnce"],
        description="Access modes of the model volume (new or existing).",
    )
    existingClaim: str = Field("", description="An existing PersistentVolumeClaim holding (or to hold) the model.")
    subPath: str = Field("", description="Directory of the volume that holds the model files.")
    retainOnDelete: bool = Field(
        True,
        description="Keep a new volume, and the weights on it, in the cluster when Pulumi deletes it "
        "(`pulumi destroy`, a replacement): Pulumi's `retainOnDelete`. Set false, and `pulumi up`, "
        "before a `pulumi destroy` that should delete the weights too.",
    )
    protect: bool = Field(
        False,
        description="Also mark a new volume with Pulumi's `protect`: then `pulumi destroy` stops with an "
        "error before deleting anything, and so does any change that would replace the claim.",
    )
    keepPreviousVersions: int = Field(
        1,
        ge=0,
        description="Model versions kept on the volume besides the current one, for a rollback without "
        "a download; 0 deletes the previous one once the new one is complete.",
    )

    @field_validator("size", mode="before")
    @classmethod
    def _size_quantity(cls, value: Any) -> str:
        return quantity(value, "the volume size")

    @field_validator("accessModes")
    @classmethod
    def _known_access_modes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"must list at least one of {', '.join(ACCESS_MODES)}")
        unknown = [mode for mode in value if mode not in ACCESS_MODES]
        if unknown:
            raise ValueError(f"{', '.join(map(repr, unknown))} not allowed; allowed: {', '.join(ACCESS_MODES)}")
        return value

    @field_validator("existingClaim")
    @classmethod
    def _claim_name(cls, value: str) -> str:
        return dns1123_subdomain(value, "claim name")

    @field_validator("subPath")
    @classmethod
    def _relative_sub_path(cls, value: str) -> str:
        parts = value.split("/")
        if value.startswith("/") or ".." in parts:
            raise ValueError(f"{value!r} must be a relative path inside the volume (no leading '/', no '..')")
        return value.strip("/")

    @property
    def copies_during_change(self) -> int:
        """Copies of the weights on the volume at the peak of a source change: the Job first prunes
        down to the served version and the kept ones (the served one stays even with
        keepPreviousVersions 0), then downloads the new copy beside them (components/scripts/job.sh)."""
        return max(self.keepPreviousVersions, 1) + 1

    @property
    def single_node(self) -> bool:
        """Every access mode lets only one node mount the volume: replicas cannot spread."""
        return all(mode in SINGLE_NODE_ACCESS_MODES for mode in self.accessModes)


class EnvVar(StrictModel):
    name: str = Field(description="Name of the environment variable.")
    value: Optional[str] = Field(None, description="Its value; set this or valueFrom.")
    valueFrom: Optional[dict[str, Any]] = Field(
        None, description="Kubernetes valueFrom (secretKeyRef, configMapKeyRef, ...); set this or value."
    )

    @field_validator("name")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return env_name(value)

    @field_validator("value", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # YAML and `pulumi config set --path` turn `1` or `true` into numbers and booleans.
        return kubernetes_string(value)


class ServiceConfig(StrictModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field("ClusterIP", description="Service type.")
    annotations: dict[str, KubernetesString] = Field(default_factory=dict, description="Annotations on the Service.")
