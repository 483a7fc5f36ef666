"""Reading a stack's config from the Pulumi engine: the only place that does."""

from __future__ import annotations

import difflib
import json
from typing import Any

from .errors import CONFIG_NAMESPACE, ConfigError
from .multinode_rules import hub_fit_problems
from .parse import parse_config
from .stack import ServingConfig

# The namespaces a stack of this program may hold: its own, and the providers' it uses.
CONFIG_NAMESPACES = (CONFIG_NAMESPACE, "kubernetes", "pulumi")
# The engine hands structured values over as JSON text. A stack file's values are small; these
# bounds keep a hostile one (deep nesting makes json.loads raise RecursionError, a huge one costs
# memory) a one-line refusal instead of a traceback.
MAX_VALUE_CHARS = 1 << 20
MAX_DEPTH = 32


def load_config() -> ServingConfig:
    """The stack's config as the Pulumi engine passed it in, validated."""
    from pulumi.runtime import config as runtime_config

    try:
        raw = read_pulumi_config()
    except ConfigError:
        raise
    except Exception as error:
        # The exception's text is left out: it may quote a value, and a value may be a secret.
        raise ConfigError([("(config)", f"could not be read ({type(error).__name__})")]) from None
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


def _nesting_depth(text: str) -> int:
    """The deepest bracket nesting of JSON text, brackets inside strings not counted (one pass)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _decoded(key: str, value: str) -> Any:
    if len(value) > MAX_VALUE_CHARS:
        raise ConfigError([(key, f"is {len(value)} characters long; at most {MAX_VALUE_CHARS} are read")])
    if _nesting_depth(value) > MAX_DEPTH:
        raise ConfigError([(key, f"nests deeper than {MAX_DEPTH} levels; a stack config never needs that")])
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # a plain string that happens to start with a bracket (e.g. a secret's placeholder)


def namespace_problems(keys: list[str]) -> list[tuple[str, str]]:
    """Keys whose namespace this program does not read: a misspelt `vllm-servng:replicaCount` would
    otherwise be ignored without a word, and the stack deployed with the default."""
    problems = []
    for key in keys:
        namespace, _, name = key.partition(":")
        if namespace in CONFIG_NAMESPACES:
            continue
        close = difflib.get_close_matches(namespace, CONFIG_NAMESPACES, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}:{name[:80]}?" if close else ""
        problems.append((key[:80], f"unknown namespace {namespace[:40]!r} (allowed: {', '.join(CONFIG_NAMESPACES)}){hint}"))
    return problems


def decode_engine_config(values: dict[str, Any]) -> dict[str, Any]:
    """The engine's config map (namespaced keys, structured values as JSON text) as nested data.

    Refuses keys of an unknown namespace and values past the bounds above, naming the key."""
    problems = namespace_problems(sorted(values))
    if problems:
        raise ConfigError(problems)
    raw = {}
    prefix = f"{CONFIG_NAMESPACE}:"
    for key, value in values.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        structured = isinstance(value, str) and value.lstrip()[:1] in ("{", "[")
        raw[name] = _decoded(name, value) if structured else value
    return raw

