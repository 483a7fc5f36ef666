"""`vllm-serving schema`: a JSON Schema of the stack file that editors can use, true to the program.

Every example stack validates; invalid configs from the validation and property tests are
rejected where a schema can say so; and nothing the schema rejects is accepted by the program
(a schema stricter than the program would flag valid stacks in every editor).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from components.config import ConfigError, ServingConfig, decode_engine_config, parse_config
from tests.conftest import HF_MODEL
from vllm_serving.cli import main
from vllm_serving.schema import stack_file_schema
from vllm_serving.stack_file import STACKS_DIR, StackFileError, load_engine_config

SCHEMA = stack_file_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def stack(**values: Any) -> dict[str, Any]:
    """A stack file document holding these top-level keys (and the chart's example model)."""
    return {"config": {f"vllm-serving:{key}": value for key, value in {"model": HF_MODEL, **values}.items()}}


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(document)]


def program_accepts(document: dict[str, Any], tmp_path: Path) -> bool:
    """What `pulumi up` (and `render`) would make of the same stack file."""
    path = tmp_path / "Pulumi.check.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        config, secret_keys = load_engine_config(path)
        parse_config(decode_engine_config(config), {key.split(":", 1)[1] for key in secret_keys})
    except (ConfigError, StackFileError):
        return False
    return True


def test_the_command_prints_a_valid_2020_12_schema(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(printed)
    assert printed == SCHEMA


@pytest.mark.parametrize("path", sorted(STACKS_DIR.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_every_stack_validates(path):
    assert schema_errors(yaml.safe_load(path.read_text())) == []


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    seen.add(model)
    for field in model.model_fields.values():
        for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
            for inner in (candidate, *getattr(candidate, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                    _models(inner, seen)


def test_every_field_has_a_description():
    """What an editor shows on hover and completion; the README's meanings start from it."""
    seen: set[type[BaseModel]] = set()
    _models(ServingConfig, seen)
    missing = sorted(
        f"{model.__name__}.{field.alias or name}"
        for model in seen
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    )
    assert missing == [], "add Field(description=...) to: " + ", ".join(missing)


def test_defaults_and_allowed_values_reach_the_editor():
    config = SCHEMA["properties"]["config"]["properties"]
    defs = SCHEMA["$defs"]
    assert config["vllm-serving:replicaCount"]["default"] == 1
    assert defs["ImageConfig"]["properties"]["pullPolicy"]["enum"] == ["Always", "IfNotPresent", "Never"]
    assert defs["ImageConfig"]["properties"]["tag"]["default"] == ServingConfig.model_fields["image"].get_default(call_default_factory=True).tag
    # Defaults made by a factory are shown too.
    assert defs["VolumeConfig"]["properties"]["accessModes"]["default"] == ["ReadWriteOnce"]
    # A number's bounds are on its number form; its text form (a quoted number) is the other option.
    (number,) = [option for option in defs["DownloadConfig"]["properties"]["parallelism"]["anyOf"]
                 if option["type"] == "integer"]
    assert number["maximum"] == 256


# Invalid configs of tests/test_config_validation.py and tests/test_properties.py whose rule a
# JSON Schema can state: types, enums, bounds, required and unknown keys, secrets.
REJECTED = {
    "unknown top-level key": stack(replicas=2),
    "unknown nested key": stack(model={**HF_MODEL, "volume": {"sizee": "10Gi"}}),
    "key set without --path": {"config": {"vllm-serving:model": HF_MODEL, "vllm-serving:model.volume.size": "40Gi"}},
    "key without its namespace": {"config": {"vllm-serving:model": HF_MODEL, "replicaCount": 1}},
    "missing model": {"config": {"vllm-serving:replicaCount": 1}},
    "missing deployName": stack(model={k: v for k, v in HF_MODEL.items() if k != "deployName"}),
    "unknown source": stack(model={**HF_MODEL, "source": "hf"}),
    "negative replicas": stack(replicaCount=-1),
    "replicas as words": stack(replicaCount="two"),
    "fractional replicas": stack(replicaCount=1.5),
    "pull policy": stack(image={"pullPolicy": "Sometimes"}),
    "service type": stack(service={"type": "ExternalName"}),
    "fractional GPUs": stack(resources={"limits": {"nvidia.com/gpu": 1.5}}),
    "parallelism 0": stack(download={"parallelism": 0}),
    "parallelism 257": stack(download={"parallelism": 257}),
    "backoff 21": stack(download={"backoffLimit": 21}),
    "startup budget 59 s": stack(server={"startupTimeoutSeconds": 59}),
    "toleration operator": stack(server={"tolerations": [{"key": "x", "operator": "exists"}]}),
    "GPU memory share 1.5": stack(engine={"gpuMemoryUtilization": 1.5}),
    "dtype": stack(engine={"dtype": "int3"}),
    "accessModes not a list": stack(model={**HF_MODEL, "volume": {"accessModes": "ReadWriteOnce"}}),
    "env without a name": stack(env=[{"value": "x"}]),
    "adapter source": stack(lora={"adapters": [{"name": "sql", "source": "ftp"}]}),
    "plain API key": stack(apiKey="sk-plain"),
}


@pytest.mark.parametrize("name", REJECTED)
def test_invalid_configs_are_rejected_by_the_schema_and_the_program(name, tmp_path):
    document = copy.deepcopy(REJECTED[name])
    assert schema_errors(document) != []
    assert not program_accepts(document, tmp_path)


# What the program accepts in the forms people (and `pulumi config set`) write them.
ACCEPTED = {
    "a top-level number as `pulumi config set` stores it": stack(replicaCount="2", model={
        **HF_MODEL, "volume": {"accessModes": ["ReadWriteMany"]}}),
    "a top-level boolean as a string": stack(checkSecrets="false"),
    "quantities as YAML numbers": stack(resources={"limits": {"cpu": 8, "memory": "64Gi"}}, download={"cpu": 0.5}),
    "env values as numbers and booleans": stack(env=[{"name": "A", "value": 1}, {"name": "B", "value": True}]),
    "a secret env value": stack(env=[{"name": "HF_TOKEN", "value": {"secure": "v1:AAAA"}}]),
    "an encrypted API key": stack(apiKey={"secure": "v1:AAAA"}),
    "another namespace's keys": {**stack(), "config": {**stack()["config"], "kubernetes:context": "gpu"}},
    "a stack file's other top-level keys": {**stack(), "encryptionsalt": "v1:abc", "secretsprovider": "passphrase"},
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_valid_configs_are_accepted_by_the_schema_and_the_program(name, tmp_path):
    document = copy.deepcopy(ACCEPTED[name])
    assert schema_errors(document) == []
    assert program_accepts(document, tmp_path)


def test_the_markdown_reference_comes_from_the_descriptions(capsys):
    assert main(["schema", "--markdown"]) == 0
    printed = capsys.readouterr().out
    assert "| `replicaCount` | `1` | Number of server replicas. |" in printed
    assert '| `resources.limits."nvidia.com/gpu"` | `1` |' in printed


def test_the_readme_option_rewrites_a_stale_reference_in_place(tmp_path, capsys):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    stale = tmp_path / "README.md"
    stale.write_text(readme.replace("| `download.parallelism` | `8` |", "| `download.parallelism` | `4` |"))
    assert main(["schema", "--markdown", "--readme", str(stale)]) == 0
    assert stale.read_text() == readme
    assert "config reference regenerated" in capsys.readouterr().err
