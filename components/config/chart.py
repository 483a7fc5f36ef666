"""The T9k vLLM chart's own fields: image, resources, the model volume, env and the Service.

Names, meanings and defaults are the chart's (`image.*`, `resources.limits.*`,
`model.volume.*`, `env`, `service.*`), so a values file from the chart maps over key for key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .fields import (
    INT32_MAX,
    CpuQuantity,
    KubernetesString,
    StrictModel,
    annotation_map,
    bounded_text,
    dns1123_subdomain,
    env_name,
    image_registry,
    image_repository,
    image_tag,
    kubernetes_string,
    qualified_key,
    quantity,
    secret_data_key,
    shown,
)

# The newest vLLM release with an engine profile (components/engine; PyPI `vllm` 0.34.0,
# November 2026). The chart's own default, v0.3.3, predates the `vllm serve` entrypoint and most
# models served today.
DEFAULT_VLLM_TAG = "v0.34.0"

ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
SINGLE_NODE_ACCESS_MODES = ("ReadWriteOnce", "ReadWriteOncePod")
_SUB_PATH = re.compile(r"[A-Za-z0-9._+@=,~/-]*")


class ImageConfig(StrictModel):
    registry: str = Field("docker.io", description="Image registry.")
    repository: str = Field("vllm/vllm-openai", description="Image repository.")
    tag: str = Field(DEFAULT_VLLM_TAG, description="Image tag; pin a release, never `latest`.")
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="Kubernetes image pull policy."
    )

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str) -> str:
        return image_registry(value)

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        return image_repository(value)

    @field_validator("tag")
    @classmethod
    def _tag_pinned(cls, value: str) -> str:
        return image_tag(value, DEFAULT_VLLM_TAG)

    @property
    def reference(self) -> str:
        prefix = f"{self.registry.rstrip('/')}/" if self.registry else ""
        return f"{prefix}{self.repository}:{self.tag}"


# Below it the server is OOM-killed while it starts, over and over: vLLM's API server and engine core
# each import torch and vLLM. Measured on vLLM's CPU build (0.32) serving the tiny test model, the
# server's processes reached 2.5 GiB PSS (3.0 GiB RSS), and 1.5 GiB before the engine had started.
SERVER_MEMORY_FLOOR = (
    "1Gi",
    (
        "vLLM's API server and engine core each import torch and vLLM, about 2.5 GiB together "
        "on vLLM's CPU build with a tiny model (a number without a suffix is bytes: write 64Gi, not 64)"
    ),
)
ServerMemoryQuantity = Annotated[str, BeforeValidator(lambda value: quantity(value, "memory", SERVER_MEMORY_FLOOR))]


class ResourceLimits(StrictModel):
    cpu: CpuQuantity = Field("4", description="CPU limit (and request) of the server container.")
    memory: ServerMemoryQuantity = Field(
        "64Gi", description="Memory limit (and request) of the server container; at least 1Gi (vLLM's processes)."
    )
    gpu: int = Field(
        1,
        le=INT32_MAX,
        alias="nvidia.com/gpu",
        description="GPUs per replica; also vLLM's tensor parallel size.",
        # The validator below says why at least 1; the editor schema says that it is.
        json_schema_extra={"minimum": 1},
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

    @field_validator("storageClass")
    @classmethod
    def _storage_class(cls, value: str) -> str:
        return dns1123_subdomain(value, "StorageClass name")

    @field_validator("subPath")
    @classmethod
    def _relative_sub_path(cls, value: str) -> str:
        parts = value.split("/")
        if value.startswith("/") or ".." in parts:
            raise ValueError(f"{shown(value)} must be a relative path inside the volume (no leading '/', no '..')")
        # It reaches the download scripts and the pods' volume mounts: a space, a quote or a
        # newline in it is a bug waiting in some shell.
        if len(value) > 1024 or not _SUB_PATH.fullmatch(value):
            raise ValueError(
                f"{shown(value)} is not a safe directory name: letters, digits and ._+@=,~- between '/', "
                "at most 1024 characters"
            )
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


class KeySelector(StrictModel):
    """secretKeyRef and configMapKeyRef of an env entry."""

    name: str = Field(description="The Secret's or ConfigMap's name.")
    key: str = Field(description="The key of its data.")
    optional: bool | None = Field(None, description="Start the pod even when the Secret or key is missing.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return dns1123_subdomain(value, "Secret or ConfigMap name") or _required(value)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return secret_data_key(value, "Secret or ConfigMap key")


# What the API server accepts in an env var's fieldRef and resourceFieldRef (kubernetes,
# pkg/apis/core/validation/validation.go: validEnvDownwardAPIFieldPathExpressions (status.hostIPs
# from 1.29's PodHostIPs), the subscripted metadata.labels['k'] / metadata.annotations['k'] of
# validateDownwardAPIFieldRef, validContainerResourceFieldPathExpressions and the hugepages-
# prefixes, validateContainerResourceDivisor).
ENV_FIELD_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)
_SUBSCRIPTED_FIELD = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")
ENV_RESOURCES = (
    "limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
)
CPU_DIVISORS = ("1m", "1")
MEMORY_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")


class FieldSelector(StrictModel):
    fieldPath: str = Field(description="The pod field, e.g. metadata.name or status.podIP.")
    apiVersion: str | None = Field(None, description="Its API version; v1 by default, and the only one.")

    @field_validator("fieldPath")
    @classmethod
    def _path(cls, value: str) -> str:
        value = bounded_text(value, "fieldPath", 256)
        subscripted = _SUBSCRIPTED_FIELD.fullmatch(value)
        if subscripted:
            qualified_key(subscripted.group(2), f"{subscripted.group(1)[:-1]} key")
            return value
        if value not in ENV_FIELD_PATHS:
            raise ValueError(
                f"{value!r} is not a pod field Kubernetes passes to env: {', '.join(ENV_FIELD_PATHS)}, "
                "metadata.labels['<key>'] or metadata.annotations['<key>']"
            )
        return value

    @field_validator("apiVersion")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value not in (None, "v1"):
            raise ValueError(f"{value!r}: Kubernetes reads a pod field through apiVersion v1 only")
        return value


class ResourceFieldSelector(StrictModel):
    resource: str = Field(description="The container resource, e.g. limits.memory.")
    containerName: str | None = Field(None, description="The container; this one by default.")
    divisor: str | None = Field(None, description="The unit the value is given in, e.g. 1Mi.")

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        value = bounded_text(value, "resource", 256)
        if value not in ENV_RESOURCES and not value.startswith(("requests.hugepages-", "limits.hugepages-")):
            raise ValueError(
                f"{value!r} is not a container resource Kubernetes passes to env: {', '.join(ENV_RESOURCES)}, "
                "or requests./limits.hugepages-<size>"
            )
        return value

    @model_validator(mode="after")
    def _divisor(self) -> ResourceFieldSelector:
        if self.divisor is None:
            return self
        allowed = CPU_DIVISORS if self.resource.endswith(".cpu") else MEMORY_DIVISORS
        if self.divisor not in allowed:
            raise ValueError(f"divisor {self.divisor!r} is not one Kubernetes accepts for {self.resource}: {', '.join(allowed)}")
        return self


class EnvVarSource(StrictModel):
    """Kubernetes' EnvVarSource, typed: each name and key is checked before it reaches the API."""

    secretKeyRef: KeySelector | None = Field(None, description="A key of a Secret.")
    configMapKeyRef: KeySelector | None = Field(None, description="A key of a ConfigMap.")
    fieldRef: FieldSelector | None = Field(None, description="A field of the pod.")
    resourceFieldRef: ResourceFieldSelector | None = Field(None, description="A resource of the container.")

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


# Kubernetes caps a whole object at about 1.5 MB; one variable may not take a large part of it.
MAX_ENV_VALUE = 32 * 1024


class EnvVar(StrictModel):
    name: str = Field(description="Name of the environment variable.")
    value: str | None = Field(None, description="Its value; set this or valueFrom.")
    valueFrom: EnvVarSource | None = Field(
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

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: str | None) -> str | None:
        return None if value is None else bounded_text(value, "an env value", MAX_ENV_VALUE, secret=True)


def _required(value: str) -> str:
    if not value:
        raise ValueError("required")
    return value


class ServiceConfig(StrictModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field("ClusterIP", description="Service type.")
    annotations: dict[str, KubernetesString] = Field(default_factory=dict, description="Annotations on the Service.")

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return annotation_map(value, "service.annotations")
