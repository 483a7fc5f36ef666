"""Shared helpers: render a config given as the nested data a stack file would hold."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, parse_config
from vllm_serving.manifests import normalize
from vllm_serving.render import Rendering, render_config
from vllm_serving.stack_file import _engine_value
from vllm_serving.validate import validate_manifests

HF_MODEL: dict[str, Any] = {
    "deployName": "codellama-7b",
    "volume": {"size": "24Gi", "subPath": "CodeLlama-7b-Instruct-hf"},
    "source": "huggingface",
    "huggingface": {"id": "codellama/CodeLlama-7b-Instruct-hf"},
}


def engine_config(values: dict[str, Any]) -> dict[str, str]:
    return {f"vllm-serving:{key}": _engine_value(value) for key, value in values.items()}


def render_values(values: dict[str, Any], stack: str = "test", deployed: bool = False) -> Rendering:
    """deployed: as `pulumi up` renders a stack that deployed before (its servedModelName output names
    the model); else a stack that never did (which reserves the server's resources for its first
    download: components/storage/placement.py)."""
    previous = {"servedModelName": values["model"]["deployName"]} if deployed else None
    return render_config(engine_config(values), [], stack, previous_outputs=previous)


@pytest.fixture
def render_model():
    """Render a stack whose only key is `model` (plus any extra top-level keys)."""

    def _render(model: dict[str, Any] = HF_MODEL, **extra: Any) -> Rendering:
        return render_values({"model": model, **extra})

    return _render


def container(rendering: Rendering, kind: str, name: str) -> dict[str, Any]:
    spec = rendering.one(kind).inputs["spec"]["template"]["spec"]
    return next(c for c in spec.get("containers", []) + spec.get("initContainers", []) if c["name"] == name)


def env_of(container_spec: dict[str, Any]) -> dict[str, Any]:
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in container_spec.get("env", [])}


def problems(raw: dict[str, Any], secret_keys: set[str] | None = None) -> dict[str, str]:
    """The problems parse_config reports for raw, by key path; fails if it reports none."""
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, secret_keys)
    return dict(caught.value.problems)


def manifest(rendering: Rendering, kind: str) -> dict[str, Any]:
    return normalize(rendering.one(kind).inputs)


def assert_schema_valid(rendering: Rendering) -> None:
    assert validate_manifests([normalize(m) for m in rendering.manifests]) == []


def unprefixed(config: dict[str, Any]) -> dict[str, Any]:
    """A stack file's `config`, keyed without the `vllm-serving:` prefix: the values render_values takes."""
    return {key.split(":", 1)[1]: value for key, value in config.items()}


def stack_file_values(path: Path) -> dict[str, Any]:
    """The values of the stack file at `path` (its `config`, unprefixed)."""
    return unprefixed(yaml.safe_load(path.read_text())["config"])


def merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`base` with `change` laid over it, nested dicts merged key by key (stack values)."""
    result = copy.deepcopy(base)
    for key, value in change.items():
        result[key] = merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) else value
    return result
