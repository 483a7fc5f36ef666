"""The server's settings beyond the chart: the pod (`server.*`), the vLLM engine (`engine.*`)
and the download Job (`download.*`)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from ..fit.gpus import GPU_TABLE
from .chart import VolumeConfig
from .fields import (
    INT32_MAX,
    CpuQuantity,
    KubernetesString,
    StrictModel,
    annotation_map,
    bounded_text,
    dns1123_subdomain,
    image_reference,
    label_value,
    labels,
    qualified_key,
    quantity,
)

# One `vllm serve` argument, and all of them: a 10 MB argument is a mistake, not a flag.
MAX_EXTRA_ARG = 4 * 1024
MAX_EXTRA_ARGS_TOTAL = 64 * 1024


class Toleration(StrictModel):
    key: str = Field("", description="Taint key to tolerate; empty with Exists for every taint.")
    operator: Literal["Exists", "Equal"] = Field("Equal", description="Exists, or Equal to value.")
    value: KubernetesString = Field("", description="Taint value, with operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] = Field(
        "", description="Taint effect to tolerate; empty for every effect."
    )
    tolerationSeconds: int | None = Field(None, ge=-(2**63), le=2**63 - 1, description="With NoExecute: how long the pod stays once tainted.")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return value and qualified_key(value, "toleration key")

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        return label_value(value, "toleration value")


GPU_TOLERATION = Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
# GPU feature discovery's label of a node's GPU model (NVIDIA gpu-feature-discovery).
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# The compressed size of vLLM 0.33's vllm/vllm-openai image, as issue 13 measured it ("about 12 GB").
VLLM_IMAGE_GB = 12.0


class CompileCacheConfig(StrictModel):
    """vLLM's compile cache (VLLM_CACHE_ROOT: torch.compile artifacts) kept across restarts."""

    enabled: bool = Field(False, description="Keep vLLM's compile cache on a volume, so a restart does not recompile.")
    existingClaim: str = Field(
        "",
        description="A claim of its own for the cache (mounted read-write); empty: the directory "
        "compile-cache/ of the model volume.",
    )
    accessModes: list[str] = Field(
        default_factory=lambda: ["ReadWriteOnce"],
        description="Access modes of existingClaim, as its claim lists them: every server pod writes the cache, "
        "so several pods (server.nodes > 1, more than one replica, rollout surge) need ReadWriteMany.",
    )
    gpuType: str = Field(
        "",
        description="The GPU model the cache is compiled for, part of its key; empty: the server's "
        f"nodeSelector {GPU_PRODUCT_LABEL}.",
    )

    @field_validator("existingClaim")
    @classmethod
    def _claim_name(cls, value: str) -> str:
        return dns1123_subdomain(value, "claim name")

    @field_validator("accessModes")
    @classmethod
    def _known_access_modes(cls, value: list[str]) -> list[str]:
        return VolumeConfig._known_access_modes(value)


# Each item on its own, so that a message names the item (server.extraArgs.3).
ExtraArg = Annotated[str, AfterValidator(lambda value: bounded_text(value, "each of server.extraArgs", MAX_EXTRA_ARG))]


class NetworkConfig(StrictModel):
    """The network the collective (NCCL, Gloo) traffic of a multi-node group uses; server.nodes > 1 only."""

    socketInterface: str = Field(
        "",
        description="Network interface NCCL and Gloo bind to (NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME), "
        "e.g. eth0; empty to let them choose.",
    )
    rdmaResource: str = Field(
        "",
        description="Extended resource of an RDMA device each pod requests, e.g. rdma/ib or "
        "nvidia.com/hostdev; empty for TCP only. Adds the IPC_LOCK capability NCCL needs to pin memory.",
    )
    rdmaCount: int = Field(1, ge=1, description="How many of rdmaResource each pod requests.")
    hostNetwork: bool = Field(
        False, description="Run the group's pods in the node's network namespace (for RDMA setups that need it)."
    )

    @field_validator("socketInterface")
    @classmethod
    def _interface_name(cls, value: str) -> str:
        # Linux interface names: at most 15 characters, no '/' or whitespace (IFNAMSIZ); NCCL also
        # reads a leading ^ (exclude) or = (exact), and a comma-separated list.
        if value and not re.fullmatch(r"[\^=]?[A-Za-z0-9_.:-]{1,15}(,[A-Za-z0-9_.:-]{1,15})*", value):
            raise ValueError(f"{value!r} is not a network interface name (or a comma-separated list, e.g. eth0)")
        return value

    @field_validator("rdmaResource")
    @classmethod
    def _resource_name(cls, value: str) -> str:
        if value and not re.fullmatch(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value):
            raise ValueError(f"{value!r} is not a Kubernetes resource name (e.g. rdma/ib)")
        return value


