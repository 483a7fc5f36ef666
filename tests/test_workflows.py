"""The GitHub Actions workflows and every shell script: lint-clean, shaped as docs/ci.md promises,
stack detection run for real.

actionlint and shellcheck come from the test extra; without them this file fails rather than
skips, since an unchecked workflow only fails once it is on GitHub, and a script in a pod.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from vllm_serving.stack_file import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
DOCS = PROJECT_ROOT / "docs" / "ci.md"
BACKEND_SECRETS = {"PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG"}


def tool(name: str) -> str:
    # The venv's bin is not on PATH when pytest is started by its full path.
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert found, f"{name} is not installed: run the tests with ./run-tests, which installs requirements-dev.txt"
    return found


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean true.
    return workflow["on"] if "on" in workflow else workflow[True]


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if step.get("uses", "").split("@")[0] == action]


def pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    """The pulumi/actions step that runs a command (the other one, for shards, only installs the CLI)."""
    (step,) = [step for step in steps_using(job, "pulumi/actions") if "command" in step["with"]]
    return step


def test_every_workflow_passes_actionlint_and_shellcheck():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"preview.yml", "up.yml", "changed-stacks.yml", "diff-comment.yml", "tests.yml"}
    result = subprocess.run(
        [tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), *map(str, files)],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def shell_scripts() -> list[Path]:
    """Every shell script git tracks: `*.sh`, and any file whose shebang names sh or bash."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    scripts = []
    for name in filter(None, tracked):
        path = PROJECT_ROOT / name
        if not path.is_file():
            continue
        with path.open("rb") as file:
            first_line = file.readline()
        if name.endswith(".sh") or re.match(rb"#!\s*/\S*(/env\s+)?(ba)?sh\b", first_line):
            scripts.append(path)
    return sorted(scripts)


