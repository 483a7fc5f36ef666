"""The stack config schema: the T9k vLLM chart's values, plus what production needs.

Every key lives under the `vllm-serving:` namespace of a stack file. The chart's
field names, meanings and defaults are kept as they are (`replicaCount`,
`image.*`, `resources.limits.*`, `model.*`, `env`), so a values file from the
chart maps over key for key. Config is parsed here once; components receive the
typed result and never read Pulumi config themselves.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, Optional

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from .production_config import (
    ENGINE_FLAGS,
    ApiKeySecretRef,
    AutoscalingConfig,
    EngineConfig,
    HttpRouteConfig,
    IngressConfig,
    MetricsConfig,
    NetworkPolicyConfig,
    PodDisruptionBudgetConfig,
    resource_name,
)

CONFIG_NAMESPACE = "vllm-serving"

# The vLLM release this project was built and documented against (PyPI `vllm`
# 0.33.0, November 2026). The chart's own default, v0.3.3, predates the
# `vllm serve` entrypoint and most models served today.
DEFAULT_VLLM_TAG = "v0.33.0"
DEFAULT_GIT_IMAGE = "docker.io/alpine/git:v2.49.1"
DEFAULT_S3_IMAGE = "docker.io/rclone/rclone:1.74.2"

# Names derived from deployName carry suffixes ("-download-<hash>", "-scripts-<hash>");
# a Job's name also becomes a pod label value, which Kubernetes caps at 63.
MAX_DEPLOY_NAME = 40

ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
SINGLE_NODE_ACCESS_MODES = ("ReadWriteOnce", "ReadWriteOncePod")

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_QUANTITY = re.compile(
    r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
# What people write when they mean a Kubernetes suffix.
_QUANTITY_HINTS = {
    "kb": "Ki", "kib": "Ki", "mb": "Mi", "mib": "Mi", "gb": "Gi", "gib": "Gi",
    "tb": "Ti", "tib": "Ti", "pb": "Pi", "pib": "Pi", "g": "Gi", "t": "Ti",
}


def _quantity(value: Any, what: str) -> str:
    text = str(value).strip() if isinstance(value, (int, float, str)) else None
    if text is not None and not isinstance(value, bool) and _QUANTITY.match(text):
        return text
    hint = ""
    match = re.match(r"^(\d+(?:\.\d+)?)\s*([A-Za-z]+)$", text or "")
    if match and match.group(2).lower() in _QUANTITY_HINTS:
        hint = f'; did you mean "{match.group(1)}{_QUANTITY_HINTS[match.group(2).lower()]}"?'
    raise ValueError(
        f"{value!r} is not a Kubernetes quantity for {what} "
        f"(a number with an optional suffix Ki, Mi, Gi, Ti, or k, M, G, T, e.g. 24Gi){hint}"
    )


_SUFFIX_FACTORS = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}


def quantity_bytes(quantity: str) -> float:
    """The value of a Kubernetes quantity (already validated), e.g. 24Gi -> 25769803776."""
    match = _QUANTITY.match(quantity)
    number, suffix = match.group(1), match.group(3) or ""
    if suffix[:1] in ("e", "E") and suffix[1:].lstrip("+-").isdigit():
        return float(number) * 10 ** int(suffix[1:])
    return float(number) * _SUFFIX_FACTORS[suffix]


def _dns_label(value: str, what: str, pattern: re.Pattern[str], max_len: int = 63) -> str:
    if not value or len(value) > max_len or not pattern.match(value):
        kind = "a DNS-1035 label" if pattern is _DNS_1035 else "a DNS-1123 label"
        raise ValueError(
            f"{value!r} is not a valid {what}: it must be {kind} of at most {max_len} characters "
            "(lower-case letters, digits and '-', starting with a letter"
            + ("" if pattern is _DNS_1035 else " or digit")
            + ", ending with a letter or digit)"
        )
    return value


class _Strict(BaseModel):
    """Unknown keys are refused: a misspelt key would otherwise be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# --- the chart's fields ----------------------------------------------------------------------


class ImageConfig(_Strict):
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


