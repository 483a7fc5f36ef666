"""Every stack of this project renders under Pulumi's mocks and passes the Kubernetes schemas.

No cluster and no Pulumi CLI: `vllm-serving render` runs this project's own __main__.py.
A stack added to stacks/ is picked up without any change here.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vllm_serving.schema import stack_file_schema

PROJECT = Path(__file__).resolve().parent.parent
STACK_FILES = sorted((PROJECT / "stacks").glob("Pulumi.*.yaml"))


def test_the_project_has_stacks():
    assert STACK_FILES, "no stacks/Pulumi.<stack>.yaml"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every stack rendered and validated by one process, as CI runs it (Pulumi loads once):
    the directory of the manifests and the run's stderr, which names each stack before its report."""
    out = tmp_path_factory.mktemp("rendered")
    command = [sys.executable, "-m", "vllm_serving", "render", *map(str, STACK_FILES), "--validate", "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT)
    return out, result.stderr


def report_of(stderr, stack_file):
    """The lines of one stack's report: with several stacks each report follows its header."""
    if len(STACK_FILES) == 1:
        return stderr
    lines, mine = [], False
    for line in stderr.splitlines():
        if line.startswith("--- stack "):
            mine = line.startswith(f"--- stack {stack_name(stack_file)} (")
        elif mine or line.startswith(f"error: stack {stack_name(stack_file)}: "):
            lines.append(line)
    return "\n".join(lines)


def stack_name(stack_file):
    return stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda path: path.name)
def test_every_stack_renders_and_validates(stack_file, rendered):
    out, stderr = rendered
    report = report_of(stderr, stack_file)
    assert "all valid" in report, report
    directory = out if len(STACK_FILES) == 1 else out / stack_name(stack_file)
    assert "kind: Deployment" in "".join(path.read_text() for path in directory.glob("*.yaml"))


def test_the_editor_schema_is_current():
    """stack.schema.json is what editors validate stacks with; an upgrade may change it."""
    recorded = json.loads((PROJECT / "stack.schema.json").read_text())
    assert recorded == stack_file_schema(), "regenerate it: vllm-serving schema > stack.schema.json"
