"""The server's settings beyond the chart: the pod (`server.*`), the vLLM engine (`engine.*`)
and the download Job (`download.*`)."""

from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from .fields import CpuQuantity, MemoryQuantity, StrictModel, dns1123_subdomain, quantity


class Toleration(StrictModel):
    key: str = Field("", description="Taint key to tolerate; empty with Exists for every taint.")
    operator: Literal["Exists", "Equal"] = Field("Equal", description="Exists, or Equal to value.")
    value: str = Field("", description="Taint value, with operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] = Field(
        "", description="Taint effect to tolerate; empty for every effect."
    )
    tolerationSeconds: Optional[int] = Field(None, description="With NoExecute: how long the pod stays once tainted.")


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
    gpuType: str = Field(
        "",
        description="The GPU model the cache is compiled for, part of its key; empty: the server's "
        f"nodeSelector {GPU_PRODUCT_LABEL}.",
    )

    @field_validator("existingClaim")
    @classmethod
    def _claim_name(cls, value: str) -> str:
        return dns1123_subdomain(value, "claim name")


class ServerConfig(StrictModel):
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
    def _names(cls, value: str) -> str:
        return dns1123_subdomain(value, "name")

    @field_validator("shmSizeLimit", mode="before")
    @classmethod
    def _shm_quantity(cls, value: Any) -> str:
        return value and quantity(value, "the /dev/shm size limit")


class DownloadConfig(StrictModel):
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
    assumedBandwidthGBps: float = Field(
        0.5, gt=0, description="Bandwidth (GB/s) assumed for the download and the image pull, for the predicted cold start."
    )
    cpu: CpuQuantity = Field("1", description="CPU request of the download container.")
    memory: MemoryQuantity = Field("2Gi", description="Memory request and limit of the download container.")
    # Unset (None) means the server's value; set, even to {} or [], it replaces it (components/storage/placement.py).
    nodeSelector: Optional[dict[str, str]] = Field(
        None, description="Node labels the download pods require; unset for server.nodeSelector."
    )
    tolerations: Optional[list[Toleration]] = Field(
        None, description="Tolerations of the download pods; unset for server.tolerations."
    )
    affinity: Optional[dict[str, Any]] = Field(
        None, description="Kubernetes affinity of the download pods; unset for server.affinity."
    )


class EngineConfig(StrictModel):
    """vLLM engine arguments as typed fields; each unset one is left to vLLM's own default."""

    maxModelLen: Optional[int] = Field(None, ge=1, description="--max-model-len: context length.")
    gpuMemoryUtilization: Optional[float] = Field(
        None, gt=0, le=1, description="--gpu-memory-utilization: share of GPU memory vLLM may use, 0 < x ≤ 1."
    )
    dtype: Optional[Literal["auto", "half", "float16", "bfloat16", "float", "float32"]] = Field(
        None, description="--dtype of weights and activations."
    )
    quantization: Optional[str] = Field(None, description="--quantization method, e.g. awq, gptq, fp8.")
    kvCacheDtype: Optional[Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]] = Field(
        None, description="--kv-cache-dtype."
    )
    enablePrefixCaching: Optional[bool] = Field(None, description="--enable-prefix-caching / --no-enable-prefix-caching.")
    enableChunkedPrefill: Optional[bool] = Field(
        None, description="--enable-chunked-prefill / --no-enable-chunked-prefill."
    )
    maxNumSeqs: Optional[int] = Field(None, ge=1, description="--max-num-seqs: concurrent sequences per step.")
    trustRemoteCode: bool = Field(False, description="--trust-remote-code: run the model repository's own code.")
    tensorParallelSize: Optional[int] = Field(
        None, ge=1, description="--tensor-parallel-size; default: the GPUs per pod / pipelineParallelSize."
    )
    pipelineParallelSize: int = Field(1, ge=1, description="--pipeline-parallel-size.")

    @field_validator("quantization")
    @classmethod
    def _quantization_name(cls, value: Optional[str]) -> Optional[str]:
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
    "--enable-prefix-caching": "engine.enablePrefixCaching",
    "--no-enable-prefix-caching": "engine.enablePrefixCaching",
    "--enable-chunked-prefill": "engine.enableChunkedPrefill",
    "--no-enable-chunked-prefill": "engine.enableChunkedPrefill",
    "--max-num-seqs": "engine.maxNumSeqs",
    "--tensor-parallel-size": "engine.tensorParallelSize",
    "-tp": "engine.tensorParallelSize",
    "--trust-remote-code": "engine.trustRemoteCode",
    "--pipeline-parallel-size": "engine.pipelineParallelSize",
    "-pp": "engine.pipelineParallelSize",
    "--enable-lora": "lora.adapters",
    "--lora-modules": "lora.adapters",
    "--max-lora-rank": "lora.maxLoraRank",
    "--max-loras": "lora.maxLoras",
    "--api-key": "apiKey / apiKeySecret",
}


