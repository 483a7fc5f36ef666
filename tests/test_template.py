"""templates/vllm-serving: a project made from it renders, and its own tests pass.

The project is laid down as `pulumi new ./templates/vllm-serving` would: every file copied, with
`${PROJECT}` and `${DESCRIPTION}` replaced in each (pulumi/templates README, "Text replacement").
These run it against this checkout, which the test environment has on its path; the release's
template, with the wheel installed from its hashed pin, is tests/test_release.py's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_workflows import tool
from vllm_serving.cli import main
from vllm_serving.render import render
from vllm_serving.schema import stack_file_schema
from vllm_serving.stack_file import PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "templates" / "vllm-serving"
CHART_VALUES = PROJECT_ROOT / "tests" / "fixtures" / "chart-values"


def new_project(
    target: Path, name: str = "team-llm", description: str = "Our team's models", template: Path = TEMPLATE,
) -> Path:
    """What `pulumi new <template> --name NAME --description DESCRIPTION` lays down (a binary file,
    such as the release's wheel, is copied as it is)."""
    for source in template.rglob("*"):
        if source.is_dir() or "__pycache__" in source.parts:
            continue
        destination = target / source.relative_to(template)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            text = source.read_text()
        except UnicodeDecodeError:
            destination.write_bytes(source.read_bytes())
            continue
        destination.write_text(text.replace("${PROJECT}", name).replace("${DESCRIPTION}", description))
    return target


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return new_project(tmp_path / "team-llm")


def run_project_tests(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project, capture_output=True, text=True,
    )


def test_the_public_api_is_importable():
    """What the template's __main__.py imports: docs/public-api.md."""
    import components
    import components.config

    assert hasattr(components, "VllmServing"), "components/__init__.py must export VllmServing (docs/public-api.md)"
    assert callable(components.config.load_config) and isinstance(components.config.ServingConfig, type)
    assert callable(components.refuse_rename)


def test_the_template_is_a_pulumi_template(project):
    source = yaml.safe_load((TEMPLATE / "Pulumi.yaml").read_text())
    assert (source["name"], source["description"]) == ("${PROJECT}", "${DESCRIPTION}")
    assert {"displayName", "description"} <= set(source["template"])
    made = yaml.safe_load((project / "Pulumi.yaml").read_text())
    assert (made["name"], made["description"]) == ("team-llm", "Our team's models")
    assert made["runtime"]["name"] == "python" and made["stackConfigDir"] == "stacks"
    assert "# team-llm" in (project / "README.md").read_text()


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$", text, re.MULTILINE))


@pytest.mark.parametrize(("lock", "extras_lock"), [
    ("requirements.txt", "requirements.txt"), ("requirements-dev.txt", "requirements-validate.txt"),
])
def test_the_templates_locks_hold_every_dependency_hashed_at_the_repositorys_versions(lock, extras_lock):
    """scripts/lock.sh writes them; scripts/release.py appends the wheel's own hashed pin. No
    placeholder host, no tag: nothing that points at a release that does not exist."""
    text = (TEMPLATE / lock).read_text()
    assert "OWNER" not in text and "git+" not in text and "vllm-serving" not in _pins(text)
    ours, dev = _pins(text), _pins((PROJECT_ROOT / "requirements-dev.txt").read_text())
    assert {name: dev.get(name) for name in ours} == ours, "run scripts/lock.sh"
    assert set(_pins((PROJECT_ROOT / extras_lock).read_text())) <= set(ours), "run scripts/lock.sh"
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in entry for entry in entries if entry.strip())
    if lock == "requirements-dev.txt":
        assert {"pytest", "kubernetes-validate", "jsonschema"} <= set(ours)


def test_a_new_project_renders_its_example_stack(project):
    rendering = render(project / "stacks" / "Pulumi.example.yaml", program=project / "__main__.py")
    deployment = rendering.one("Deployment")
    assert deployment.inputs["metadata"]["name"] == "codellama-7b"
    assert rendering.outputs["servedModelName"] == "codellama-7b"
    assert rendering.outputs["openaiBaseUrl"].endswith(":8000/v1")


def test_the_example_stack_has_no_active_proxy_and_validates_against_the_schema(project):
    import jsonschema

    document = yaml.safe_load((project / "stacks" / "Pulumi.example.yaml").read_text())
    assert "vllm-serving:env" not in document["config"]
    jsonschema.Draft202012Validator(stack_file_schema()).validate(document)


def test_the_cli_renders_and_validates_with_the_projects_program(project, capsys):
    stack_file = project / "stacks" / "Pulumi.example.yaml"
    assert main(["render", str(stack_file), "--program", str(project / "__main__.py"), "--validate"]) == 0
    assert "kind: Deployment" in capsys.readouterr().out


def test_the_projects_schema_file_is_current():
    recorded = json.loads((TEMPLATE / "stack.schema.json").read_text())
    assert recorded == stack_file_schema(), (
        "regenerate: ./vllm-serving schema > templates/vllm-serving/stack.schema.json"
    )


def test_the_projects_own_tests_pass_and_keep_passing_as_stacks_are_added(project):
    first = run_project_tests(project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "3 passed" in first.stdout
    # By hand: a copy of the example, as the project's README says.
    example = (project / "stacks" / "Pulumi.example.yaml").read_text()
    (project / "stacks" / "Pulumi.mistral.yaml").write_text(example.replace("codellama-7b", "mistral-7b"))
    # With import-values, from a chart values file.
    values = CHART_VALUES / "codellama.yaml"
    assert main(["import-values", str(values), "--stack", "from-chart", "--stacks-dir", str(project / "stacks")]) == 0
    again = run_project_tests(project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "5 passed" in again.stdout


def test_the_projects_own_tests_catch_a_broken_stack(project):
    example = (project / "stacks" / "Pulumi.example.yaml").read_text()
    broken = example.replace("  vllm-serving:namespace: default\n", "  vllm-serving:replicas: 2\n")
    assert broken != example
    (project / "stacks" / "Pulumi.broken.yaml").write_text(broken)
    result = run_project_tests(project)
    assert result.returncode == 1
    assert "vllm-serving:replicas: unknown key" in result.stdout


def test_the_projects_workflows_pass_actionlint_and_run_the_policy_pack(project):
    workflows = project / ".github" / "workflows"
    assert "vllm-serving render --all --validate -o rendered" in (workflows / "stacks.yml").read_text()
    pulumi_pin = re.search(r'"pulumi==(\S+)"', (PROJECT_ROOT / "pyproject.toml").read_text())
    assert pulumi_pin
    for name in ("preview.yml", "up.yml"):
        workflow = yaml.safe_load((workflows / name).read_text())
        (action,) = [step for job in workflow["jobs"].values() for step in job.get("steps", [])
                     if step.get("uses", "").startswith("pulumi/actions@")]
        assert action["with"]["policyPacks"] == "policy" and action["with"]["pulumi-version"] == pulumi_pin[1]
        installs = [step["run"] for job in workflow["jobs"].values() for step in job.get("steps", [])
                    if "pip install" in step.get("run", "")]
        assert installs and all(line.count("--require-hashes") == line.count("pip install") for line in installs)
    for name in ("stacks.yml", "preview.yml", "up.yml"):
        result = subprocess.run(
            [tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), str(workflows / name)],
            cwd=project, capture_output=True, text=True,
        )
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), name


def test_the_template_is_not_left_with_generated_files():
    """pulumi new copies everything in the directory; caches must not ride along."""
    assert not [path for path in TEMPLATE.rglob("*") if path.name in ("__pycache__", ".venv", ".pytest_cache")]
