"""The project's own examples are right, so that a warning means something: the first command a
newcomer runs prints the predicted cold start (and, for a routed stack, the picker's queue beside
it: vllm_serving/cli.py prints both as one summary) and nothing else, on every example stack and the
template's, and the template's example lets the volume check run (it sets model.size)."""

from __future__ import annotations

import pytest
import yaml

from tests.test_template import TEMPLATE
from vllm_serving.cli import main
from vllm_serving.stack_file import STACKS_DIR

EXAMPLES = [*sorted(STACKS_DIR.glob("Pulumi.*.yaml")), TEMPLATE / "stacks" / "Pulumi.example.yaml"]


@pytest.mark.parametrize("stack_file", EXAMPLES, ids=lambda path: f"{path.parent.parent.name}/{path.name}")
def test_an_example_renders_without_a_warning(stack_file, capsys):
    assert main(["render", str(stack_file)]) == 0
    lines = capsys.readouterr().err.splitlines()
    summary = ("predicted cold start: ", "routing: ")
    assert [line for line in lines if not line.startswith(summary)] == []


def test_the_template_example_sets_the_model_size_the_volume_check_needs():
    config = yaml.safe_load((TEMPLATE / "stacks" / "Pulumi.example.yaml").read_text())["config"]
    assert config["vllm-serving:model"]["size"]
    # The label GPU feature discovery puts on every GPU node (README, GPU node placement).
    assert config["vllm-serving:server"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_a_template_example_too_small_for_two_copies_is_refused(capsys, tmp_path):
    """The two-copy check runs on the template's example: 24Gi, the chart's size, is refused."""
    source = (TEMPLATE / "stacks" / "Pulumi.example.yaml").read_text()
    small = source.replace("      size: 32Gi\n", "      size: 24Gi\n")
    assert small != source
    (tmp_path / "Pulumi.small.yaml").write_text(small)
    assert main(["render", str(tmp_path / "Pulumi.small.yaml")]) == 2
    assert "model.volume.size" in capsys.readouterr().err
