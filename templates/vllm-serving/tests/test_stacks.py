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


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda path: path.name)
def test_every_stack_renders_and_validates(stack_file):
    command = [sys.executable, "-m", "vllm_serving", "render", str(stack_file),
               "--program", str(PROJECT / "__main__.py"), "--validate"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT)
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout


def test_the_editor_schema_is_current():
    """stack.schema.json is what editors validate stacks with; an upgrade may change it."""
    recorded = json.loads((PROJECT / "stack.schema.json").read_text())
    assert recorded == stack_file_schema(), "regenerate it: vllm-serving schema > stack.schema.json"