def test_the_script_search_finds_every_kind_of_script():
    found = {str(path.relative_to(PROJECT_ROOT)) for path in shell_scripts()}
    assert found >= {
        ".ci/run", "run-tests", "vllm-serving", "lint", "scripts/bootstrap.sh", "scripts/lock.sh",
        "components/scripts/prune_versions.sh", "components/scripts/job.sh",
    }


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_every_shell_script_passes_shellcheck(script):
    # A script without a shebang or a `shellcheck shell=` directive is run as `sh script`: the
    # download Job's scripts, in the vLLM image. `-x` follows `source`d files.
    head = script.read_text().splitlines()[:3]
    dialect = [] if head[0].startswith("#!") or any("shellcheck shell=" in line for line in head) else ["--shell=sh"]
    result = subprocess.run(
        [tool("shellcheck"), "-x", *dialect, script.name], cwd=script.parent, capture_output=True, text=True,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_every_action_is_pinned_to_a_release():
    for path in WORKFLOWS.glob("*.yml"):
        for ref in re.findall(r"uses:\s*([^\s#]+)", path.read_text()):
            if not ref.startswith("./"):
                assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", ref), f"{path.name}: {ref} is not pinned"


def test_preview_runs_on_pull_requests_with_an_offline_diff_that_needs_no_secrets():
    workflow = load("preview.yml")
    assert "pull_request" in triggers(workflow)
    jobs = workflow["jobs"]
    assert jobs["changes"]["uses"] == "./.github/workflows/changed-stacks.yml"

    offline = jobs["offline-diff"]
    assert "secrets." not in json.dumps(offline)
    assert steps_using(offline, "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    scripts = "\n".join(step.get("run", "") for step in offline["steps"])
    assert 'LOCKS="requirements.txt requirements-validate.txt" bash scripts/bootstrap.sh' in scripts
    # One process for every changed stack, for the diff and the schemas, from the same renderings.
    diff = './vllm-serving diff "${stacks[@]}" --base "origin/${BASE_REF}" --format markdown --validate > "$RUNNER_TEMP/diff.md"'
    assert diff in scripts
    # Nothing is written into the checkout before the diff: the base's code can be this code.
    assert scripts.index(diff) < scripts.index("> comment.md") and 'cat "$RUNNER_TEMP/diff.md"' in scripts
    assert "./vllm-serving render" not in scripts  # no second rendering of the same stacks
    assert "for stack in" not in scripts
    assert offline["permissions"]["pull-requests"] == "write"
    assert steps_using(offline, "actions/checkout")[0]["with"]["fetch-depth"] == 0


def test_preview_runs_pulumi_preview_per_changed_stack_and_comments():
    job = load("preview.yml")["jobs"]["preview"]
    assert job["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.changes.outputs.shards) }}"
    # A fork's pull request has no secrets: the job is skipped rather than failing.
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    pulumi = pulumi_step(job)
    assert pulumi["uses"] == "pulumi/actions@v7"
    assert pulumi["if"] == "${{ !matrix.shard.batch }}"
    assert {k: pulumi["with"][k] for k in ("command", "diff", "comment-on-pr", "work-dir")} == {
        "command": "preview", "diff": True, "comment-on-pr": True, "work-dir": ".",
    }
    assert "matrix.shard.name" in pulumi["with"]["stack-name"]
    (each,) = [step for step in job["steps"] if step.get("run") == "bash scripts/pulumi_each.sh preview"]
    assert each["if"] == "${{ matrix.shard.batch }}"


def test_up_deploys_pushes_to_main_behind_one_environment_per_stack_one_at_a_time():
    workflow = load("up.yml")
    assert triggers(workflow)["push"] == {"branches": ["main"]}
    job = workflow["jobs"]["up"]
    assert job["environment"] == {"name": "${{ matrix.shard.environment }}"}
    assert job["concurrency"] == {"group": "pulumi-up-${{ matrix.shard.name }}", "cancel-in-progress": False}
    assert job["strategy"]["fail-fast"] is False
    assert job["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.changes.outputs.shards) }}"
    assert pulumi_step(job)["with"]["command"] == "up"
    assert [step for step in job["steps"] if step.get("run") == "bash scripts/pulumi_each.sh up"]
    assert workflow["jobs"]["changes"]["with"]["base"] == "${{ github.event_name == 'push' && github.event.before || '' }}"


def test_tests_run_on_every_pull_request_and_push_to_main_through_ci_run():
    workflow = load("tests.yml")
    assert triggers(workflow) == {"pull_request": None, "push": {"branches": ["main"]}}
    (job,) = workflow["jobs"].values()
    assert "secrets." not in json.dumps(job)
    assert steps_using(job, "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    assert [step["run"] for step in job["steps"] if "run" in step] == [".ci/run"]
    ci_run = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "./run-tests -q" in ci_run
    # The lead's switch: ./lint joins CI when RUN_LINT=true.
    assert re.search(r"^RUN_LINT=(true|false)$", ci_run, re.M)
    assert 'if [ "$RUN_LINT" = true ]; then\n  ./lint\n' in ci_run
    # Until then ruff alone gates it: it is clean.
    assert "else\n  ./lint --ruff-only\n" in ci_run


def test_preview_and_up_pass_the_policy_pack_and_install_it_and_the_program_from_the_locks():
    for name in ("preview.yml", "up.yml"):
        job = load(name)["jobs"]["preview" if name == "preview.yml" else "up"]
        assert pulumi_step(job)["with"]["policyPacks"] == "policy"
        scripts = "\n".join(step.get("run", "") for step in job["steps"])
        assert "bash scripts/bootstrap.sh" in scripts
        assert 'VENV="$PWD/policy/.venv" LOCKS=requirements-policy.txt bash scripts/bootstrap.sh' in scripts


def test_no_workflow_installs_anything_but_the_locks():
    for path in WORKFLOWS.glob("*.yml"):
        assert "pip install" not in path.read_text(), f"{path.name} installs around the lock files"


def test_pulumi_cloud_oidc_replaces_the_stored_token_when_switched_on():
    for name, job_name in (("preview.yml", "preview"), ("up.yml", "up")):
        job = load(name)["jobs"][job_name]
        assert job["permissions"]["id-token"] == "write"
        (oidc,) = steps_using(job, "pulumi/auth-actions")
        assert oidc["if"] == "vars.PULUMI_OIDC == 'true'"
        assert oidc["with"]["organization"] == "${{ vars.PULUMI_ORG }}"
        # The token reaches only the steps that need it, preferring the short-lived one.
        token = "${{ steps.pulumi-oidc.outputs.pulumi-access-token || secrets.PULUMI_ACCESS_TOKEN }}"
        (each,) = [step for step in job["steps"] if "pulumi_each.sh" in step.get("run", "")]
        assert pulumi_step(job)["env"]["PULUMI_ACCESS_TOKEN"] == each["env"]["PULUMI_ACCESS_TOKEN"] == token
        assert "PULUMI_ACCESS_TOKEN" not in job["env"]


def test_the_pulumi_cli_matches_the_pinned_sdk():
    match = re.search(r'"pulumi==([^"]+)"', (PROJECT_ROOT / "pyproject.toml").read_text())
    assert match
    pinned = match.group(1)
    for name in ("preview.yml", "up.yml"):
        for job in load(name)["jobs"].values():
            for step in steps_using(job, "pulumi/actions"):
                assert step["with"]["pulumi-version"] == pinned


def test_the_secrets_the_workflows_read_are_the_documented_ones():
    used = set()
    for path in WORKFLOWS.glob("*.yml"):
        used |= set(re.findall(r"secrets\.([A-Z0-9_]+)", path.read_text()))
    docs = DOCS.read_text()
    assert used >= BACKEND_SECRETS
    assert [name for name in sorted(used) if f"`{name}`" not in docs] == []


def test_the_fork_commenter_never_checks_out_the_pull_request():
    workflow = load("diff-comment.yml")
    assert triggers(workflow)["workflow_run"]["workflows"] == [load("preview.yml")["name"]]
    job = workflow["jobs"]["comment"]
    assert not steps_using(job, "actions/checkout")
    assert "head.sha !== context.payload.workflow_run.head_sha" in json.dumps(job)


def test_the_docs_cover_environments_backends_and_the_offline_diff():
    docs = DOCS.read_text()
    for needle in (
        "s3://", "file://", "PULUMI_CONFIG_PASSPHRASE", "environment", "vllm-serving diff", "[replace]",
        "policyPacks: policy", "pulumi/auth-actions", "id-token: write", "PULUMI_OIDC", "tests.yml", "RUN_LINT",
    ):
        assert needle in docs


# --- changed-stacks.yml's script, run for real ------------------------------------------------


def detect_script() -> str:
    (step,) = [s for s in load("changed-stacks.yml")["jobs"]["detect"]["steps"] if s.get("id") == "stacks"]
    assert "${{" not in step["run"]  # inputs reach it through env, so it runs the same here
    return step["run"]


def git(repo: Path, *args: str) -> str:
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=repo, env={**os.environ, **identity}, capture_output=True, text=True, check=True,
    ).stdout.strip()


@pytest.fixture
def history(tmp_path: Path):
    """A repository with three stacks committed, and a way to commit more and detect."""
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    (repo / "components").mkdir()
    for name in ("alpha", "beta", "gamma"):
        (repo / "stacks" / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    (repo / "components" / "serving.py").write_text("")
    (repo / "README.md").write_text("")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")

    def commit(change) -> str:
        change(repo)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", "change")
        return git(repo, "rev-parse", "HEAD")

    def detect(head: str, base: str = base, only: str = "", key: str = "stacks", max_jobs: str = "") -> tuple[int, Any]:
        output = tmp_path / "github-output"
        output.write_text("")
        env = {**os.environ, "BASE": base, "HEAD": head, "ONLY": only, "GITHUB_OUTPUT": str(output)}
        result = subprocess.run(
            ["bash", "-c", detect_script()], cwd=repo, capture_output=True, text=True,
            env={**env, "MAX_JOBS": max_jobs} if max_jobs else env,
        )
        lines = [line for line in output.read_text().splitlines() if line.startswith(f"{key}=")]
        return result.returncode, json.loads(lines[0][len(f"{key}="):]) if lines else None

    return commit, detect


def test_a_changed_stack_file_selects_that_stack(history):
    commit, detect = history
    head = commit(lambda repo: (repo / "stacks" / "Pulumi.beta.yaml").write_text("config: {a: 1}\n"))
    assert detect(head) == (0, ["beta"])


@pytest.mark.parametrize("path", ["components/serving.py", "__main__.py", "pyproject.toml", "requirements.txt", "Pulumi.yaml"])
def test_a_program_change_selects_every_stack(history, path):
    commit, detect = history
    head = commit(lambda repo: (repo / path).write_text("# changed\n"))
    assert detect(head) == (0, ["alpha", "beta", "gamma"])


def test_an_unrelated_change_selects_no_stack(history):
    commit, detect = history
    head = commit(lambda repo: (repo / "README.md").write_text("docs\n"))
    assert detect(head) == (0, [])


def test_a_deleted_stack_is_not_selected(history):
    commit, detect = history
    head = commit(lambda repo: (repo / "stacks" / "Pulumi.gamma.yaml").unlink())
    assert detect(head) == (0, [])


@pytest.mark.parametrize("base", ["0" * 40, "", "1234567890abcdef1234567890abcdef12345678"])
def test_no_usable_base_selects_every_stack(history, base):
    commit, detect = history
    head = commit(lambda _repo: None)
    assert detect(head, base=base) == (0, ["alpha", "beta", "gamma"])


def test_a_stack_asked_for_by_name_is_the_only_one(history):
    commit, detect = history
    head = commit(lambda repo: (repo / "components" / "serving.py").write_text("# changed\n"))
    assert detect(head, only="gamma") == (0, ["gamma"])
    assert detect(head, only="../gamma")[0] == 1
    assert detect(head, only="delta")[0] == 1


def test_up_to_the_job_limit_each_stack_is_a_shard_of_its_own(history):
    commit, detect = history
    head = commit(lambda repo: (repo / "components" / "serving.py").write_text("# changed\n"))
    assert detect(head, key="shards") == (0, [
        {"name": name, "stacks": [name], "environment": name, "batch": False} for name in ("alpha", "beta", "gamma")
    ])


def test_beyond_the_job_limit_the_stacks_share_that_many_shards(history):
    commit, detect = history
    head = commit(lambda repo: (repo / "components" / "serving.py").write_text("# changed\n"))
    assert detect(head, key="shards", max_jobs="2") == (0, [
        {"name": "shard-1-of-2", "stacks": ["alpha", "gamma"], "environment": "stacks-batch", "batch": True},
        {"name": "shard-2-of-2", "stacks": ["beta"], "environment": "stacks-batch", "batch": True},
    ])
    # GitHub's limit of jobs in one matrix.
    assert triggers(load("changed-stacks.yml"))["workflow_call"]["inputs"]["max-jobs"]["default"] == 256


def test_a_shard_runs_pulumi_for_each_of_its_stacks_and_fails_if_any_failed(tmp_path):
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    # A stand-in CLI: records its arguments, and fails for the stack "beta".
    fake.write_text('#!/bin/sh\necho "$*" >> "$CALLS"\ncase "$*" in *"--stack org/beta"*) exit 1;; esac\n')
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    result = subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "pulumi_each.sh"), "up"], capture_output=True, text=True,
        env={**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls),
             "STACKS": '["alpha","beta","gamma"]', "PULUMI_ORG": "org", "PULUMI_BACKEND_URL": ""},
    )
    assert result.returncode == 1
    assert "::error::pulumi up failed for: beta" in result.stdout
    assert calls.read_text().splitlines() == ["login"] + [
        f"up --yes --diff --policy-pack policy --stack org/{name}" for name in ("alpha", "beta", "gamma")
    ]
