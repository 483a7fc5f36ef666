"""Optional features, each off (or at a value that renders nothing new) unless set: LoRA
adapters, the API key, exposure (Ingress, HTTPRoute), autoscaling, metrics, the
PodDisruptionBudget and the NetworkPolicy. A stack written for the chart renders as before."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from .fields import (
    GATEWAY_DURATION,
    INT32_MAX,
    PROMETHEUS_DURATION,
    KubernetesString,
    StrictModel,
    annotation_map,
    dns1123_label,
    dns1123_subdomain,
    duration,
    gateway_hostname,
    http_url,
    labels,
    secret_data_key,
    shown,
    url_path,
)
from .sources import GitSource, HuggingFaceSource, S3Source, Sourced, SourceName

# --- LoRA ---------------------------------------------------------------------------------------


class LoraAdapter(StrictModel, Sourced):
    """A LoRA adapter, downloaded like the model and served under its own name."""

    name: str = Field(description="Name the adapter is served under in /v1/models.")
    source: SourceName = Field(description="Where the adapter comes from.")
    huggingface: HuggingFaceSource = Field(default_factory=HuggingFaceSource, description="The adapter's Hugging Face source.")
    git: GitSource = Field(default_factory=GitSource, description="The adapter's git source.")
    s3: S3Source = Field(default_factory=S3Source, description="The adapter's S3 source.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,18}[a-z0-9])?", value):
            raise ValueError(
                f"{value!r} is not a valid adapter name: lower-case letters, digits and '-', starting with a "
                "letter, at most 20 characters (it also names the adapter's download Job)"
            )
        return value


class LoraConfig(StrictModel):
    # Each is a download Job whose name carries its index (components/names.py) within Kubernetes'
    # 63 characters, a mount of the server pod and a --lora-modules entry.
    adapters: list[LoraAdapter] = Field(
        default_factory=list, max_length=100,
        description="LoRA adapters served beside the model (at most 100; more are loaded at runtime: routing.runtimeLora).",
    )
    maxLoraRank: int | None = Field(
        None,
        description=(
            "--max-lora-rank: the largest adapter rank, one of the choices of the stack's vLLM release "
            "(1, 8, 16, 32, 64, 128, 256, 320, 512 in 0.32 to 0.34; checked against its engine profile)."
        ),
    )
    maxLoras: int | None = Field(None, ge=1, le=INT32_MAX, description="--max-loras: adapters in one batch.")


# --- API key ------------------------------------------------------------------------------------


class ApiKeySecretRef(StrictModel):
    name: str = Field("", description="An existing Secret holding the API key.")
    key: str = Field("apiKey", description="The key of that Secret.")

    @field_validator("name")
    @classmethod
    def _secret_name(cls, value: str) -> str:
        return dns1123_subdomain(value, "Secret name")

    @field_validator("key")
    @classmethod
    def _secret_key(cls, value: str) -> str:
        return secret_data_key(value, "Secret key")


# --- exposure -----------------------------------------------------------------------------------


# What a proxy may carry in one request body by default (ingress-nginx's own default is 1m):
# room for a long prompt (128k tokens are about 0.5 MB of JSON) and a few base64 images.
DEFAULT_MAX_REQUEST_BODY = "10m"
_NGINX_SIZE = re.compile(r"[0-9]{1,6}[kKmMgG]?")


def _extra_paths(value: list[str], what: str) -> list[str]:
    for path in value:
        url_path(path, what)
    return value


class IngressConfig(StrictModel):
    enabled: bool = Field(False, description="Create an Ingress for the Service.")
    className: str = Field("", description="IngressClass; empty for the cluster default.")
    host: str = Field("", description="Host name; required when enabled.")
    path: str = Field("/", description="Path prefix under which the server's API is routed.")
    extraPaths: list[str] = Field(
        default_factory=list,
        description="Paths routed besides the OpenAI API (/v1), e.g. /tokenize; the server answers them, with the API key.",
    )
    maxRequestBodySize: str = Field(
        DEFAULT_MAX_REQUEST_BODY,
        description="Largest request body the proxy accepts (ingress-nginx proxy-body-size), e.g. 10m; 0 for no limit.",
    )
    tlsSecret: str = Field("", description="Secret with the TLS certificate for host; empty for plain HTTP.")
    annotations: dict[str, KubernetesString] = Field(default_factory=dict, description="Extra Ingress annotations.")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return dns1123_subdomain(value, "host name")

    @field_validator("className")
    @classmethod
    def _class_name(cls, value: str) -> str:
        return dns1123_subdomain(value, "IngressClass name")

    @field_validator("tlsSecret")
    @classmethod
    def _tls_secret(cls, value: str) -> str:
        return dns1123_subdomain(value, "Secret name")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return url_path(value, "ingress path")

    @field_validator("extraPaths")
    @classmethod
    def _extra(cls, value: list[str]) -> list[str]:
        return _extra_paths(value, "ingress path")

    @field_validator("maxRequestBodySize", mode="before")
    @classmethod
    def _body_size(cls, value: object) -> str:
        text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
        if not _NGINX_SIZE.fullmatch(text):
            raise ValueError(f"{shown(value)} is not an nginx size: a number with an optional k, m or g, e.g. 10m")
        return text

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return annotation_map(value, "ingress.annotations")


class ParentRef(StrictModel):
    name: str = Field(description="Name of the Gateway.")
    namespace: str = Field("", description="Namespace of the Gateway; empty for the route's own.")
    sectionName: str = Field("", description="Listener of the Gateway; empty for all.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return dns1123_subdomain(value, "Gateway name") or _required(value)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return value and dns1123_label(value, "namespace")

    @field_validator("sectionName")
    @classmethod
    def _section(cls, value: str) -> str:
        return dns1123_subdomain(value, "listener name")


def _required(value: str) -> str:
    if not value:
        raise ValueError("required")
    return value


class HttpRouteConfig(StrictModel):
    enabled: bool = Field(False, description="Create a Gateway API HTTPRoute for the Service.")
    parentRefs: list[ParentRef] = Field(default_factory=list, description="Gateways the route attaches to.")
    hostnames: list[str] = Field(default_factory=list, description="Host names the route answers.")
    extraPaths: list[str] = Field(
        default_factory=list,
        description="Paths routed besides the OpenAI API (/v1), e.g. /tokenize; the server answers them, with the API key.",
    )
    requestTimeout: str = Field("3600s", description="Gateway API request timeout; streamed completions run long.")

    @field_validator("requestTimeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        return duration(
            value, GATEWAY_DURATION, "Gateway API duration: whole numbers with h, m, s or ms, e.g. 300s, 90m, 1h30m (not 1.5h)"
        )

    @field_validator("hostnames")
    @classmethod
    def _hostnames(cls, value: list[str]) -> list[str]:
        for hostname in value:
            gateway_hostname(hostname)
        return value

    @field_validator("extraPaths")
    @classmethod
    def _extra(cls, value: list[str]) -> list[str]:
        return _extra_paths(value, "HTTPRoute path")


# --- autoscaling and metrics --------------------------------------------------------------------


class AutoscalingConfig(StrictModel):
    enabled: bool = Field(False, description="Scale replicas with KEDA on vLLM's own load metrics.")
    minReplicas: int = Field(1, ge=0, le=INT32_MAX, description="Fewest replicas; 0 lets KEDA scale to zero when idle.")
    maxReplicas: int = Field(2, ge=1, le=INT32_MAX, description="Most replicas.")
    prometheusAddress: str = Field("", description="URL of the Prometheus that scrapes the server; required when enabled.")
    targetWaitingRequests: int = Field(5, ge=1, le=INT32_MAX, description="Queued requests per replica that trigger a scale-up.")
    targetRunningRequests: int = Field(0, ge=0, le=INT32_MAX, description="Running requests per replica that trigger a scale-up; 0: off.")
    cooldownSeconds: int = Field(600, ge=0, le=INT32_MAX, description="Quiet time before scaling down (a model load is expensive).")

    @field_validator("prometheusAddress")
    @classmethod
    def _address(cls, value: str) -> str:
        return value and http_url(value, "Prometheus address")


class MonitorConfig(StrictModel):
    enabled: bool = Field(False, description="Create the Prometheus Operator resource.")
    interval: str = Field("30s", description="Scrape interval.")
    labels: dict[str, KubernetesString] = Field(default_factory=dict, description="Labels the Prometheus selects monitors by.")

    @field_validator("interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        return duration(
            value, PROMETHEUS_DURATION, "Prometheus duration: whole numbers with y, w, d, h, m, s or ms, e.g. 15s, 1m30s (not 1.5m)"
        )

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return labels(value, "monitor label")


class MetricsConfig(StrictModel):
    serviceMonitor: MonitorConfig = Field(default_factory=MonitorConfig, description="A Prometheus Operator ServiceMonitor.")
    podMonitor: MonitorConfig = Field(default_factory=MonitorConfig, description="A Prometheus Operator PodMonitor.")
    scrapeAnnotations: bool = Field(False, description="Add prometheus.io/scrape, port and path to the server pods.")


# --- scheduling and disruption ------------------------------------------------------------------


class PodDisruptionBudgetConfig(StrictModel):
    enabled: bool = Field(False, description="Create a PodDisruptionBudget when more than one replica can run.")
    maxUnavailable: int = Field(1, ge=0, le=INT32_MAX, description="Replicas a voluntary disruption (drain) may take at once.")


class NetworkPolicyConfig(StrictModel):
    enabled: bool = Field(False, description="Admit traffic to port 8000 only from the listed namespaces.")
    allowedNamespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces (by name) of in-cluster clients that may call the server; its own is always allowed.",
    )
    ingressNamespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces of the ingress controller or Gateway that forwards the Ingress's or HTTPRoute's "
        "requests (e.g. ingress-nginx); needs ingress or httpRoute enabled.",
    )
    monitoringNamespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces of what scrapes /metrics (e.g. monitoring for Prometheus); the server answers them "
        "/metrics, and every other path only with the API key.",
    )