class ResourceLimits(_Strict):
    cpu: str = Field("4", description="CPU limit (and request) of the server container.")
    memory: str = Field("64Gi", description="Memory limit (and request) of the server container.")
    gpu: int = Field(
        1,
        alias="nvidia.com/gpu",
        description="GPUs per replica; also vLLM's tensor parallel size.",
    )

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu_quantity(cls, value: Any) -> str:
        return _quantity(value, "CPU")

    @field_validator("memory", mode="before")
    @classmethod
    def _memory_quantity(cls, value: Any) -> str:
        return _quantity(value, "memory")

    @field_validator("gpu")
    @classmethod
    def _at_least_one_gpu(cls, value: int) -> int:
        if value < 1:
            raise ValueError(
                f"{value} GPUs: the vllm/vllm-openai image serves on NVIDIA GPUs, so at least 1 is needed"
            )
        return value


class ResourcesConfig(_Strict):
    limits: ResourceLimits = Field(default_factory=ResourceLimits)


class VolumeConfig(_Strict):
    storageClass: str = Field("", description="Storage class of a new model volume; empty for the cluster default.")
    size: str = Field("32Gi", description="Size of a new model volume.")
    accessModes: list[str] = Field(
        default_factory=lambda: ["ReadWriteOnce"],
        description="Access modes of the model volume (new or existing).",
    )
    existingClaim: str = Field("", description="An existing PersistentVolumeClaim holding (or to hold) the model.")
    subPath: str = Field("", description="Directory of the volume that holds the model files.")
    protect: bool = Field(
        True,
        description="Protect a new volume from deletion and replacement (Pulumi `protect`); "
        "set false to delete or replace it on purpose.",
    )

    @field_validator("size", mode="before")
    @classmethod
    def _size_quantity(cls, value: Any) -> str:
        return _quantity(value, "the volume size")

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
        return value and _dns_label(value, "claim name", _DNS_1123_SUBDOMAIN, 253)

    @field_validator("subPath")
    @classmethod
    def _relative_sub_path(cls, value: str) -> str:
        parts = value.split("/")
        if value.startswith("/") or ".." in parts:
            raise ValueError(f"{value!r} must be a relative path inside the volume (no leading '/', no '..')")
        return value.strip("/")


class HuggingFaceSource(_Strict):
    id: str = Field("", description="Hugging Face model id, e.g. codellama/CodeLlama-7b-Instruct-hf.")
    files: str = Field("", description="Comma-separated files or globs to download; empty for what vLLM loads.")
    existingSecret: str = Field("", description="Secret whose key `token` holds a Hugging Face token.")
    revision: str = Field("", description="Branch, tag or commit of the repository; empty for `main`.")


class GitSource(_Strict):
    url: str = Field("", description="HTTP(S) URL of the git repository holding the model (Git LFS supported).")
    ref: str = Field("", description="Branch, tag or commit; empty for the repository's default branch.")
    existingSecret: str = Field("", description="Secret whose key `token` holds a git token.")


class S3Source(_Strict):
    url: str = Field("", description="s3://bucket/prefix of the model files.")
    existingSecret: str = Field(
        "", description="Secret (T9k s3-env layout) with keys accessKeyID, secretAccessKey, endpoint, region."
    )


class LoraAdapter(_Strict):
    """A LoRA adapter, downloaded like the model and served under its own name."""

    name: str = Field(description="Name the adapter is served under in /v1/models.")
    source: Literal["huggingface", "git", "s3"] = Field(description="Where the adapter comes from.")
    huggingface: HuggingFaceSource = Field(default_factory=HuggingFaceSource)
    git: GitSource = Field(default_factory=GitSource)
    s3: S3Source = Field(default_factory=S3Source)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$", value):
            raise ValueError(
                f"{value!r} is not a valid adapter name: lower-case letters, digits and '-', starting with a "
                "letter, at most 20 characters (it also names the adapter's download Job)"
            )
        return value


