"""Reading a stack's config from the Pulumi engine: the only place that does."""

from __future__ import annotations

import json
from typing import Any

from .errors import CONFIG_NAMESPACE, ConfigError
from .multinode_rules import hub_fit_problems
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
    config = parse_config(raw, secret_keys)
    # Only here, with the engine, and only when fitCheck.readHub asks: never in parse_config.
    if problems := hub_fit_problems(config):
        raise ConfigError(problems)
    return config


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
