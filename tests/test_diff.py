"""`vllm-serving diff`: a stack change, as a reviewer reads it, against a real git base revision.

The git tests work in a throwaway repository holding a copy of this project (tracked files
and untracked ones that are not ignored, so work in progress renders as it does here), with
one commit as the base. The rule tests compare two in-process renderings edited by hand, to
reach fields that no stack config can change.
"""

from __future__ import annotations

import copy
import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import HF_MODEL, render_values
from vllm_serving import cli, diff
from vllm_serving import render as render_module
from vllm_serving.diff import REFUSED, REPLACE, RESTART, Side, compare, render_markdown, render_text, same_code
from vllm_serving.render import rendering_as_json
from vllm_serving.stack_file import PROJECT_ROOT

REAL_RUNNING_TREE = same_code.running_tree
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=repo, env={**os.environ, **GIT_IDENTITY}, capture_output=True, text=True, check=True,
    )
    return result.stdout


@pytest.fixture(scope="session")
def committed_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("committed-project")
    listed = git(PROJECT_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = PROJECT_ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is listed too
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


@pytest.fixture
def repo(committed_project: Path, tmp_path: Path) -> Path:
    """A private copy of the committed project, free to edit."""
    return Path(shutil.copytree(committed_project, tmp_path / "repo", symlinks=True))


@pytest.fixture(autouse=True)
def base_code_differs(monkeypatch):
    """Whether a base's code is the code running here depends on the checkout the tests run from
    (a symlinked .venv, work in progress): by default, the base renders in a subprocess of its
    own code, as it does whenever the code differs; `same_code_as` says otherwise."""
    monkeypatch.setattr(same_code, "running_tree", lambda: None)


def same_code_as(monkeypatch, repo: Path) -> None:
    """The code running here is, file for file, the code of `repo`'s working tree (a copy of it)."""
    monkeypatch.setattr(same_code, "running_tree", lambda: REAL_RUNNING_TREE(repo))


def stack_file(repo: Path, stack: str) -> Path:
    return repo / "stacks" / f"Pulumi.{stack}.yaml"


def edit_stack(repo: Path, stack: str, edit: Callable[[dict[str, Any]], None]) -> None:
    path = stack_file(repo, stack)
    document = yaml.safe_load(path.read_text())
    edit(document["config"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def run_diff(repo: Path, stack: str, base: str = "HEAD", output_format: str = "text") -> tuple[int, str, str]:
    """The command in this process: the base still renders in a subprocess by its own code."""
    out, err = io.StringIO(), io.StringIO()
    code = diff.run(str(stack_file(repo, stack)), base, output_format, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def blocks(text: str) -> dict[str, list[str]]:
    """Each resource's heading line and the lines under it."""
    found = {}
    for chunk in text.split("\n\n")[1:]:
        heading, *lines = chunk.strip("\n").split("\n")
        found[heading] = [line.strip() for line in lines]
    return found


def block(text: str, heading_prefix: str) -> tuple[str, list[str]]:
    matches = [(heading, lines) for heading, lines in blocks(text).items() if heading.startswith(heading_prefix)]
    assert len(matches) == 1, f"expected one block starting {heading_prefix!r} in:\n{text}"
    return matches[0]


# --- against a git base revision --------------------------------------------------------------


def test_an_unchanged_stack_has_no_changes_and_exits_0(repo, capsys):
    # Through the command line entry point, as `vllm-serving diff PATH` runs it.
    code = cli.main(["diff", str(stack_file(repo, "codellama-7b"))])

    assert code == 0
    head = git(repo, "rev-parse", "--short=7", "HEAD").strip()
    assert capsys.readouterr().out == f"stack codellama-7b: HEAD ({head}) → working tree\nno changes\n"


def test_the_command_line_takes_a_base_and_a_format():
    args = cli.build_parser().parse_args(["diff", "codellama-7b", "--base", "origin/main", "--format", "markdown"])

    assert (args.stack, args.base, args.format, args.handler) == (
        ["codellama-7b"], "origin/main", "markdown", diff._diff_command
    )
    assert cli.build_parser().parse_args(["diff", "codellama-7b"]).base == "HEAD"


def test_a_model_change_replaces_the_download_job_and_restarts_the_server(repo):
    def new_model(config):
        config["vllm-serving:model"]["huggingface"]["id"] = "codellama/CodeLlama-13b-Instruct-hf"

    edit_stack(repo, "codellama-7b", new_model)
    code, out, _ = run_diff(repo, "codellama-7b")

    assert code == 1
    assert out.splitlines()[1] == "2 to change (1 replace); server pods restart; outputs change"
    heading, lines = block(out, "+- Job ")
    # One Pulumi resource whose Kubernetes name, derived from its inputs, changes: a replacement.
    names = re.fullmatch(
        r"\+- Job default/(codellama-7b-download-\w+) → default/(codellama-7b-download-\w+)"
        r"  \(pulumi: codellama-7b-download-job\)",
        heading,
    )
    assert names and names.group(1) != names.group(2)
    # The new Job's name changes downloadLogsCommand, hence "outputs change".
    assert lines[0] == "replace: create the new Job, then delete the old one"
    assert (
        '~ spec.template.spec.containers[download].env[HF_MODEL_ID].value: '
        '"codellama/CodeLlama-7b-Instruct-hf" → "codellama/CodeLlama-13b-Instruct-hf"  [replace]'
    ) in lines
    _, lines = block(out, "~ Deployment default/codellama-7b ")
    assert lines[0].startswith("restarts the server pods")
    changed_fields = [line for line in lines[1:] if line.startswith("~ ")]
    assert changed_fields and all(line.endswith("[restart]") for line in changed_fields)


def test_a_replica_change_updates_the_deployment_without_a_restart(repo):
    edit_stack(repo, "llama-3-8b-existing-claim", lambda config: config.update({"vllm-serving:replicaCount": 3}))
    code, out, _ = run_diff(repo, "llama-3-8b-existing-claim")

    assert code == 1
    assert out.splitlines()[1] == "1 to change"
    # spec.replicas is outside the pod template: the running pods stay, one more is added. Pulumi
    # waits longer for a later rollout, which replaces one pod after the other.
    assert blocks(out) == {
        "~ Deployment llm/llama-3-8b  (pulumi: llama-3-8b-server-deployment)": [
            "~ spec.replicas: 2 → 3",
            '~ options.customTimeouts.create: "112m" → "168m"',
            '~ options.customTimeouts.update: "112m" → "168m"',
        ]
    }


def test_a_volume_access_mode_and_storage_class_change_replaces_the_claim(repo):
    new_volume = {"accessModes": ["ReadWriteMany"], "storageClass": "fast-ssd"}
    edit_stack(repo, "codellama-7b", lambda config: config["vllm-serving:model"]["volume"].update(new_volume))
    code, out, _ = run_diff(repo, "codellama-7b")

    assert code == 1
    # The Job and the server pods lose the single-node volume's pod affinity (components/storage/placement.py):
    # the Job, whose template is immutable, gets a new name, and the server pods restart.
    assert out.splitlines()[1] == "3 to change (2 replace); server pods restart; outputs change"
    _, lines = block(out, "+- PersistentVolumeClaim default/codellama-7b-model ")
    # Same name, same namespace: the old claim has to go before the new one can exist.
    assert lines[0] == "replace: delete the old PersistentVolumeClaim first, then create the new one"
    assert '~ spec.accessModes[0]: "ReadWriteOnce" → "ReadWriteMany"  [replace]' in lines
    assert '+ spec.storageClassName: "fast-ssd"  [replace]' in lines
    # retainOnDelete: the old claim is not deleted, and its name is taken.
    assert ("retained: Pulumi leaves the old one in the cluster, so creating the new one fails "
            "(`already exists`) until the old one is deleted by hand") in lines


def test_moving_to_the_claim_as_an_existing_one_keeps_it_in_the_cluster(repo):
    # The second step of a rename, or serving from a claim other stacks share: no claim to manage.
    edit_stack(repo, "codellama-7b", lambda config: config["vllm-serving:model"]["volume"].update(existingClaim="codellama-7b-model"))
    code, out, _ = run_diff(repo, "codellama-7b")

    assert code == 1
    _, lines = block(out, "- PersistentVolumeClaim default/codellama-7b-model")
    assert "retained: Pulumi drops it from the stack's state and leaves it in the cluster" in lines


def test_a_stack_new_since_the_base_is_all_added(repo):
    shutil.copy(stack_file(repo, "codellama-7b"), stack_file(repo, "codellama-copy"))
    code, out, _ = run_diff(repo, "codellama-copy")

    assert code == 1
    assert "(Pulumi.codellama-copy.yaml does not exist at HEAD)" in out
    headings = [heading for heading in blocks(out) if heading != "What the new stack deploys:"]
    expected = rendering_as_json(render_values({"model": HF_MODEL}))["resources"]
    assert len(headings) - 1 == len(expected)  # and the Outputs block
    assert all(heading.startswith("+ ") for heading in headings[:-1])
    assert out.splitlines()[1] == f"{len(expected)} to add; outputs change"


def test_a_new_stack_says_first_what_it_deploys(repo):
    """A reviewer checks a new stack by its model, image, GPUs, volume and exposure, not by the
    names of the resources it adds."""
    shutil.copy(stack_file(repo, "llama-3-70b-production"), stack_file(repo, "llama-copy"))
    _, out, _ = run_diff(repo, "llama-copy")
    lines = blocks(out)["What the new stack deploys:"]
    assert lines[1].startswith("image: docker.io/vllm/vllm-openai:v")  # the pinned default tag
    assert lines[:1] + lines[2:] == [
        "model: llama-3-70b, from Hugging Face meta-llama/Llama-3.1-70B-Instruct at the default branch (no revision pinned)",
        "GPUs: 4 (1 replica × 4 GPUs)",
        "autoscaled by ScaledObject: up to 3 replicas, 12 GPUs",
        "volume: new claim llama-3-70b-model: 300Gi, ReadWriteMany, cephfs",
        "exposure: Service ClusterIP, Ingress llama-70b.example.com; outside the cluster at https://llama-70b.example.com/v1",
    ]
    # A changed stack gets no such block: its changes say what moves.
    edit_stack(repo, "codellama-7b", lambda config: config["vllm-serving:resources"]["limits"].update(cpu=6))
    assert "What the new stack deploys" not in run_diff(repo, "codellama-7b")[1]


def test_a_stack_deleted_in_the_working_tree_is_all_removed(repo):
    stack_file(repo, "qwen-git").unlink()
    code, out, _ = run_diff(repo, "qwen-git")

    assert code == 1
    assert "(Pulumi.qwen-git.yaml does not exist in the working tree)" in out
    assert all(heading.startswith("- ") for heading in list(blocks(out))[:-1])


def test_invalid_config_in_the_working_tree_is_an_error(repo):
    edit_stack(repo, "codellama-7b", lambda config: config.update({"vllm-serving:replicaCount": -1}))
    code, out, err = run_diff(repo, "codellama-7b")

    assert (code, out) == (2, "")
    assert err.startswith("error: in the working tree: invalid stack config")
    assert "vllm-serving:replicaCount:" in err


def test_a_rename_is_the_error_pulumi_preview_will_give(repo):
    edit_stack(repo, "codellama-7b", lambda config: config["vllm-serving:model"].update(deployName="codellama-instruct"))
    code, out, err = run_diff(repo, "codellama-7b")

    assert (code, out) == (2, "")
    assert err.startswith("error: in the working tree: invalid stack config (1 problem):\n"
                          "  vllm-serving:model.deployName: 'codellama-instruct' renames the model this stack "
                          "deployed as 'codellama-7b'")
    assert "rename in two steps: `pulumi destroy`" in err


def test_invalid_config_at_the_base_is_an_error(repo):
    original = stack_file(repo, "codellama-7b").read_text()
    edit_stack(repo, "codellama-7b", lambda config: config.update({"vllm-serving:replicaCount": -1}))
    git(repo, "commit", "-q", "-am", "broken")
    stack_file(repo, "codellama-7b").write_text(original)
    code, out, err = run_diff(repo, "codellama-7b")

    assert (code, out) == (2, "")
    assert err.startswith("error: at HEAD: invalid stack config")
    assert "vllm-serving:replicaCount:" in err


def test_an_unknown_revision_is_an_error(repo):
    code, out, err = run_diff(repo, "codellama-7b", base="no-such-branch")

    assert (code, out, err) == (2, "", "error: unknown git revision 'no-such-branch'\n")


def test_a_stack_at_neither_revision_is_an_error(repo):
    code, out, err = run_diff(repo, "no-such-stack")

    assert (code, out) == (2, "")
    assert err == f"error: no stack config file at {stack_file(repo, 'no-such-stack')}\n"


def test_a_stack_outside_a_git_repository_is_an_error(tmp_path, repo):
    outside = tmp_path / "elsewhere" / "Pulumi.solo.yaml"
    outside.parent.mkdir()
    shutil.copy(stack_file(repo, "codellama-7b"), outside)
    err = io.StringIO()
    code = diff.run(str(outside), "HEAD", out=io.StringIO(), err=err)

    assert code == 2
    assert err.getvalue().startswith(f"error: {outside.parent} is not in a git repository")


def test_a_crash_is_an_error_not_a_change(repo, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("the program broke")

    monkeypatch.setattr("vllm_serving.render.render", crash)
    code, out, err = run_diff(repo, "codellama-7b")

    # Exit status 1 would tell CI "something changed".
    assert (code, out) == (2, "")
    assert "RuntimeError: the program broke" in err


def test_a_base_too_old_for_json_rendering_says_so():
    error = diff._base_error("v0.1", "usage: ...\nvllm-serving: error: unrecognized arguments: --format json\n")

    assert "the code at v0.1 predates `vllm-serving render --format json`" in str(error)


def test_a_namespace_change_replaces_every_object_and_changes_the_endpoint(repo):
    edit_stack(repo, "codellama-7b", lambda config: config.update({"vllm-serving:namespace": "llm"}))
    code, out, _ = run_diff(repo, "codellama-7b")

    assert code == 1
    kubernetes = [(h, lines) for h, lines in blocks(out).items() if "(pulumi: " in h]
    assert kubernetes and all(h.startswith("+- ") for h, _ in kubernetes)
    # A new namespace is a new object that can exist beside the old one: created first.
    assert all(lines[0].startswith("replace: create the new ") for _, lines in kubernetes)
    _, outputs = block(out, "Outputs:")
    assert (
        '~ endpoint: "http://codellama-7b.default.svc.cluster.local:8000" → '
        '"http://codellama-7b.llm.svc.cluster.local:8000"'
    ) in outputs


def test_the_base_revision_renders_with_its_own_code(repo):
    # The base changes the program; the working tree renders with the code running here.
    labels = repo / "components" / "labels.py"
    labels.write_text(labels.read_text().replace('PART_OF = "vllm-serving"', 'PART_OF = "vllm-serving-old"'))
    git(repo, "commit", "-q", "-am", "older labels")
    code, out, _ = run_diff(repo, "codellama-7b")

    assert code == 1
    _, lines = block(out, "~ Service default/codellama-7b ")
    assert lines == ['~ metadata.labels["app.kubernetes.io/part-of"]: "vllm-serving-old" → "vllm-serving"']


# --- what a change does, on renderings edited by hand -----------------------------------------


def rendering(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return rendering_as_json(render_values(values or {"model": HF_MODEL}))


def resource(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in data["resources"] if (r["manifest"] or {}).get("kind") == kind)


def compare_edited(edit: Callable[[dict[str, Any]], None], before: dict[str, Any] | None = None):
    old = before or rendering()
    new = copy.deepcopy(old)
    edit(new)
    return compare("test", diff._side("base", old), diff._side("working tree", new))


def only_change(report):
    assert len(report.resources) == 1, render_text(report)
    return report.resources[0]


def effects(change) -> list[str]:
    return [effect.kind for field in change.fields for effect in field.effects]


def test_a_service_cluster_ip_change_replaces_the_service():
    report = compare_edited(lambda new: resource(new, "Service")["manifest"]["spec"].update(clusterIP="None"))

    change = only_change(report)
    assert (change.action, effects(change), change.delete_first) == (REPLACE, [REPLACE], True)


def test_a_deployment_selector_change_replaces_it_and_restarts_the_server():
    def edit(new):
        resource(new, "Deployment")["manifest"]["spec"]["selector"]["matchLabels"]["tier"] = "gpu"

    change = only_change(compare_edited(edit))
    assert change.action == REPLACE and change.restarts
    # Same name: deleted first, so the Recreate strategy plays no part; the server is simply down.
    assert "restarts the server pods: the server is down until the new pods are ready" in render_text(
        compare_edited(edit)
    )


def test_a_template_update_under_recreate_says_the_pods_stop_first():
    def edit(new):
        resource(new, "Deployment")["manifest"]["spec"]["template"]["metadata"]["labels"]["tier"] = "gpu"

    text = render_text(compare_edited(edit))
    assert "restarts the server pods: every server pod stops before the new ones start" in text


def test_a_template_update_rolling_one_at_a_time_says_so():
    shared = {**HF_MODEL, "volume": {**HF_MODEL["volume"], "accessModes": ["ReadWriteMany"]}}

    def edit(new):
        resource(new, "Deployment")["manifest"]["spec"]["template"]["metadata"]["labels"]["tier"] = "gpu"

    text = render_text(compare_edited(edit, rendering({"model": shared, "replicaCount": 2})))
    assert "restarts the server pods: one at a time, each stopping before its replacement starts" in text


@pytest.mark.parametrize(("immutable", "why"), [(True, "immutable: true"), (None, "enableConfigMapMutable")])
def test_a_configmap_data_change_replaces_it(immutable, why):
    old = rendering()
    resource(old, "ConfigMap")["manifest"]["immutable"] = immutable
    report = compare_edited(lambda new: resource(new, "ConfigMap")["manifest"]["data"].update(extra="x"), old)

    change = only_change(report)
    assert change.action == REPLACE
    assert why in change.fields[0].effects[0].why


def test_a_job_field_outside_the_replacement_table_updates_in_place():
    # pulumi-kubernetes replaces a Job for template, selector, completions and parallelism only.
    change = only_change(compare_edited(lambda new: resource(new, "Job")["manifest"]["spec"].update(backoffLimit=9)))
    assert (change.action, effects(change)) == ("update", [])


@pytest.mark.parametrize(
    "edit",
    [
        lambda spec: spec["resources"]["requests"].update(storage="12Gi"),
        lambda spec: spec.update(volumeMode="Block"),
    ],
    ids=["shrink", "volumeMode"],
)
def test_a_claim_change_that_kubernetes_refuses_is_flagged(edit):
    report = compare_edited(lambda new: edit(resource(new, "PersistentVolumeClaim")["manifest"]["spec"]))

    change = only_change(report)
    assert (change.action, effects(change)) == ("update", [REFUSED])
    assert report.summary() == "1 to change; Kubernetes will refuse a change"


def test_growing_a_claim_updates_it_in_place_with_a_note():
    report = compare_edited(
        lambda new: resource(new, "PersistentVolumeClaim")["manifest"]["spec"]["resources"]["requests"].update(
            storage="48Gi"
        )
    )

    assert only_change(report).action == "update"
    assert "(grows in place only if the claim's StorageClass sets allowVolumeExpansion)" in render_text(report)


def test_a_replaced_claim_shows_no_note_on_growing_in_place():
    def edit(new):
        spec = resource(new, "PersistentVolumeClaim")["manifest"]["spec"]
        spec.update(accessModes=["ReadWriteMany"])
        spec["resources"]["requests"]["storage"] = "48Gi"

    text = render_text(compare_edited(edit))
    assert '~ spec.resources.requests.storage: "24Gi" → "48Gi"' in text
    assert "allowVolumeExpansion" not in text


def server_env(data: dict[str, Any]) -> list[dict[str, Any]]:
    return resource(data, "Deployment")["manifest"]["spec"]["template"]["spec"]["containers"][0]["env"]


def test_list_entries_with_names_are_matched_by_name():
    report = compare_edited(lambda new: server_env(new).insert(0, {"name": "FIRST", "value": "1"}))

    field_lines = [line.strip() for line in render_text(report).splitlines() if line.strip().startswith(("+", "~", "-"))]
    assert field_lines[1:] == [
        '+ spec.template.spec.containers[vllm].env[FIRST].name: "FIRST"  [restart]',
        '+ spec.template.spec.containers[vllm].env[FIRST].value: "1"  [restart]',
    ]


def test_reordered_entries_show_as_an_order_change():
    old = rendering({"model": HF_MODEL, "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]})
    report = compare_edited(lambda new: server_env(new).reverse(), old)

    change = only_change(report)
    assert [(diff.render_path(f.path), f.old, f.new) for f in change.fields] == [
        (
            "spec.template.spec.containers[vllm].env (order)",
            ["HF_HUB_OFFLINE", "VLLM_NO_USAGE_STATS", "DO_NOT_TRACK", "A", "B", "PYTHONPATH", "VLLM_SERVING_SURFACE"],
            ["VLLM_SERVING_SURFACE", "PYTHONPATH", "B", "A", "DO_NOT_TRACK", "VLLM_NO_USAGE_STATS", "HF_HUB_OFFLINE"],
        )
    ]
    assert effects(change) == [RESTART]


def test_a_protected_resource_is_flagged_before_it_is_replaced_or_deleted():
    old = rendering()
    resource(old, "PersistentVolumeClaim")["options"]["protect"] = True
    replaced = compare_edited(
        lambda new: resource(new, "PersistentVolumeClaim")["manifest"]["spec"].update(accessModes=["ReadWriteMany"]),
        old,
    )
    deleted = compare_edited(lambda new: new["resources"].remove(resource(new, "PersistentVolumeClaim")), old)

    def unprotect_and_replace(new):
        claim = resource(new, "PersistentVolumeClaim")
        claim["options"]["protect"] = False
        claim["manifest"]["spec"].update(accessModes=["ReadWriteMany"])

    opted_in = compare_edited(unprotect_and_replace, old)

    assert "protected: `pulumi up` refuses to replace it until `protect` is lifted" in render_text(replaced)
    assert "protected: `pulumi up` refuses to delete it until `protect` is lifted" in render_text(deleted)
    # Pulumi lets one update lift protect and replace together.
    assert "protected" not in render_text(opted_in) and only_change(opted_in).action == REPLACE


def test_the_delete_before_replace_option_deletes_first_even_under_a_new_name():
    def edit(new):
        job = resource(new, "Job")
        job["manifest"]["metadata"]["name"] += "-next"
        job["options"]["deleteBeforeReplace"] = True

    change = only_change(compare_edited(edit))
    assert change.action == REPLACE and change.delete_first


def test_the_replace_on_changes_option_replaces():
    def edit(new):
        service = resource(new, "Service")
        service["options"]["replaceOnChanges"] = ["spec.type"]
        service["manifest"]["spec"]["type"] = "NodePort"

    assert only_change(compare_edited(edit)).action == REPLACE


def test_option_and_output_changes_are_changes():
    def edit(new):
        resource(new, "Job")["options"]["customTimeouts"]["create"] = "300m"
        new["outputs"]["servedModelName"] = "renamed"

    report = compare_edited(edit)
    text = render_text(report)
    assert report.changed and report.summary() == "1 to change; outputs change"
    assert '~ options.customTimeouts.create: "240m" → "300m"' in text
    assert 'Outputs:\n    ~ servedModelName: "codellama-7b" → "renamed"' in text


def test_a_multi_line_value_shows_as_a_line_diff():
    def edit(new):
        data = resource(new, "ConfigMap")["manifest"]["data"]
        data["job.sh"] = data["job.sh"].replace("\n", "\n# a new comment\n", 1)

    text = render_text(compare_edited(edit))
    assert '~ data["job.sh"]:  [replace]' in text
    assert "\n        +# a new comment\n" in text


def test_an_added_multi_line_value_shows_its_first_line_and_length():
    text = render_text(compare_edited(lambda new: resource(new, "ConfigMap")["manifest"]["data"].update(
        {"new.sh": "#!/bin/sh\nset -eu\necho hi\n"}
    )))
    assert '+ data["new.sh"]: "#!/bin/sh"… (3 lines)  [replace]' in text


def test_a_long_value_shows_old_above_new_unquoted():
    long_old, long_new = "x" * 100 + ' "a" end', "x" * 100 + ' "b" end'

    def edit(data, value):
        resource(data, "Deployment")["manifest"]["spec"]["template"]["spec"]["containers"][0]["args"][0] = value

    old = rendering()
    edit(old, long_old)
    text = render_text(compare_edited(lambda new: edit(new, long_new), old))
    assert f"~ spec.template.spec.containers[vllm].args[0]:  [restart]\n        - {long_old}\n        + {long_new}\n" in text


def test_a_boolean_turned_number_is_a_change():
    assert [(c.old, c.new) for c in diff.diff_values({"a": True}, {"a": 1})] == [(True, 1)]


def test_markdown_puts_the_summary_in_a_heading_and_the_changes_in_a_fence():
    report = compare_edited(lambda new: resource(new, "Deployment")["manifest"]["spec"].update(replicas=2))
    unchanged = compare_edited(lambda _new: None)

    assert render_markdown(report) == (
        "#### Stack `test`: 1 to change\n<sub>base → working tree</sub>\n\n"
        "```text\n~ Deployment default/codellama-7b  (pulumi: codellama-7b-server-deployment)\n"
        "    ~ spec.replicas: 1 → 2\n```\n"
    )
    assert render_markdown(unchanged) == "#### Stack `test`: no changes\n<sub>base → working tree</sub>\n"


def test_markdown_fences_outlast_backticks_in_the_values():
    report = compare_edited(lambda new: new["outputs"].update(note="```"))

    assert "\n````text\n" in render_markdown(report) and render_markdown(report).endswith("\n````\n")


def test_an_empty_side_is_labelled():
    text = render_text(compare("test", Side("base", {}, {}, absent="gone at base"), Side("working tree", {}, {})))
    assert text == "stack test: base → working tree\nno changes\n(gone at base)\n"


def test_a_rotated_api_key_restarts_the_server_pods_without_showing_the_key(repo):
    def set_key(ciphertext):
        return lambda config: config.update({"vllm-serving:apiKey": {"secure": ciphertext}})

    edit_stack(repo, "codellama-7b", set_key("v1:AAAAkeyone"))
    git(repo, "commit", "-q", "-am", "an API key")
    edit_stack(repo, "codellama-7b", set_key("v1:BBBBkeytwo"))
    code, out, _ = run_diff(repo, "codellama-7b")

    assert code == 1
    # Offline the key is unknown: the stack file's ciphertext stands for it, by a checksum. (The
    # Secret is replaced: pulumi-kubernetes replaces a Secret whose data changes.)
    assert out.splitlines()[1] == "2 to change (1 replace); server pods restart"
    _, lines = block(out, "~ Deployment default/codellama-7b ")
    assert lines[0].startswith("restarts the server pods")
    assert any("vllm-serving/api-key-checksum" in line and line.endswith("[restart]") for line in lines)
    assert "v1:AAAAkeyone" not in out and "v1:BBBBkeytwo" not in out
    _, lines = block(out, "+- Secret default/codellama-7b-api-key ")
    assert re.fullmatch(r'~ stringData\.apiKey: "\[secret [0-9a-f]{12}\]" → "\[secret [0-9a-f]{12}\]"  \[replace\]', lines[-1])


def test_a_changed_secret_env_value_restarts_the_server_pods(repo):
    def set_proxy(ciphertext):
        def edit(config):
            # The example sets no env (its proxy is a comment): give it a secret one.
            config["vllm-serving:env"] = [{"name": "HTTPS_PROXY", "value": {"secure": ciphertext}}]
        return edit

    edit_stack(repo, "codellama-7b", set_proxy("v1:AAAAproxy"))
    git(repo, "commit", "-q", "-am", "a secret proxy")
    edit_stack(repo, "codellama-7b", set_proxy("v1:BBBBproxy"))
    code, out, _ = run_diff(repo, "codellama-7b")

    assert code == 1
    assert "server pods restart" in out.splitlines()[1]
    assert "v1:AAAAproxy" not in out and "v1:BBBBproxy" not in out
    _, lines = block(out, "~ Deployment default/codellama-7b ")
    assert any("vllm-serving/env-checksum" in line and line.endswith("[restart]") for line in lines)


def test_a_group_template_change_restarts_the_groups_and_a_replica_change_does_not(repo):
    def edit(config: dict[str, Any]) -> None:
        config["vllm-serving:replicaCount"] = 2
        config["vllm-serving:engine"]["maxModelLen"] = 16384

    edit_stack(repo, "llama-3-1-405b-multinode", edit)
    code, out, _ = run_diff(repo, "llama-3-1-405b-multinode")

    assert code == 1
    _, lines = block(out, "~ LeaderWorkerSet llm/llama-3-1-405b-group ")
    changed = [line for line in lines if line.startswith("~ ")]
    assert "~ spec.replicas: 1 → 2" in changed
    template_lines = [line for line in changed if line.startswith("~ spec.leaderWorkerTemplate.")]
    assert template_lines and all(line.endswith("[restart]") for line in template_lines)


# --- several stacks in one run -----------------------------------------------------------------


def test_several_stacks_diff_in_one_run_with_one_base_process_and_the_worst_status(repo, monkeypatch):
    edit_stack(repo, "llama-3-8b-existing-claim", lambda config: config.update({"vllm-serving:replicaCount": 3}))
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def recording_popen(command, **kwargs):
        started.append(command)
        return real_popen(command, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    out, err = io.StringIO(), io.StringIO()
    stacks = [str(stack_file(repo, name)) for name in ("codellama-7b", "llama-3-8b-existing-claim", "no-such-stack")]
    code = diff.run_many(stacks, "HEAD", "markdown", out=out, err=err)

    assert code == 2  # the worst: one stack could not be diffed
    renders = [command for command in started if "render" in command]
    assert len(renders) == 1 and renders[0].count("--format") == 1
    # The stack missing everywhere is reported without being sent to the base.
    assert [Path(c).name for c in renders[0] if c.endswith(".yaml")] == [
        "Pulumi.codellama-7b.yaml", "Pulumi.llama-3-8b-existing-claim.yaml"
    ]
    text = out.getvalue()
    assert "#### Stack `codellama-7b`: no changes" in text
    assert "#### Stack `llama-3-8b-existing-claim`: 1 to change" in text and "~ spec.replicas: 2 → 3" in text
    assert "#### Stack `no-such-stack`: error" in text
    assert "error: stack no-such-stack: no stack config file at" in err.getvalue()


def test_a_base_whose_render_takes_one_stack_is_rendered_once_per_stack(repo):
    # The base's render accepts one positional stack only, as before batches existed.
    cli_file = repo / "vllm_serving" / "cli.py"
    source = cli_file.read_text()
    assert 'nargs="*"' in source
    cli_file.write_text(source.replace('"stack", nargs="*",', '"stack", nargs=1,'))
    git(repo, "commit", "-q", "-am", "render takes one stack")
    edit_stack(repo, "llama-3-8b-existing-claim", lambda config: config.update({"vllm-serving:replicaCount": 3}))
    out, err = io.StringIO(), io.StringIO()
    names = ("codellama-7b", "llama-3-8b-existing-claim")
    code = diff.run_many([str(stack_file(repo, name)) for name in names], "HEAD", out=out, err=err)

    assert code == 1, err.getvalue()
    assert out.getvalue().startswith("stack codellama-7b: HEAD (")
    assert "\nstack llama-3-8b-existing-claim: HEAD (" in out.getvalue()
    assert "~ spec.replicas: 2 → 3" in out.getvalue()


# --- a base whose code is the code running here ------------------------------------------------


def recorded_renders(monkeypatch) -> tuple[list[list[str]], list[str]]:
    """The base subprocesses started, and the stack files rendered in this process."""
    started: list[list[str]] = []
    here: list[str] = []
    real_popen, real_render = subprocess.Popen, render_module.render

    def recording_popen(command, **kwargs):
        started.append(command)
        return real_popen(command, **kwargs)

    def recording_render(stack_file, *args, **kwargs):
        here.append(Path(stack_file).name)
        return real_render(stack_file, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    monkeypatch.setattr(render_module, "render", recording_render)
    return started, here


def test_a_base_with_this_very_code_renders_in_this_process_with_the_same_report(repo, monkeypatch):
    edit_stack(repo, "llama-3-8b-existing-claim", lambda config: config.update({"vllm-serving:replicaCount": 3}))
    names = ("codellama-7b", "llama-3-8b-existing-claim", "llama-3-70b-production")
    stacks = [str(stack_file(repo, name)) for name in names]
    by_subprocess = io.StringIO()
    assert diff.run_many(stacks, "HEAD", "markdown", out=by_subprocess, err=io.StringIO()) == 1

    same_code_as(monkeypatch, repo)
    started, here = recorded_renders(monkeypatch)
    in_process = io.StringIO()
    code = diff.run_many(stacks, "HEAD", "markdown", out=in_process, err=io.StringIO())

    assert code == 1
    assert in_process.getvalue() == by_subprocess.getvalue()
    assert [c for c in started if "render" in c] == []  # no subprocess imports Pulumi again
    # The unchanged stacks render once for both sides, the edited one twice.
    assert sorted(here) == sorted(
        ["Pulumi.codellama-7b.yaml", "Pulumi.llama-3-70b-production.yaml", *["Pulumi.llama-3-8b-existing-claim.yaml"] * 2]
    )


def test_a_base_whose_code_differs_from_this_code_still_renders_by_its_own(repo, monkeypatch):
    same_code_as(monkeypatch, repo)
    labels = repo / "components" / "labels.py"
    labels.write_text(labels.read_text().replace('PART_OF = "vllm-serving"', 'PART_OF = "vllm-serving-old"'))
    git(repo, "commit", "-q", "-am", "older labels")
    labels.write_text(labels.read_text().replace('PART_OF = "vllm-serving-old"', 'PART_OF = "vllm-serving"'))
    started, _ = recorded_renders(monkeypatch)
    code, out, _ = run_diff(repo, "codellama-7b")

    assert code == 1
    assert len([c for c in started if "render" in c]) == 1
    _, lines = block(out, "~ Service default/codellama-7b ")
    assert lines == ['~ metadata.labels["app.kubernetes.io/part-of"]: "vllm-serving-old" → "vllm-serving"']


def test_a_base_that_fails_in_this_process_reports_its_own_codes_message(repo, monkeypatch):
    original = stack_file(repo, "codellama-7b").read_text()
    edit_stack(repo, "codellama-7b", lambda config: config.update({"vllm-serving:replicaCount": -1}))
    git(repo, "commit", "-q", "-am", "broken")
    stack_file(repo, "codellama-7b").write_text(original)
    expected = run_diff(repo, "codellama-7b")

    same_code_as(monkeypatch, repo)
    started, _ = recorded_renders(monkeypatch)

    assert run_diff(repo, "codellama-7b") == expected
    assert expected[0] == 2 and expected[2].startswith("error: at HEAD: invalid stack config")
    assert len([c for c in started if "render" in c]) == 1  # the base's own code, for its message


def test_same_code_compares_every_file_but_the_stack_files(repo):
    head = git(repo, "rev-parse", "HEAD").strip()
    assert same_code.base_tree(repo, head, repo) == REAL_RUNNING_TREE(repo)
    edit_stack(repo, "codellama-7b", lambda config: config.update({"vllm-serving:replicaCount": 3}))
    assert same_code.base_tree(repo, head, repo) == REAL_RUNNING_TREE(repo)

    (repo / "components" / "new_module.py").write_text("")  # untracked, not ignored: it may be imported
    assert same_code.base_tree(repo, head, repo) != REAL_RUNNING_TREE(repo)
    (repo / "components" / "new_module.py").unlink()
    (repo / "README.md").write_text("changed")
    assert same_code.base_tree(repo, head, repo) != REAL_RUNNING_TREE(repo)
    (repo / "README.md").unlink()  # a file deleted from the working tree is not there
    assert same_code.base_tree(repo, head, repo) != REAL_RUNNING_TREE(repo)
    (repo / "link").symlink_to("components")
    assert REAL_RUNNING_TREE(repo) is None


# --- diff --validate -------------------------------------------------------------------------


def test_diff_validate_checks_the_working_trees_manifests_from_the_same_rendering(repo, monkeypatch):
    edit_stack(repo, "codellama-7b", lambda config: config.update({"vllm-serving:replicaCount": 0}))
    _, here = recorded_renders(monkeypatch)
    out, err = io.StringIO(), io.StringIO()
    code = diff.run_many([str(stack_file(repo, "codellama-7b"))], "HEAD", out=out, err=err, validate=True)

    assert code == 1  # changed, and valid
    assert here == ["Pulumi.codellama-7b.yaml"]  # the working tree, rendered once for both
    # The download scripts' and the allow-list's ConfigMaps among them.
    assert "validated 6 manifests against the Kubernetes 1.29–1.35 schemas: all valid" in err.getvalue()


def test_diff_validate_reports_a_violation_in_the_stacks_section_and_exits_2(repo, monkeypatch):
    real = render_module.rendering_as_json

    def with_a_bad_field(rendering):
        document = real(rendering)
        for resource in document["resources"]:
            if (resource["manifest"] or {}).get("kind") == "Deployment":
                resource["manifest"]["spec"]["replicaz"] = 1
        return document

    monkeypatch.setattr(render_module, "rendering_as_json", with_a_bad_field)
    stacks = [str(stack_file(repo, name)) for name in ("codellama-7b", "mistral-s3")]
    out, err = io.StringIO(), io.StringIO()
    code = diff.run_many(stacks, "HEAD", "markdown", out=out, err=err, validate=True)

    assert code == 2
    violation = "Deployment/codellama-7b (Kubernetes 1.29.0): spec: Additional properties are not allowed"
    assert f"stack codellama-7b: {violation}" in err.getvalue()
    section = out.getvalue().split("#### Stack `mistral-s3`")[0]
    assert "Schema violations of the working tree's manifests (`--validate`):" in section and violation in section
    assert cli.build_parser("diff").parse_args(["diff", "x", "--validate"]).validate


def test_the_model_change_example_of_docs_ci_is_what_diff_prints(repo, monkeypatch):
    """docs/ci.md shows a real run; only the Job's name hash and the commit may differ (they move
    with the scripts and the history, not with what the example is about)."""
    same_code_as(monkeypatch, repo)
    edit_stack(repo, "codellama-7b", lambda config: config["vllm-serving:model"]["huggingface"].update(
        id="codellama/CodeLlama-13b-Instruct-hf"))
    _, out, _ = run_diff(repo, "codellama-7b")
    text = (PROJECT_ROOT / "docs" / "ci.md").read_text()
    start = text.index("$ vllm-serving diff codellama-7b --base origin/main\n")
    documented = text[start:text.index("```", start)].split("\n", 1)[1]

    def shape(report: str) -> str:
        report = re.sub(r"download-[0-9a-f]{8}\b", "download-<hash>", report)
        return re.sub(r"^stack (\S+): \S+ \([0-9a-f]{7}\)", r"stack \1: BASE", report)

    assert shape(out) == shape(documented)


@pytest.mark.parametrize(("stack", "expected"), [
    ("llama-3-8b-existing-claim", ["model: llama-3-8b, no download: already on the volume",
                                   "GPUs: 2 (2 replicas × 1 GPU)",
                                   "volume: the existing claim shared-models (not created by this stack)"]),
    ("qwen-git", ["model: qwen2-5-7b, from git https://git.example.internal/models/Qwen2.5-7B-Instruct.git at v1.0.0",
                  "volume: new claim qwen2-5-7b-model: 40Gi, ReadWriteOnce, fast-ssd"]),
    ("llama-3-1-405b-multinode", ["GPUs: 16 (1 replica × 2 pods × 8 GPUs)"]),
])
def test_the_overview_of_each_kind_of_stack(stack, expected):
    from vllm_serving.diff.model import side_from_rendering
    from vllm_serving.diff.overview import overview
    from vllm_serving.render import render
    from vllm_serving.stack_file import STACKS_DIR

    lines = overview(side_from_rendering("working tree", rendering_as_json(render(STACKS_DIR / f"Pulumi.{stack}.yaml"))))
    assert set(expected) <= set(lines), lines
