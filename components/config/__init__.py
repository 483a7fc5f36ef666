"""The stack config schema: every `vllm-serving:` key, parsed and cross-checked once.

Components receive the typed ServingConfig and never read Pulumi config themselves.
Modules: fields (parsers of quantities, names, durations), chart (the chart's own fields),
sources (model sources), server (server, engine and download settings), features (optional
features), stack (ServingConfig and its derived values), rules (cross-field rules), errors,
parse (parse_config) and pulumi_config (reading the engine's config).
"""

from .chart import (
    ACCESS_MODES,
    DEFAULT_VLLM_TAG,
    SINGLE_NODE_ACCESS_MODES,
    EnvVar,
    ImageConfig,
    ResourceLimits,
    ResourcesConfig,
    ServiceConfig,
    VolumeConfig,
)
from .errors import CONFIG_NAMESPACE, ConfigError
from .features import (
    ApiKeySecretRef,
    AutoscalingConfig,
    HttpRouteConfig,
    IngressConfig,
    LoraAdapter,
    LoraConfig,
    MetricsConfig,
    MonitorConfig,
    NetworkPolicyConfig,
    ParentRef,
    PodDisruptionBudgetConfig,
)
from .fields import quantity_bytes
from .parse import parse_config
from .pulumi_config import CONFIG_NAMESPACES, decode_engine_config, load_config, read_pulumi_config
from .rules import PROGRAM_SET_FLAGS, STARTUP_OVERHEAD_SECONDS
from .server import ENGINE_FLAGS, GPU_TOLERATION, DownloadConfig, EngineConfig, ServerConfig, Toleration
from .sources import (
    DEFAULT_GIT_IMAGE,
    DEFAULT_S3_IMAGE,
    MAX_DEPLOY_NAME,
    GitSource,
    HuggingFaceSource,
    ModelConfig,
    ModelSource,
    PodEnv,
    S3Source,
)
from .stack import ServingConfig

__all__ = [
    "ACCESS_MODES",
    "CONFIG_NAMESPACE",
    "CONFIG_NAMESPACES",
    "DEFAULT_GIT_IMAGE",
    "DEFAULT_S3_IMAGE",
    "DEFAULT_VLLM_TAG",
    "ENGINE_FLAGS",
    "GPU_TOLERATION",
    "MAX_DEPLOY_NAME",
    "PROGRAM_SET_FLAGS",
    "SINGLE_NODE_ACCESS_MODES",
    "STARTUP_OVERHEAD_SECONDS",
    "ApiKeySecretRef",
    "AutoscalingConfig",
    "ConfigError",
    "DownloadConfig",
    "EngineConfig",
    "EnvVar",
    "GitSource",
    "HttpRouteConfig",
    "HuggingFaceSource",
    "ImageConfig",
    "IngressConfig",
    "LoraAdapter",
    "LoraConfig",
    "MetricsConfig",
    "ModelConfig",
    "ModelSource",
    "MonitorConfig",
    "NetworkPolicyConfig",
    "ParentRef",
    "PodDisruptionBudgetConfig",
    "PodEnv",
    "ResourceLimits",
    "ResourcesConfig",
    "S3Source",
    "ServerConfig",
    "ServiceConfig",
    "ServingConfig",
    "Toleration",
    "VolumeConfig",
    "decode_engine_config",
    "load_config",
    "parse_config",
    "quantity_bytes",
    "read_pulumi_config",
]
