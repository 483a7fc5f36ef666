"""The README stays true: the config reference is generated from the models, every example stack exists."""

from __future__ import annotations

import re

import pytest

from tests.examples import EXAMPLE_STACK_FILES, EXAMPLE_STACKS
from vllm_serving.config_reference import REGENERATE_COMMAND, SECTIONS, readme_meanings, regenerated, section_rows
from vllm_serving.stack_file import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def test_the_config_reference_is_generated_from_the_models():
    """Keys and defaults are the models'; a new, renamed or re-defaulted field shows up here."""
    assert regenerated(README) == README, (
        f"README.md's config reference differs from the config models; regenerate it with: {REGENERATE_COMMAND}"
    )


def test_regenerating_restores_a_missing_row_and_a_stale_default():
    row = "| `download.parallelism` | `8` |"
    assert row in README
    stale = README.replace(row, "| `download.parallelism` | `4` |")
    assert regenerated(stale) == README
    missing = "\n".join(line for line in README.splitlines() if not line.startswith("| `replicaCount` |")) + "\n"
    assert "| `replicaCount` | `1` |" in regenerated(missing)


@pytest.mark.parametrize("section", SECTIONS)
def test_every_reference_row_says_what_the_key_means(section):
    keys = [row.key for row in section_rows(section)]
    assert sorted(readme_meanings(README, section)) == sorted(keys)


def test_the_readme_lists_every_example_stack_and_each_exists():
    named = re.findall(r"^\s+- `stacks/Pulumi\.([a-z0-9-]+)\.yaml`", README, re.MULTILINE)
    assert sorted(named) == sorted(EXAMPLE_STACKS)
    assert all(path.is_file() for path in EXAMPLE_STACK_FILES)


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
