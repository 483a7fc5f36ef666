"""Pulumi components that serve a model with vLLM on Kubernetes.

The package's public API: VllmServing (the whole stack as one component), ServingConfig (its
typed config), load_config (read and validate the stack's config) and ConfigError.
"""

from .config import ConfigError, ServingConfig, load_config
from .serving import VllmServing

__all__ = ["ConfigError", "ServingConfig", "VllmServing", "load_config"]