class ServerConfig(StrictModel):
    extraArgs: list[ExtraArg] = Field(default_factory=list, description="More `vllm serve` arguments, e.g. --max-model-len=8192.")
    engineVersion: str = Field(
        "",
        description="The vLLM release the image runs (e.g. 0.33.0), for a custom image.tag that does not "
        "name one; it picks the engine profile (flags, defaults, routes) instead of the tag. Empty: read "
        "from image.tag.",
    )
    startupTimeoutSeconds: int = Field(
        1800, ge=60, le=INT32_MAX, description="How long the server may take to load the model before it is restarted."
    )
    assumedLoadRateGBps: float = Field(
        0.5,
        gt=0,
        description="Weight loading rate (GB/s) assumed when checking startupTimeoutSeconds against model.size.",
    )
    drainSeconds: int = Field(
        30,
        ge=0,
        le=3600,
        description="How long a terminating server pod keeps serving before vLLM is told to stop, so that "
        "endpoints, kube-proxy and ingress controllers stop sending it new requests first.",
    )
    shutdownTimeoutSeconds: int = Field(
        300,
        ge=0,
        le=86400,
        description="--shutdown-timeout: how long vLLM lets in-flight requests finish after SIGTERM; 0 aborts them.",
    )
    rollout: Literal["auto", "oneAtATime", "surge", "recreate"] = Field(
        "auto",
        description="How a pod template change rolls out: recreate (every pod stops first), oneAtATime "
        "(maxSurge 0, maxUnavailable 1), surge (maxSurge 1, maxUnavailable 0: needs a spare GPU); auto: "
        "recreate for one replica, oneAtATime for several.",
    )
    shmSizeLimit: str = Field(
        "", description="Size limit of the memory-backed /dev/shm; empty for no limit beyond the pod's memory."
    )
    nodeSelector: dict[str, KubernetesString] = Field(default_factory=dict, description="Node labels the server pods require.")
    tolerations: list[Toleration] = Field(
        default_factory=lambda: [GPU_TOLERATION],
        description="Tolerations of the server pods; by default the nvidia.com/gpu taint.",
    )
    podAnnotations: dict[str, KubernetesString] = Field(default_factory=dict, description="Annotations on the server pods.")
    affinity: dict[str, Any] = Field(default_factory=dict, description="Kubernetes affinity of the server pods.")
    runtimeClassName: str = Field("", description="RuntimeClass of the server pods, e.g. nvidia.")
    priorityClassName: str = Field("", description="PriorityClass of the server pods.")
    serviceAccountName: str = Field("", description="ServiceAccount of the server pods.")
    podSecurityContext: dict[str, Any] = Field(default_factory=dict, description="Pod securityContext of the server.")
    securityContext: dict[str, Any] = Field(default_factory=dict, description="Container securityContext of the server.")
    usageStats: bool = Field(
        False, description="Let vLLM send its usage statistics upstream; off sets VLLM_NO_USAGE_STATS and DO_NOT_TRACK."
    )
    nodes: int = Field(
        1,
        ge=1,
        # LeaderWorkerSet's size is an int32 (api/leaderworkerset/v1/leaderworkerset_types.go, Size).
        le=INT32_MAX,
        description="Nodes (pods) per replica. 1: a Deployment. More: a LeaderWorkerSet of groups of this "
        "many pods, each with the GPUs of resources.limits.",
    )
    network: NetworkConfig = Field(
        default_factory=NetworkConfig, description="The network of a multi-node group's collective traffic."
    )
    gpuType: str | None = Field(
        None, description="GPU model of the nodes, for the fit check's memory figure (e.g. H100-80GB)."
    )
    gpuMemory: str | None = Field(
        None, description="Memory of one GPU as a quantity (e.g. 80Gi), for the fit check; wins over gpuType."
    )
    prePullImage: bool = Field(
        False,
        description="Pull the server image onto every node the server may run on (a DaemonSet), while "
        "the model downloads rather than after.",
    )
    imageSizeGB: float = Field(
        VLLM_IMAGE_GB, gt=0, description="Size (GB) of the server image a node pulls, for the predicted cold start."
    )
    compileCache: CompileCacheConfig = Field(
        default_factory=CompileCacheConfig, description="vLLM's compile cache, kept on a volume across restarts."
    )

    @property
    def gpu_type(self) -> str:
        """The GPU model the server runs on, as far as config says: compileCache.gpuType, else the nodeSelector's."""
        return self.compileCache.gpuType or self.nodeSelector.get(GPU_PRODUCT_LABEL, "")

    @field_validator("runtimeClassName", "priorityClassName", "serviceAccountName")
    @classmethod
    def _names(cls, value: str, info: ValidationInfo) -> str:
        kind = {"runtimeClassName": "RuntimeClass", "priorityClassName": "PriorityClass"}.get(info.field_name or "", "ServiceAccount")
        return dns1123_subdomain(value, f"{kind} name")

    @field_validator("engineVersion")
    @classmethod
    def _release(cls, value: str) -> str:
        if value and not re.fullmatch(r"v?\d{1,4}\.\d{1,4}(\.\d{1,4})?", value):
            raise ValueError(f"{value[:40]!r} is not a vLLM release: write it as 0.34.0 (or 0.34)")
        return value

    @field_validator("extraArgs")
    @classmethod
    def _bounded_args(cls, value: list[str]) -> list[str]:
        total = sum(len(argument) for argument in value)
        if total > MAX_EXTRA_ARGS_TOTAL:
            raise ValueError(f"the arguments hold {total} characters together; at most {MAX_EXTRA_ARGS_TOTAL} are allowed")
        return value

    @field_validator("nodeSelector")
    @classmethod
    def _node_selector(cls, value: dict[str, str]) -> dict[str, str]:
        return labels(value, "nodeSelector")

    @field_validator("podAnnotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return annotation_map(value, "server.podAnnotations")

    @field_validator("gpuType")
    @classmethod
    def _known_gpu(cls, value: str | None) -> str | None:
        if value is not None and value not in GPU_TABLE:
            raise ValueError(
                f"{value!r} is not a GPU type the fit check knows ({', '.join(GPU_TABLE)}); "
                "give server.gpuMemory instead"
            )
        return value

    @field_validator("gpuMemory", mode="before")
    @classmethod
    def _gpu_memory_quantity(cls, value: Any) -> str | None:
        return None if value is None else quantity(value, "the GPU memory")

    @field_validator("shmSizeLimit", mode="before")
    @classmethod
    def _shm_quantity(cls, value: Any) -> str:
        return value and quantity(value, "the /dev/shm size limit")


class FitCheckConfig(StrictModel):
    readHub: bool = Field(
        False,
        description="Without model.architecture, read config.json and the safetensors index of "
        "model.huggingface.id from the Hub (a read with a 10 s timeout) for the fit check; off so that "
        "nothing reaches the network unless asked.",
    )


# Below it the download is OOM-killed before it moves a byte: rclone alone takes 42 MiB to print its
# version (rclone 1.60, measured here); python3 with ssl and urllib, hf_download.py's imports, 23 MiB.
DOWNLOAD_MEMORY_FLOOR = (
    "64Mi",
    "rclone alone takes over 40 MiB before it copies anything (a number without a suffix is bytes: write 2Gi, not 2)",
)
DownloadMemoryQuantity = Annotated[
    str, BeforeValidator(lambda value: quantity(value, "memory", DOWNLOAD_MEMORY_FLOOR))
]


class DownloadConfig(StrictModel):
    image: str = Field("", description="Image of the download Job; empty for the source's default.")
    parallelism: int = Field(8, ge=1, le=256, description="Parallel file transfers of the download.")
    backoffLimit: int = Field(3, ge=0, le=20, description="Retries of a failed download pod.")
    ttlSecondsAfterFinished: int | None = Field(
        None, ge=0, le=INT32_MAX, description="Delete the finished Job after this many seconds; unset to keep it."
    )
    timeoutMinutes: int = Field(
        240, ge=1, le=INT32_MAX // 60, description="How long `pulumi up` waits for the download Job to complete."
    )
    runAsUser: int = Field(
        1000,
        ge=0,
        le=INT32_MAX,
        description="User (and group, fsGroup) of the download pod; 0 only for volumes whose directories "
        "belong to root and cannot be made group-writable.",
    )
    assumedBandwidthGBps: float = Field(
        0.5, gt=0, description="Bandwidth (GB/s) assumed for the download and the image pull, for the predicted cold start."
    )
    cpu: CpuQuantity = Field("1", description="CPU request of the download container.")
    memory: DownloadMemoryQuantity = Field(
        "2Gi", description="Memory request and limit of the download container; at least 64Mi (rclone's, git's or python3's)."
    )
    # Unset (None) means the server's value; set, even to {} or [], it replaces it (components/storage/placement.py).
    nodeSelector: dict[str, KubernetesString] | None = Field(
        None, description="Node labels the download pods require; unset for server.nodeSelector."
    )
    tolerations: list[Toleration] | None = Field(
        None, description="Tolerations of the download pods; unset for server.tolerations."
    )
    affinity: dict[str, Any] | None = Field(
        None, description="Kubernetes affinity of the download pods; unset for server.affinity."
    )

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        return value and image_reference(value)

    @field_validator("nodeSelector")
    @classmethod
    def _node_selector(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else labels(value, "download.nodeSelector")


class EngineConfig(StrictModel):
    """vLLM engine arguments as typed fields; each unset one is left to vLLM's own default."""

    maxModelLen: int | None = Field(None, ge=1, le=INT32_MAX, description="--max-model-len: context length.")
    gpuMemoryUtilization: float | None = Field(
        None, gt=0, le=1, description="--gpu-memory-utilization: share of GPU memory vLLM may use, 0 < x ≤ 1."
    )
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] | None = Field(
        None, description="--dtype of weights and activations."
    )
    quantization: str | None = Field(None, description="--quantization method, e.g. awq, gptq, fp8.")
    kvCacheDtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] | None = Field(
        None, description="--kv-cache-dtype."
    )
    enablePrefixCaching: bool | None = Field(None, description="--enable-prefix-caching / --no-enable-prefix-caching.")
    enableChunkedPrefill: bool | None = Field(
        None, description="--enable-chunked-prefill / --no-enable-chunked-prefill."
    )
    maxNumSeqs: int | None = Field(None, ge=1, le=INT32_MAX, description="--max-num-seqs: concurrent sequences per step.")
    trustRemoteCode: bool = Field(False, description="--trust-remote-code: run the model repository's own code.")
    tensorParallelSize: int | None = Field(
        None, ge=1, le=INT32_MAX, description="--tensor-parallel-size; default: the GPUs per pod / pipelineParallelSize."
    )
    pipelineParallelSize: int | None = Field(
        None, ge=1, le=INT32_MAX, description="--pipeline-parallel-size; default: server.nodes (pipeline parallel across nodes)."
    )

    @field_validator("quantization")
    @classmethod
    def _quantization_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9_-]+", value):
            raise ValueError(f"{value!r} is not a vLLM quantization method name (e.g. awq, gptq, fp8)")
        return value


