"""VllmServing as a Pulumi component package (components/package.py, provider/): its schema, as
Pulumi's own Python SDK infers it, is complete, and the component renders what a stack renders.

The schema is made by the pinned pulumi SDK's code, the same the provider runs for `pulumi package
get-schema` (pulumi/provider/experimental: Analyzer.analyze, then schema.generate_schema). What
this cannot run without the Pulumi CLI: `pulumi package add`, the SDK generation for each
language, and a YAML program under the engine (docs/component-package.md says so).
"""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

import pytest
import yaml
from pulumi.provider.experimental.analyzer import Analyzer
from pulumi.provider.experimental.schema import generate_schema
from pydantic import BaseModel

from components.config import ServingConfig, decode_engine_config, parse_config
from components.package import PACKAGE_NAME
from tests.test_template import TEMPLATE
from vllm_serving import package_args
from vllm_serving.render import render, rendering_as_json
from vllm_serving.stack_file import PROJECT_ROOT, load_engine_config

TOKEN = "vllm-serving:index:VllmServing"
EXAMPLE = TEMPLATE / "stacks" / "Pulumi.example.yaml"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from components.package import VllmServing

    found = Analyzer(PACKAGE_NAME).analyze([VllmServing])
    spec = generate_schema(PACKAGE_NAME, "0.1.0", None, found["component_definitions"], found["type_definitions"],
                           list(found["dependencies"]))
    return spec.to_json()


def test_the_generated_args_are_current():
    assert (PROJECT_ROOT / "components" / "package_args.py").read_text() == package_args.generate(), (
        "regenerate: .venv/bin/python -m vllm_serving.package_args > components/package_args.py"
    )


def nested_models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ not in found:
                found[annotation.__name__] = annotation
                for field in annotation.model_fields.values():
                    walk(field.annotation)
        elif get_origin(annotation) is not None:
            for arg in get_args(annotation):
                walk(arg)

    walk(model)
    return found


def test_the_schema_has_every_config_key_at_every_depth_with_its_description(schema):
    resource = schema["resources"][TOKEN]
    assert resource["isComponent"] is True
    for name, model in nested_models(ServingConfig).items():
        properties = resource["inputProperties"] if model is ServingConfig else \
            schema["types"][f"{PACKAGE_NAME}:index:{name}Args"]["properties"]
        assert set(properties) == set(model.model_fields), name
        for key, field in model.model_fields.items():
            assert properties[key]["description"] == " ".join((field.description or key).split()), f"{name}.{key}"
    assert resource["requiredInputs"] == [n for n, f in ServingConfig.model_fields.items() if f.is_required()]


def test_the_schema_types_follow_the_models(schema):
    inputs = schema["resources"][TOKEN]["inputProperties"]
    assert inputs["replicaCount"]["type"] == "integer"
    assert inputs["model"]["$ref"] == f"#/types/{PACKAGE_NAME}:index:ModelConfigArgs"
    assert inputs["env"]["type"] == "array"
    limits = schema["types"][f"{PACKAGE_NAME}:index:ResourceLimitsArgs"]["properties"]
    assert limits["gpu"]["type"] == "integer"


def test_the_schema_has_the_components_outputs(schema):
    outputs = schema["resources"][TOKEN]["properties"]
    assert set(outputs) == {"endpoint", "openaiBaseUrl", "servedModelName", "verifyCommands", "externalBaseUrl",
                            "downloadLogsCommand"}
    assert outputs["verifyCommands"]["type"] == "array"


def test_the_component_renders_what_the_stack_renders(tmp_path):
    """A program that passes the example stack's config as args deploys the same resources."""
    config, _ = load_engine_config(EXAMPLE)
    raw = decode_engine_config(config)
    program = tmp_path / "__main__.py"
    program.write_text(
        "from components.package import VllmServing\n"
        f"VllmServing({raw['model']['deployName']!r}, {raw!r})\n"
    )
    by_package = rendering_as_json(render(EXAMPLE, program))["resources"]
    by_stack = rendering_as_json(render(EXAMPLE))["resources"]
    assert [r for r in by_package if r["type"] != "pulumi:pulumi:Stack"] == \
        [r for r in by_stack if r["type"] != "pulumi:pulumi:Stack"]


def test_the_yaml_program_of_the_docs_is_valid_config():
    text = (PROJECT_ROOT / "docs" / "component-package.md").read_text()
    (program,) = re.findall(r"```yaml\n(name: .*?)```", text, re.DOTALL)
    document = yaml.safe_load(program)
    (resource,) = document["resources"].values()
    assert resource["type"] == TOKEN
    parse_config(resource["properties"])


def test_the_plugin_directory_hosts_the_component():
    plugin = yaml.safe_load((PROJECT_ROOT / "provider" / "PulumiPlugin.yaml").read_text())
    assert plugin["runtime"]["name"] == "python"
    main = (PROJECT_ROOT / "provider" / "__main__.py").read_text()
    assert "component_provider_host(components=[VllmServing], name=PACKAGE_NAME" in main