class LoraConfig(_Strict):
    adapters: list[LoraAdapter] = Field(default_factory=list, description="LoRA adapters served beside the model.")
    maxLoraRank: Optional[int] = Field(None, ge=1, description="--max-lora-rank: the largest adapter rank.")
    maxLoras: Optional[int] = Field(None, ge=1, description="--max-loras: adapters in one batch.")


class ModelConfig(_Strict):
    deployName: str = Field(description="Name the model is served under; also names every resource.")
    volume: VolumeConfig = Field(default_factory=VolumeConfig)
    source: Literal["huggingface", "git", "s3", ""] = Field("", description="Where the model comes from.")
    size: str = Field(
        "", description="Approximate size of the weights, e.g. 15Gi; checked against the volume and the startup budget."
    )
    huggingface: HuggingFaceSource = Field(default_factory=HuggingFaceSource)
    git: GitSource = Field(default_factory=GitSource)
    s3: S3Source = Field(default_factory=S3Source)

    @field_validator("deployName")
    @classmethod
    def _deploy_name(cls, value: str) -> str:
        return _dns_label(value, "model.deployName", _DNS_1035, MAX_DEPLOY_NAME)

    @field_validator("size", mode="before")
    @classmethod
    def _size_quantity(cls, value: Any) -> str:
        return value and _quantity(value, "the model size")

    @property
    def model_dir(self) -> str:
        """The model's directory in the volume: with a download, one per source fingerprint, so a
        changed source downloads beside the old model and the server moves over once it is complete."""
        if not self.source:
            return self.volume.subPath
        return "/".join(part for part in (self.volume.subPath, self.source_fingerprint) if part)

    @property
    def source_spec(self) -> dict[str, str]:
        """What identifies the downloaded bytes; a change to any of it means a new download."""
        if self.source == "huggingface":
            spec = {"id": self.huggingface.id, "revision": self.huggingface.revision, "files": self.huggingface.files}
        elif self.source == "git":
            spec = {"url": self.git.url, "ref": self.git.ref}
        elif self.source == "s3":
            spec = {"url": self.s3.url}
        else:
            spec = {}
        return {"source": self.source, **spec}

    @property
    def source_fingerprint(self) -> str:
        canonical = json.dumps(self.source_spec, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def secret_name(self) -> str:
        return {
            "huggingface": self.huggingface.existingSecret,
            "git": self.git.existingSecret,
            "s3": self.s3.existingSecret,
        }.get(self.source, "")


class EnvVar(_Strict):
    name: str
    value: Optional[str] = None
    valueFrom: Optional[dict[str, Any]] = None

    @field_validator("name")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid environment variable name")
        return value

    @field_validator("value", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # YAML turns `value: 1` or `value: true` into numbers and booleans; Kubernetes wants strings.
        return json.dumps(value) if isinstance(value, (bool, int, float)) else value


# --- additions for production -------------------------------------------------------------


class Toleration(_Strict):
    key: str = ""
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] = ""
    tolerationSeconds: Optional[int] = None


GPU_TOLERATION = Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")


class ServiceConfig(_Strict):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field("ClusterIP", description="Service type.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations on the Service.")


class ServerConfig(_Strict):
    extraArgs: list[str] = Field(default_factory=list, description="More `vllm serve` arguments, e.g. --max-model-len=8192.")
    startupTimeoutSeconds: int = Field(
        1800, ge=60, description="How long the server may take to load the model before it is restarted."
    )
    assumedLoadRateGBps: float = Field(
        0.5,
        gt=0,
        description="Weight loading rate (GB/s) assumed when checking startupTimeoutSeconds against model.size.",
    )
    shmSizeLimit: str = Field(
        "", description="Size limit of the memory-backed /dev/shm; empty for no limit beyond the pod's memory."
    )
    nodeSelector: dict[str, str] = Field(default_factory=dict, description="Node labels the server pods require.")
    tolerations: list[Toleration] = Field(
        default_factory=lambda: [GPU_TOLERATION],
        description="Tolerations of the server pods; by default the nvidia.com/gpu taint.",
    )
    podAnnotations: dict[str, str] = Field(default_factory=dict, description="Annotations on the server pods.")
    affinity: dict[str, Any] = Field(default_factory=dict, description="Kubernetes affinity of the server pods.")
    runtimeClassName: str = Field("", description="RuntimeClass of the server pods, e.g. nvidia.")
    priorityClassName: str = Field("", description="PriorityClass of the server pods.")
    serviceAccountName: str = Field("", description="ServiceAccount of the server pods.")
    podSecurityContext: dict[str, Any] = Field(default_factory=dict, description="Pod securityContext of the server.")
    securityContext: dict[str, Any] = Field(default_factory=dict, description="Container securityContext of the server.")

    @field_validator("runtimeClassName", "priorityClassName", "serviceAccountName")
    @classmethod
    def _names(cls, value: str) -> str:
        return resource_name(value, "name")

    @field_validator("shmSizeLimit", mode="before")
    @classmethod
    def _shm_quantity(cls, value: Any) -> str:
        return value and _quantity(value, "the /dev/shm size limit")


class DownloadConfig(_Strict):
    image: str = Field("", description="Image of the download Job; empty for the source's default.")
    parallelism: int = Field(8, ge=1, le=256, description="Parallel file transfers of the download.")
    backoffLimit: int = Field(3, ge=0, le=20, description="Retries of a failed download pod.")
    ttlSecondsAfterFinished: Optional[int] = Field(
        None, ge=0, description="Delete the finished Job after this many seconds; unset to keep it."
    )
    timeoutMinutes: int = Field(
        240, ge=1, description="How long `pulumi up` waits for the download Job to complete."
    )
    runAsUser: int = Field(
        1000,
        ge=0,
        description="User (and group, fsGroup) of the download pod; 0 only for volumes whose directories "
        "belong to root and cannot be made group-writable.",
    )
    cpu: str = Field("1", description="CPU request of the download container.")
    memory: str = Field("2Gi", description="Memory request and limit of the download container.")
    # Unset (None) means the server's value; set, even to {} or [], it replaces it (components/placement.py).
    nodeSelector: Optional[dict[str, str]] = Field(
        None, description="Node labels the download pods require; unset for server.nodeSelector."
    )
    tolerations: Optional[list[Toleration]] = Field(
        None, description="Tolerations of the download pods; unset for server.tolerations."
    )
    affinity: Optional[dict[str, Any]] = Field(
        None, description="Kubernetes affinity of the download pods; unset for server.affinity."
    )

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: Any) -> str:
        return _quantity(value, "CPU")

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> str:
        return _quantity(value, "memory")


