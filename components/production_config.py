"""Config for production serving, beyond the chart: engine settings, LoRA adapters, API key,
exposure, autoscaling, metrics, scheduling and disruption.

Each feature is off, or at a value that renders nothing new, unless set: a stack written
for the chart renders exactly as before. The models are part of ServingConfig (config.py),
which parses and cross-checks everything once.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DURATION = re.compile(r"^\d+(\.\d+)?(ms|s|m|h)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def resource_name(value: str, what: str) -> str:
    if value and (len(value) > 253 or not _DNS_1123_SUBDOMAIN.match(value)):
        raise ValueError(f"{value!r} is not a valid {what} (lower-case letters, digits, '-' and '.')")
    return value


# --- engine -------------------------------------------------------------------------------------


class EngineConfig(_Strict):
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
        if value is not None and not re.match(r"^[a-z0-9_-]+$", value):
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


# --- API key ------------------------------------------------------------------------------------


class ApiKeySecretRef(_Strict):
    name: str = Field("", description="An existing Secret holding the API key.")
    key: str = Field("apiKey", description="The key of that Secret.")

    @field_validator("name")
    @classmethod
    def _secret_name(cls, value: str) -> str:
        return resource_name(value, "Secret name")


# --- exposure -----------------------------------------------------------------------------------


class IngressConfig(_Strict):
    enabled: bool = Field(False, description="Create an Ingress for the Service.")
    className: str = Field("", description="IngressClass; empty for the cluster default.")
    host: str = Field("", description="Host name; required when enabled.")
    path: str = Field("/", description="Path prefix routed to the server.")
    tlsSecret: str = Field("", description="Secret with the TLS certificate for host; empty for plain HTTP.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Extra Ingress annotations.")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return resource_name(value, "host name")


class ParentRef(_Strict):
    name: str
    namespace: str = ""
    sectionName: str = ""


class HttpRouteConfig(_Strict):
    enabled: bool = Field(False, description="Create a Gateway API HTTPRoute for the Service.")
    parentRefs: list[ParentRef] = Field(default_factory=list, description="Gateways the route attaches to.")
    hostnames: list[str] = Field(default_factory=list, description="Host names the route answers.")
    requestTimeout: str = Field("3600s", description="Gateway API request timeout; streamed completions run long.")

    @field_validator("requestTimeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"{value!r} is not a Gateway API duration such as 300s, 60m or 1h")
        return value


# --- autoscaling and metrics --------------------------------------------------------------------


class AutoscalingConfig(_Strict):
    enabled: bool = Field(False, description="Scale replicas with KEDA on vLLM's own load metrics.")
    minReplicas: int = Field(1, ge=0, description="Fewest replicas; 0 lets KEDA scale to zero when idle.")
    maxReplicas: int = Field(2, ge=1, description="Most replicas.")
    prometheusAddress: str = Field("", description="URL of the Prometheus that scrapes the server; required when enabled.")
    targetWaitingRequests: int = Field(5, ge=1, description="Queued requests per replica that trigger a scale-up.")
    targetRunningRequests: int = Field(0, ge=0, description="Running requests per replica that trigger a scale-up; 0: off.")
    cooldownSeconds: int = Field(600, ge=0, description="Quiet time before scaling down (a model load is expensive).")


class MonitorConfig(_Strict):
    enabled: bool = Field(False, description="Create the Prometheus Operator resource.")
    interval: str = Field("30s", description="Scrape interval.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels the Prometheus selects monitors by.")

    @field_validator("interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"{value!r} is not a duration such as 15s or 1m")
        return value


class MetricsConfig(_Strict):
    serviceMonitor: MonitorConfig = Field(default_factory=MonitorConfig)
    podMonitor: MonitorConfig = Field(default_factory=MonitorConfig)
    scrapeAnnotations: bool = Field(False, description="Add prometheus.io/scrape, port and path to the server pods.")


# --- scheduling and disruption ------------------------------------------------------------------


class PodDisruptionBudgetConfig(_Strict):
    enabled: bool = Field(False, description="Create a PodDisruptionBudget when more than one replica can run.")
    maxUnavailable: int = Field(1, ge=0, description="Replicas a voluntary disruption (drain) may take at once.")


class NetworkPolicyConfig(_Strict):
    enabled: bool = Field(False, description="Admit traffic to port 8000 only from the listed namespaces.")
    allowedNamespaces: list[str] = Field(
        default_factory=list, description="Namespaces (by name) whose pods may call the server; its own is always allowed."
    )