# Which typed key stands behind each vLLM flag; extraArgs may not repeat them.
ENGINE_FLAGS = {
    "--max-model-len": "engine.maxModelLen",
    "--gpu-memory-utilization": "engine.gpuMemoryUtilization",
    "--dtype": "engine.dtype",
    "--quantization": "engine.quantization",
    "-q": "engine.quantization",
    "--kv-cache-dtype": "engine.kvCacheDtype",
    # vLLM's EnableDisableAction registers --disable-x beside --enable-x and --no-enable-x.
    "--enable-prefix-caching": "engine.enablePrefixCaching",
    "--no-enable-prefix-caching": "engine.enablePrefixCaching",
    "--disable-prefix-caching": "engine.enablePrefixCaching",
    "--enable-chunked-prefill": "engine.enableChunkedPrefill",
    "--no-enable-chunked-prefill": "engine.enableChunkedPrefill",
    "--disable-chunked-prefill": "engine.enableChunkedPrefill",
    "--max-num-seqs": "engine.maxNumSeqs",
    "--tensor-parallel-size": "engine.tensorParallelSize",
    "-tp": "engine.tensorParallelSize",
    "--trust-remote-code": "engine.trustRemoteCode",
    "--no-trust-remote-code": "engine.trustRemoteCode",
    "--pipeline-parallel-size": "engine.pipelineParallelSize",
    "-pp": "engine.pipelineParallelSize",
    "--enable-lora": "lora.adapters",
    "--no-enable-lora": "lora.adapters",
    "--disable-lora": "lora.adapters",
    "--lora-modules": "lora.adapters",
    "--max-lora-rank": "lora.maxLoraRank",
    "--max-loras": "lora.maxLoras",
    "--api-key": "apiKey / apiKeySecret",
}


