"""Reading a stack's config file the way the Pulumi engine hands it to the program."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .manifests import SECRET_PLACEHOLDER

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = PROJECT_ROOT / "stacks"


class StackFileError(Exception):
    pass


def stack_path(stack: str) -> Path:
    """A stack name under stacks/ (`codellama-7b`) or a path to a stack config file."""
    candidate = Path(stack)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise StackFileError(f"no stack config file at {candidate}")
        return candidate
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml"))
        raise StackFileError(f"no stack {stack!r}: {path} does not exist (stacks here: {', '.join(known) or 'none'})")
    return path


def stack_name(path: Path) -> str:
    name = path.name
    return name[len("Pulumi."):-len(path.suffix)] if name.startswith("Pulumi.") else path.stem


def _engine_value(value: Any) -> str:
    # The engine passes structured values as JSON text and scalars as their string form.
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _unsecure(value: Any) -> Any:
    """Secrets in a stack file are encrypted for the Pulumi CLI; offline they render as a placeholder."""
    if _is_secure(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {key: _unsecure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unsecure(item) for item in value]
    return value


def load_engine_config(path: Path) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys `pulumi up` would pass for this stack file."""
    try:
        # libyaml's loader where PyYAML has it: the same YAML, parsed about ten times faster.
        document = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except yaml.YAMLError as error:
        raise StackFileError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackFileError(f"{path}: expected a mapping with a `config:` mapping")
    config, secret_keys = {}, []
    for key, value in (document.get("config") or {}).items():
        if ":" not in str(key):
            raise StackFileError(f"{path}: config key {key!r} needs its namespace, e.g. vllm-serving:{key}")
        if _unsecure(value) != value:
            secret_keys.append(key)
        config[key] = _engine_value(_unsecure(value))
    return config, secret_keys
