"""The release, end to end: scripts/release.py builds the wheel and sdist of this checkout, a team's
project is made from the release's template in a temporary directory, the wheel is installed
there with every dependency checked against its hash, and the project's commands and tests run
from the project's directory with nothing of this checkout on the import path.

The install is uv's, offline, from the cache ./run-tests filled (the template's locks are a subset
of requirements-dev.txt, same versions), without resolving, as scripts/bootstrap.sh installs;
`uv pip check` then confirms every dependency is there. No network, a few seconds. A team installs the same
files with pip (`pulumi install`), which checks the same hashes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_template import CHART_VALUES, new_project
from vllm_serving.stack_file import PROJECT_ROOT


def _load_release() -> Any:
    """scripts/release.py, which is a script, not a module of the package."""
    spec = importlib.util.spec_from_file_location("release", PROJECT_ROOT / "scripts" / "release.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release = _load_release()

if os.environ.get("VLLM_SERVING_RELEASE") != "1":
    # A minute or more on 2 cores (a build, a venv, a dozen processes): its own step of .ci/run.
    pytest.skip("the release test runs as its own step of .ci/run (VLLM_SERVING_RELEASE=1)", allow_module_level=True)

VERSION = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]


def uv() -> str:
    """The uv scripts/bootstrap.sh installed, as it finds it."""
    version = re.search(r"^uv==(\S+)", (PROJECT_ROOT / "requirements-uv.txt").read_text(), re.MULTILINE)
    assert version
    tools = os.environ.get("VLLM_SERVING_TOOLS") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vllm-serving"
    found = Path(tools) / f"uv-{version[1]}" / "bin" / "uv"
    assert found.is_file(), f"no uv at {found}: ./run-tests installs it"
    return str(found)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    return release.release(None, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    """A project made from the release's template, its .venv filled from requirements-dev.txt."""
    project = new_project(tmp_path_factory.mktemp("team") / "team-llm", template=built["template"])
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", ".venv"], cwd=project, check=True)
    result = subprocess.run(
        [uv(), "pip", "install", "--offline", "--require-hashes", "--no-deps", "--only-binary", ":all:",
         "--python", ".venv/bin/python", "-r", "requirements-dev.txt"],
        cwd=project, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    # Installed without resolving (as scripts/bootstrap.sh does): the lock must hold every
    # dependency of every package, the wheel's included, which `pip check` confirms.
    check = subprocess.run([uv(), "pip", "check", "--python", ".venv/bin/python"], cwd=project, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return project


def in_project(project: Path, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A command of the project's environment, run where a team runs it; nothing of this checkout
    reaches it (no PYTHONPATH; bin/ of the project's .venv first, as an activated venv has it)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{project / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(list(argv), cwd=cwd or project, env=env, capture_output=True, text=True)


def test_the_release_is_a_wheel_an_sdist_and_their_sums(built):
    wheel, sdist = built["wheel"], built["sdist"]
    assert (wheel.name, sdist.name) == (f"vllm_serving-{VERSION}-py3-none-any.whl", f"vllm_serving-{VERSION}.tar.gz")
    sums = (wheel.parent / "SHA256SUMS").read_text().splitlines()
    assert sums == [f"{release.sha256(path)}  {path.name}" for path in (wheel, sdist)]


def test_the_templates_locks_pin_the_wheel_by_its_hash_after_every_dependency(built):
    wheel = built["wheel"]
    for name in ("requirements.txt", "requirements-dev.txt"):
        text = (built["template"] / name).read_text()
        assert text.endswith(f"./wheels/{wheel.name} \\\n    --hash=sha256:{release.sha256(wheel)}\n")
        assert "OWNER" not in text and "git+" not in text
    assert (built["template"] / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()
    assert (built["template"] / "policy" / "PulumiPolicy.yaml").is_file()


def test_the_wheel_is_installed_not_this_checkout(installed):
    result = in_project(installed, "python", "-c", "import components, vllm_serving; print(vllm_serving.__file__)")
    assert result.returncode == 0, result.stderr
    assert "/.venv/lib/" in result.stdout and "site-packages" in result.stdout, result.stdout


def test_render_and_validate_by_name_in_the_project(installed):
    result = in_project(installed, "vllm-serving", "render", "example", "--validate")
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout and "all valid" in result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr


def test_render_a_file_from_a_subdirectory(installed):
    result = in_project(installed, "vllm-serving", "render", "Pulumi.example.yaml", "--format", "json",
                        cwd=installed / "stacks")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outputs"]["servedModelName"] == "codellama-7b"


def test_schema_is_the_projects_editor_schema(installed):
    result = in_project(installed, "vllm-serving", "schema")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((installed / "stack.schema.json").read_text())


def test_import_values_then_diff_then_the_projects_tests(installed):
    result = in_project(installed, "vllm-serving", "import-values", str(CHART_VALUES / "codellama.yaml"),
                        "--stack", "imported")
    assert result.returncode == 0, result.stderr
    assert (installed / "stacks" / "Pulumi.imported.yaml").is_file()
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "."],
                 ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first"]):
        assert in_project(installed, *argv).returncode == 0
    stack = installed / "stacks" / "Pulumi.example.yaml"
    document = yaml.safe_load(stack.read_text())
    document["config"]["vllm-serving:resources"]["limits"]["cpu"] = 6
    stack.write_text(yaml.safe_dump(document))
    result = in_project(installed, "vllm-serving", "diff", "example")
    assert result.returncode == 1, result.stderr
    assert "Deployment" in result.stdout, result.stdout
    tests = in_project(installed, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_the_wheel_of_a_commit_is_the_same_bytes_on_every_build(built, tmp_path):
    again = release.release(None, tmp_path / "again")
    assert again["wheel"].read_bytes() == built["wheel"].read_bytes()


def test_the_release_refuses_a_directory_that_holds_something(tmp_path):
    (tmp_path / "old.whl").write_text("")
    with pytest.raises(SystemExit, match="not empty"):
        release.release(None, tmp_path)