class ServingConfig(_Strict):
    """All of a stack's `vllm-serving:` config, validated."""

    namespace: str = Field("default", description="Namespace of every resource (must exist).")
    replicaCount: int = Field(1, ge=0, description="Number of server replicas.")
    image: ImageConfig = Field(default_factory=ImageConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    model: ModelConfig
    env: list[EnvVar] = Field(default_factory=list, description="Environment of the server and download pods.")
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    download: DownloadConfig = Field(default_factory=DownloadConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    apiKey: Optional[SecretStr] = Field(
        None, description="API key the server requires on /v1; set with `pulumi config set --secret apiKey`."
    )
    apiKeySecret: ApiKeySecretRef = Field(default_factory=ApiKeySecretRef)
    imagePullSecrets: list[str] = Field(default_factory=list, description="Secrets to pull images with (every pod).")
    checkSecrets: bool = Field(
        True, description="Read the referenced Secrets at preview and refuse missing keys (needs the cluster)."
    )
    ingress: IngressConfig = Field(default_factory=IngressConfig)
    httpRoute: HttpRouteConfig = Field(default_factory=HttpRouteConfig)
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    podDisruptionBudget: PodDisruptionBudgetConfig = Field(default_factory=PodDisruptionBudgetConfig)
    networkPolicy: NetworkPolicyConfig = Field(default_factory=NetworkPolicyConfig)

    @field_validator("imagePullSecrets")
    @classmethod
    def _pull_secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            resource_name(name, "Secret name")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return _dns_label(value, "namespace", _DNS_1123_LABEL)


def adapter_model(config: ServingConfig, adapter: LoraAdapter) -> ModelConfig:
    """A LoRA adapter as a model to download: its own source, in `<subPath>/lora/<name>` of the model's volume."""
    volume = config.model.volume
    sub_path = "/".join(part for part in (volume.subPath, "lora", adapter.name) if part)
    return config.model.model_copy(
        update={
            "volume": volume.model_copy(update={"subPath": sub_path}),
            "source": adapter.source,
            "huggingface": adapter.huggingface,
            "git": adapter.git,
            "s3": adapter.s3,
        }
    )


# --- parsing and cross-field rules --------------------------------------------------------


class ConfigError(pulumi.RunError):
    """Every problem of a stack config, each as (key path, what is wrong and what is allowed).

    A RunError: the Pulumi engine prints its message alone, without a traceback, and
    registers nothing, since the config is parsed before the first resource.
    """

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"invalid stack config ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"]
        lines += [f"  {CONFIG_NAMESPACE}:{path}: {message}" for path, message in self.problems]
        return "\n".join(lines)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at the parent of loc, to tell a misspelt key what it may have meant."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        annotation = getattr(field, "annotation", None)
        args = getattr(annotation, "__args__", ()) or ()
        candidates = [annotation, *args]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _pydantic_problems(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors():
        loc = item["loc"]
        path = ".".join(str(part) for part in loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(ServingConfig, loc)
            message = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        elif kind == "missing":
            message = "required"
        elif kind == "value_error":
            message = str(item["ctx"]["error"])
        elif kind == "literal_error":
            message = f"{item['input']!r} not allowed; allowed: {item['ctx']['expected']}"
        else:
            message = f"{item['msg']} (got {item['input']!r})"
        problems.append((path, message))
    return problems


def _cross_field_problems(config: ServingConfig) -> list[tuple[str, str, set[str]]]:
    """Rules across keys, each as (key path, message, the keys the rule reads)."""
    problems = []
    model, volume = config.model, config.model.volume
    required_by_source = {
        "huggingface": [("model.huggingface.id", model.huggingface.id)],
        "git": [("model.git.url", model.git.url)],
        "s3": [("model.s3.url", model.s3.url), ("model.s3.existingSecret", model.s3.existingSecret)],
    }
    for path, value in required_by_source.get(model.source, []):
        if not value.strip():
            problems.append((path, f'required when model.source is "{model.source}"', {path, "model.source"}))
    if model.source == "" and not volume.existingClaim:
        problems.append((
            "model.volume.existingClaim",
            'required when model.source is "" (no download): name the claim that holds the model, '
            "or set model.source to huggingface, git or s3",
            {"model.source", "model.volume.existingClaim"},
        ))
    if model.source == "git" and model.git.url and not re.match(r"^https?://", model.git.url):
        problems.append(("model.git.url", f"{model.git.url!r} must be an http:// or https:// URL", {"model.git.url"}))
    if model.source == "s3" and model.s3.url and not re.match(r"^s3://[^/]+", model.s3.url):
        problems.append(("model.s3.url", f"{model.s3.url!r} must look like s3://bucket/prefix", {"model.s3.url"}))
    single_node = [mode for mode in volume.accessModes if mode in SINGLE_NODE_ACCESS_MODES]
    if config.replicaCount > 1 and len(single_node) == len(volume.accessModes):
        problems.append((
            "replicaCount",
            f"{config.replicaCount} replicas cannot share a {single_node[0]} model volume: pods scheduled on "
            "other nodes could not mount it and would stay Pending. Use 1 replica, or a volume with "
            "ReadWriteMany or ReadOnlyMany in model.volume.accessModes",
            {"replicaCount", "model.volume.accessModes"},
        ))
    problems += _read_write_once_pod_problems(config)
    problems += _model_size_problems(config)
    problems += _extra_args_problems(config)
    problems += _production_problems(config)
    for index, var in enumerate(config.env):
        if (var.value is None) == (var.valueFrom is None):
            problems.append((f"env.{index}", f"{var.name}: set exactly one of value or valueFrom", {"env"}))
    return problems


# vLLM flags this program always derives from config, so that the two can never disagree.
PROGRAM_SET_FLAGS = {
    "--model": "model.volume (the model is mounted at /model)",
    "--served-model-name": "model.deployName",
    "--port": "the Service's port 8000",
    "--host": "the pod network (0.0.0.0)",
    # On the command line the key would be in plain text in the manifest and in Pulumi's state.
    "--api-key": "apiKey (a Pulumi secret) or apiKeySecret",
}


def _canonical_flag(argument: str) -> str:
    """vLLM's parser reads --tensor_parallel_size as --tensor-parallel-size; so must the checks."""
    flag = argument.split("=", 1)[0]
    return "--" + flag[2:].replace("_", "-") if flag.startswith("--") else flag


def _typed_keys_set(config: ServingConfig) -> set[str]:
    """Typed keys that put a flag on the command line."""
    keys = {f"engine.{name}" for name, value in config.engine if value not in (None, False)}
    if config.engine.pipelineParallelSize == 1:
        keys.discard("engine.pipelineParallelSize")
    keys.add("engine.tensorParallelSize")  # always on the command line, from the GPUs by default
    if config.lora.adapters:
        keys.add("lora.adapters")
    keys |= {f"lora.{name}" for name in ("maxLoraRank", "maxLoras") if getattr(config.lora, name) is not None}
    return keys


def _extra_args_problems(config: ServingConfig) -> list[tuple[str, str, set[str]]]:
    problems = []
    typed = _typed_keys_set(config)
    for index, argument in enumerate(config.server.extraArgs):
        flag = _canonical_flag(argument)
        path = f"server.extraArgs.{index}"
        if flag in PROGRAM_SET_FLAGS:
            message = f"{flag} is set by this program from {PROGRAM_SET_FLAGS[flag]}; set it there instead"
            problems.append((path, message, {"server.extraArgs"}))
        elif ENGINE_FLAGS.get(flag) in typed:
            key = ENGINE_FLAGS[flag]
            message = f"{flag} is also given by {key}; set it in one place (the typed key)"
            problems.append((path, message, {"server.extraArgs", key.split(" ")[0]}))
    return problems


def _production_problems(config: ServingConfig) -> list[tuple[str, str, set[str]]]:
    problems = []
    engine, gpus = config.engine, config.resources.limits.gpu
    tensor = engine.tensorParallelSize or gpus // engine.pipelineParallelSize
    if tensor * engine.pipelineParallelSize != gpus:
        problems.append((
            "engine.tensorParallelSize" if engine.tensorParallelSize else "engine.pipelineParallelSize",
            f"tensor parallel {tensor} × pipeline parallel {engine.pipelineParallelSize} = "
            f"{tensor * engine.pipelineParallelSize}, but each pod gets {gpus} GPUs "
            '(resources.limits."nvidia.com/gpu"); the product must equal the GPUs',
            {"engine", "resources.limits"},
        ))
    names = [adapter.name for adapter in config.lora.adapters]
    for index, adapter in enumerate(config.lora.adapters):
        path = f"lora.adapters.{index}"
        if names.count(adapter.name) > 1 or adapter.name == config.model.deployName:
            problems.append((f"{path}.name", f"{adapter.name!r} is used twice (adapter and model names must differ)", {path}))
        required = {"huggingface": ("id", adapter.huggingface.id), "git": ("url", adapter.git.url),
                    "s3": ("url", adapter.s3.url)}[adapter.source]
        if not required[1].strip():
            problems.append((f"{path}.{adapter.source}.{required[0]}", f'required when source is "{adapter.source}"', {path}))
        if adapter.source == "s3" and not adapter.s3.existingSecret:
            problems.append((f"{path}.s3.existingSecret", 'required when source is "s3"', {path}))
    if config.apiKey is not None or config.apiKeySecret.name:
        for index, var in enumerate(config.env):
            if var.name == "VLLM_API_KEY":
                problems.append((f"env.{index}", "VLLM_API_KEY comes from apiKey / apiKeySecret; set it there only", {"env"}))
    if config.apiKey is not None and config.apiKeySecret.name:
        problems.append(("apiKeySecret.name", "set either apiKey or apiKeySecret, not both", {"apiKey", "apiKeySecret"}))
    ingress = config.ingress
    if ingress.enabled and not ingress.host:
        problems.append(("ingress.host", "required when ingress.enabled is true", {"ingress"}))
    if config.httpRoute.enabled and not config.httpRoute.parentRefs:
        problems.append(("httpRoute.parentRefs", "name at least one Gateway when httpRoute.enabled is true", {"httpRoute"}))
    scaling = config.autoscaling
    if scaling.enabled:
        if not re.match(r"^https?://", scaling.prometheusAddress):
            problems.append((
                "autoscaling.prometheusAddress",
                "required when autoscaling.enabled is true: the http(s) URL of the Prometheus that scrapes vLLM",
                {"autoscaling"},
            ))
        if scaling.minReplicas > scaling.maxReplicas:
            problems.append(("autoscaling.minReplicas", f"{scaling.minReplicas} is more than maxReplicas {scaling.maxReplicas}", {"autoscaling"}))
        modes = config.model.volume.accessModes
        if scaling.maxReplicas > 1 and all(mode in SINGLE_NODE_ACCESS_MODES for mode in modes):
            problems.append((
                "autoscaling.maxReplicas",
                f"{scaling.maxReplicas} replicas cannot share a {modes[0]} model volume: pods on other nodes could "
                "not mount it. Use maxReplicas 1, or ReadWriteMany / ReadOnlyMany in model.volume.accessModes",
                {"autoscaling", "model.volume.accessModes"},
            ))
    for index, namespace in enumerate(config.networkPolicy.allowedNamespaces):
        if not _DNS_1123_LABEL.match(namespace):
            problems.append((f"networkPolicy.allowedNamespaces.{index}", f"{namespace!r} is not a namespace name", {"networkPolicy"}))
    return problems


def _read_write_once_pod_problems(config: ServingConfig) -> list[tuple[str, str, set[str]]]:
    """ReadWriteOncePod admits one pod at a time: the scheduler's VolumeRestrictions plugin refuses a
    second (kubernetes/kubernetes, pkg/scheduler/framework/plugins/volumerestrictions/volume_restrictions.go,
    ErrReasonReadWriteOncePodConflict). A download beside the running server could never start, so a
    model or adapter change would wait forever (the Job Pending, the server waiting for the Job)."""
    modes = config.model.volume.accessModes
    if "ReadWriteOncePod" not in modes:
        return []
    reads = {"model.volume.accessModes", "model.source", "lora.adapters"}
    if len(modes) > 1:
        # pkg/apis/core/validation/validation.go: "may not use ReadWriteOncePod with other access modes".
        return [("model.volume.accessModes", "ReadWriteOncePod cannot be combined with other access modes "
                 "(Kubernetes refuses such a claim)", reads)]
    if config.model.source or config.lora.adapters:
        downloads = "model.source is set" if config.model.source else "lora.adapters are set"
        return [(
            "model.volume.accessModes",
            f"ReadWriteOncePod admits one pod at a time, but {downloads}: a download Job must mount the "
            "volume while the server runs (on every model or adapter change), and would wait forever. Use "
            "ReadWriteOnce (the Job then runs on the server's node), or a pre-filled model.volume.existingClaim "
            'with model.source "" and no lora.adapters',
            reads,
        )]
    return []


# CUDA context, graph capture and compilation come on top of reading the weights.
STARTUP_OVERHEAD_SECONDS = 120


def _model_size_problems(config: ServingConfig) -> list[tuple[str, str, set[str]]]:
    model, server = config.model, config.server
    if not model.size:
        return []
    problems = []
    size = quantity_bytes(model.size)
    if not model.volume.existingClaim and size > quantity_bytes(model.volume.size):
        problems.append((
            "model.size",
            f"{model.size} of weights do not fit model.volume.size {model.volume.size}",
            {"model.size", "model.volume.size", "model.volume.existingClaim"},
        ))
    needed = size / 1e9 / server.assumedLoadRateGBps + STARTUP_OVERHEAD_SECONDS
    if needed > server.startupTimeoutSeconds:
        problems.append((
            "server.startupTimeoutSeconds",
            f"{server.startupTimeoutSeconds} s is too short to load {model.size} ({size / 1e9:.1f} GB) at "
            f"{server.assumedLoadRateGBps:g} GB/s (server.assumedLoadRateGBps): that needs about "
            f"{needed:.0f} s ({needed / 60:.0f} min) with {STARTUP_OVERHEAD_SECONDS} s of start-up; "
            "raise startupTimeoutSeconds, or the assumed rate if your storage is faster",
            {"server.startupTimeoutSeconds", "server.assumedLoadRateGBps", "model.size"},
        ))
    return problems


def parse_config(raw: dict[str, Any], secret_keys: Optional[set[str]] = None) -> ServingConfig:
    """Validate a stack's config (keys without the namespace) or raise ConfigError listing every problem.

    secret_keys: the keys Pulumi holds as secrets; when given, an apiKey that is not one is refused.
    """
    plain_api_key = []
    if secret_keys is not None and raw.get("apiKey") and "apiKey" not in secret_keys:
        plain_api_key = [(
            "apiKey",
            "must be a Pulumi secret, or it would sit in plain text in the stack file and the state: "
            "pulumi config set --secret apiKey <key>",
        )]
    try:
        config = ServingConfig.model_validate(raw)
    except ValidationError as error:
        problems = plain_api_key + _pydantic_problems(error)
        # Cross-field rules need typed fields; check them as far as the valid parts allow,
        # so that one run reports as much as it can.
        problems += _cross_field_problems_best_effort(raw, {path for path, _ in problems})
        raise ConfigError(problems) from None
    problems = plain_api_key + [(path, message) for path, message, _ in _cross_field_problems(config)]
    if problems:
        raise ConfigError(problems)
    return config


def _cross_field_problems_best_effort(raw: dict[str, Any], broken: set[str]) -> list[tuple[str, str]]:
    """The cross-field rules, with each broken key put back to its default."""
    patched = json.loads(json.dumps(raw, default=str))
    for path in broken:
        node, parts = patched, path.split(".")
        # Drop the deepest dict key on the path: the value below it (list item or scalar) is what failed.
        while len(parts) > 1 and isinstance(node.get(parts[0]), dict):
            node, parts = node[parts[0]], parts[1:]
        node.pop(parts[0], None)
    if "model.deployName" in broken and isinstance(patched.get("model"), dict):
        patched["model"]["deployName"] = "placeholder"
    try:
        config = ServingConfig.model_validate(patched)
    except ValidationError:
        return []
    return [
        (path, message)
        for path, message, reads in _cross_field_problems(config)
        if not any(key == read or key.startswith(read + ".") for key in broken for read in reads)
    ]


def load_config() -> ServingConfig:
    """The stack's config as the Pulumi engine passed it in, validated."""
    from pulumi.runtime import config as runtime_config

    raw = read_pulumi_config()
    # The CLI passes secret keys through the environment; an automation or mocked engine, in memory.
    from_env = set(runtime_config.get_config_secret_keys_env())
    secret_keys = {
        key for key in raw
        if runtime_config.is_config_secret(f"{CONFIG_NAMESPACE}:{key}") or f"{CONFIG_NAMESPACE}:{key}" in from_env
    }
    return parse_config(raw, secret_keys)


def read_pulumi_config() -> dict[str, Any]:
    """Every `vllm-serving:` key the Pulumi engine passed in, structured values decoded."""
    from pulumi.runtime import config as runtime_config

    return decode_engine_config({**runtime_config.get_config_env(), **runtime_config.CONFIG.get()})


def decode_engine_config(values: dict[str, Any]) -> dict[str, Any]:
    """The engine's config map (namespaced keys, structured values as JSON text) as nested data."""
    raw = {}
    prefix = f"{CONFIG_NAMESPACE}:"
    for key, value in values.items():
        if not key.startswith(prefix):
            continue
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass  # a plain string that happens to start with a bracket (e.g. a secret's placeholder)
        raw[key[len(prefix):]] = value
    return raw
