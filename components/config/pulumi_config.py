"""Reading a stack's config from the Pulumi engine: the only place that does."""

from __future__ import annotations

import difflib
import json
from typing import Any

from .errors import CONFIG_NAMESPACE
from .parse import parse_config
from .stack import ServingConfig


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
        if _misspelt_namespace(key):
            raw[key] = value  # kept whole, so that parse_config refuses it by name with the right spelling
            continue
        if not key.startswith(prefix):
            continue
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass  # a plain string that happens to start with a bracket (e.g. a secret's placeholder)
        raw[key[len(prefix):]] = value
    return raw


def _misspelt_namespace(key: str) -> bool:
    """A key meant for this program under a misspelt namespace (`vllm_serving:`, `vllm-serve:`),
    which the engine would hand to no one: its value would be silently ignored."""
    namespace = key.split(":", 1)[0] if ":" in key else None
    if namespace is None or namespace == CONFIG_NAMESPACE:
        return False
    return difflib.SequenceMatcher(None, namespace.lower(), CONFIG_NAMESPACE).ratio() >= 0.8
