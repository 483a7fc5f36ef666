"""Pulumi components that serve a model with vLLM on Kubernetes.

The package's public API: VllmServing (the whole stack as one component), ServingConfig (its
typed config), load_config (read and validate the stack's config), refuse_rename (stop a
model.deployName change before anything is registered) and ConfigError.
"""

from .config import ConfigError, ServingConfig, load_config
from .rename_guard import refuse_rename
from .serving import VllmServing

__all__ = ["ConfigError", "ServingConfig", "VllmServing", "load_config", "refuse_rename"]
