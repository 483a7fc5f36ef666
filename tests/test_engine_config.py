"""Config as `pulumi up` hands it to the program: the engine's map, not a stack file.

Under the Pulumi CLI, Go parses the stack file and the program reads namespaced keys whose
structured values arrive as JSON text; the offline reader (vllm_serving/stack_file.py) does
not run there, so the program's own reading must refuse what is hostile, naming the key.
"""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError, decode_engine_config
from tests.conftest import HF_MODEL, engine_config
from vllm_serving.render import render_config


def _problems(config: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        render_config(config, [])
    return str(raised.value)


def test_a_misspelt_namespace_is_refused_with_a_did_you_mean():
    config = {**engine_config({"model": HF_MODEL}), "vllm-servng:replicaCount": "2"}
    message = _problems(config)
    assert "vllm-servng:replicaCount: unknown namespace 'vllm-servng'" in message
    assert "did you mean vllm-serving:replicaCount?" in message


def test_provider_namespaces_are_read_as_before():
    config = {**engine_config({"model": HF_MODEL}), "kubernetes:context": "gpu-cluster"}
    assert render_config(config, []).one("Deployment")


def test_deep_nesting_is_one_line_naming_the_key_not_a_recursion_error():
    deep = "[" * 5000 + "]" * 5000
    message = _problems({**engine_config({"model": HF_MODEL}), "vllm-serving:env": deep})
    assert "vllm-serving:env: nests deeper than 32 levels" in message
    assert len(message) < 500


def test_a_huge_value_is_refused_without_echoing_it():
    huge = json.dumps(["x" * (2 << 20)])
    message = _problems({**engine_config({"model": HF_MODEL}), "vllm-serving:env": huge})
    assert "vllm-serving:env: is" in message and "at most 1048576" in message
    assert "xxxx" not in message


def test_brackets_inside_strings_do_not_count_as_nesting():
    value = json.dumps([{"name": "A", "value": "[" * 100}])
    assert decode_engine_config({"vllm-serving:env": value})["env"][0]["value"] == "[" * 100


def test_an_unexpected_failure_while_reading_is_one_line(monkeypatch):
    from components.config import pulumi_config

    def broken():
        raise KeyError("sk-live-secret")

    monkeypatch.setattr(pulumi_config, "read_pulumi_config", broken)
    with pytest.raises(ConfigError) as raised:
        pulumi_config.load_config()
    assert "could not be read (KeyError)" in str(raised.value)
    assert "sk-live" not in str(raised.value)
