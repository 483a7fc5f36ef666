"""The editor schema and the program agree, in both directions, on every example stack and on a
set of variants written the ways people write them: each is accepted by both or refused by both.

Both come from one source: the config models, and for a number or boolean written as text the
forms of components/config/fields.py's SCALAR_STRING_FORMS, which StrictModel takes and
vllm_serving/schema.py writes into the schema at every depth. Rules across keys are the
program's alone (the schema says so), so every variant changes one key of a valid stack.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.config import ConfigError, decode_engine_config, parse_config
from tests.test_examples_quiet import EXAMPLES
from tests.test_template import TEMPLATE
from vllm_serving.schema import stack_file_schema
from vllm_serving.stack_file import load_engine_config

VALIDATOR = jsonschema.Draft202012Validator(stack_file_schema())
BASE = yaml.safe_load((TEMPLATE / "stacks" / "Pulumi.example.yaml").read_text())


def program_accepts(document: dict[str, Any], tmp_path: Path) -> bool:
    path = tmp_path / "Pulumi.variant.yaml"
    path.write_text(yaml.safe_dump(document))
    config, secret_keys = load_engine_config(path)
    try:
        parse_config(decode_engine_config(config), set(secret_keys))
    except ConfigError:
        return False
    return True


def with_value(keys: tuple[str, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    node = document["config"]
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return document


GPU = ("vllm-serving:resources", "limits", "nvidia.com/gpu")
VARIANTS = {
    # (keys, value): accepted by both?
    "gpu as the text 1": (GPU, "1", True),
    "gpu as yes": (GPU, "yes", False),
    "gpu as 1.0 text": (GPU, "1.0", False),
    "gpu as padded text": (GPU, " 1", False),
    "gpu as true": (GPU, True, False),
    "gpu as 1.5": (GPU, 1.5, False),
    "no gpu": (GPU, 0, False),
    "no gpu as text": (GPU, "0", False),
    "replicas as the text pulumi writes": (("vllm-serving:replicaCount",), "1", True),
    "replicas as a negative text": (("vllm-serving:replicaCount",), "-1", False),
    "autoscaling on as yes": (("vllm-serving:autoscaling", "enabled"), "yes", False),
    "autoscaling off as the text false": (("vllm-serving:autoscaling", "enabled"), "false", True),
    "cpu as a number": (("vllm-serving:resources", "limits", "cpu"), 4, True),
    "a git ref as a number": (("vllm-serving:model", "git"), {"url": "https://example.com/m.git", "ref": 2024}, False),
    "a node selector value as a number": (("vllm-serving:server", "nodeSelector", "tier"), 3, True),
    "an unknown nested key": (("vllm-serving:model", "volume", "sise"), "10Gi", False),
    "an unknown top-level key": (("vllm-serving:replicas",), 2, False),
    "a rollout not allowed": (("vllm-serving:server", "rollout"), "fast", False),
}


@pytest.mark.parametrize("stack_file", EXAMPLES, ids=lambda path: f"{path.parent.parent.name}/{path.name}")
def test_every_example_is_accepted_by_both(stack_file, tmp_path):
    document = yaml.safe_load(stack_file.read_text())
    assert VALIDATOR.is_valid(document), next(iter(VALIDATOR.iter_errors(document))).message
    assert program_accepts(document, tmp_path)


@pytest.mark.parametrize(("keys", "value", "accepted"), VARIANTS.values(), ids=VARIANTS.keys())
def test_a_variant_is_accepted_or_refused_by_both(keys, value, accepted, tmp_path):
    document = with_value(keys, value)
    if keys[0] == "vllm-serving:model" and keys[1] == "git":
        document["config"]["vllm-serving:model"]["source"] = "git"
        del document["config"]["vllm-serving:model"]["huggingface"]
    assert (VALIDATOR.is_valid(document), program_accepts(document, tmp_path)) == (accepted, accepted)
