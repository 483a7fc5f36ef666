"""The README stays true: every config field is documented with its default, every example stack exists."""

from __future__ import annotations

import re
from typing import Iterator

from pydantic import BaseModel

from components.config import ServingConfig
from vllm_serving.stack_file import PROJECT_ROOT, STACKS_DIR

README = (PROJECT_ROOT / "README.md").read_text()


def config_keys(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, object]]:
    for name, field in model.model_fields.items():
        key = field.alias or name
        key = f'"{key}"' if "." in key else key
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation is not ServingConfig:
            yield from config_keys(annotation, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", field.get_default(call_default_factory=True)


def readme_rows() -> dict[str, str]:
    rows = {}
    for line in README.splitlines():
        match = re.match(r"^\| `([^`]+)` \| (.*?) \|", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_config_field_has_a_row_in_the_reference():
    rows = readme_rows()
    missing = [key for key, _ in config_keys(ServingConfig) if key not in rows]
    assert missing == []


def test_documented_scalar_defaults_match_the_schema():
    rows = readme_rows()
    for key, default in config_keys(ServingConfig):
        if isinstance(default, (str, int)) and not isinstance(default, bool):
            expected = f"`{default}`" if default != "" else '`""`'
            assert rows[key] == expected, key
        elif default is None and key != "model.deployName":
            assert rows[key] == "unset", key


def test_every_example_stack_in_the_readme_exists_and_every_stack_is_listed():
    named = set(re.findall(r"stacks/Pulumi\.([a-z0-9-]+)\.yaml", README)) - {"codellama-7b-prod"}
    on_disk = {p.name[len("Pulumi."):-len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml")}
    assert named <= on_disk
    assert on_disk <= named


def test_the_two_setup_commands_exist():
    assert "./vllm-serving render codellama-7b" in README
    assert "./run-tests" in README
    assert (PROJECT_ROOT / "vllm-serving").stat().st_mode & 0o111
    assert (PROJECT_ROOT / "run-tests").stat().st_mode & 0o111
    assert "./run-tests" in (PROJECT_ROOT / ".ci" / "run").read_text()


def test_the_code_layout_names_every_module_of_components_and_no_other():
    section = README.split("## How the code is laid out", 1)[1].split("```")[1]
    named = {line.split()[0] for line in section.strip().splitlines()}
    components = PROJECT_ROOT / "components"
    modules = {
        str(path.relative_to(PROJECT_ROOT))
        for path in components.rglob("*.py")
        if "scripts" not in path.parts and not (path.name == "__init__.py" and path.parent != components)
    }
    assert modules <= named
    assert {name for name in named if name.startswith("components/") and name.endswith(".py")} == modules
