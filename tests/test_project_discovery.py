"""Every command works in the Pulumi project it is run from, as the Pulumi CLI finds it: the
nearest directory with Pulumi.yaml from the working directory upwards (vllm_serving/project.py).

These run the commands in a project made from templates/vllm-serving, from its directory and from
a subdirectory of it; the project's program differs from this repository's by one output, so a
rendering shows whose program ran. tests/test_release.py runs them against the installed wheel.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.test_template import CHART_VALUES, new_project
from vllm_serving.cli import main
from vllm_serving.project import current_project, find_project_file, project_of
from vllm_serving.stack_file import PROJECT_ROOT

OUR_OUTPUT = 'pulumi.export("team", "ours")\n'


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    made = new_project(tmp_path / "team-llm")
    with (made / "__main__.py").open("a") as program:
        program.write(OUR_OUTPUT)
    (made / "stacks" / "Pulumi.mymodel.yaml").write_text((made / "stacks" / "Pulumi.example.yaml").read_text())
    monkeypatch.chdir(made)
    return made


def rendered_outputs(capsys, *argv: str) -> dict:
    assert main(["render", *argv, "--format", "json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)["outputs"]


def test_the_project_is_the_nearest_directory_with_pulumi_yaml(project):
    (project / "stacks" / "deeper").mkdir()
    assert find_project_file(project / "stacks" / "deeper") == project / "Pulumi.yaml"
    found = current_project(project / "stacks" / "deeper")
    assert (found.root, found.stacks_dir, found.program) == (project, project / "stacks", project / "__main__.py")


def test_a_project_file_names_its_stack_directory_and_program(tmp_path):
    (tmp_path / "Pulumi.yml").write_text("name: x\nruntime: python\nstackConfigDir: config\nmain: src/\n")
    found = current_project(tmp_path)
    assert (found.stacks_dir, found.program) == (tmp_path / "config", tmp_path / "src" / "__main__.py")
    assert project_of(tmp_path / "config" / "Pulumi.a.yaml") == found


def test_render_by_name_renders_the_projects_stack_with_the_projects_program(project, capsys):
    assert rendered_outputs(capsys, "mymodel")["team"] == "ours"


def test_render_from_a_subdirectory_finds_the_project(project, capsys, monkeypatch):
    monkeypatch.chdir(project / "stacks")
    assert rendered_outputs(capsys, "mymodel")["team"] == "ours"
    assert rendered_outputs(capsys, "Pulumi.mymodel.yaml")["team"] == "ours"


def test_render_a_file_without_program_runs_the_projects_program(project, capsys, monkeypatch):
    # Run from elsewhere: the stack file's own project decides, as `pulumi up` in it would.
    monkeypatch.chdir(PROJECT_ROOT)
    assert rendered_outputs(capsys, str(project / "stacks" / "Pulumi.mymodel.yaml"))["team"] == "ours"


def test_render_all_is_every_stack_of_the_project(project, capsys):
    assert main(["render", "--all", "--format", "json"]) == 0
    stacks = [json.loads(line)["stack"] for line in capsys.readouterr().out.splitlines()]
    assert stacks == ["example", "mymodel"]


def test_an_unknown_stack_lists_the_projects_stacks(project, capsys):
    assert main(["render", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "stacks/Pulumi.nosuch.yaml does not exist (stacks here: example, mymodel)" in err
    assert str(project) not in err  # a path relative to where the user stands


def test_a_project_without_its_program_says_so(project, capsys):
    (project / "__main__.py").unlink()
    assert main(["render", "mymodel"]) == 2
    err = capsys.readouterr().err
    assert "no Pulumi program at" in err and "--program" in err and "a bug" not in err


def test_import_values_writes_into_the_projects_stack_directory(project, capsys):
    assert main(["import-values", str(CHART_VALUES / "codellama.yaml"), "--stack", "imported"]) == 0
    assert (project / "stacks" / "Pulumi.imported.yaml").is_file()
    assert not (PROJECT_ROOT / "stacks" / "Pulumi.imported.yaml").exists()
    err = capsys.readouterr().err
    assert "wrote stacks/Pulumi.imported.yaml" in err and str(project) not in err


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def test_diff_in_a_template_project(project, capsys):
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first")
    stack = project / "stacks" / "Pulumi.mymodel.yaml"
    stack.write_text(stack.read_text().replace("cpu: 4", "cpu: 6"))
    assert main(["diff", "mymodel"]) == 1, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "Deployment" in out and "6" in out
    assert main(["diff", "stacks/Pulumi.example.yaml"]) == 0
