"""`vllm-serving import-values`: chart values files in, stack files out, meaning kept."""

from __future__ import annotations

import posixpath
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import DEFAULT_GIT_IMAGE, DEFAULT_S3_IMAGE, DEFAULT_VLLM_TAG
from tests.conftest import stack_file_values
from vllm_serving.cli import main
from vllm_serving.manifests import normalize
from vllm_serving.render import Rendering, render
from vllm_serving.stack_file import PROJECT_ROOT

FIXTURES = Path(__file__).parent / "fixtures" / "chart-values"
CHART_README = PROJECT_ROOT.parent / "shared" / "reference" / "vllm-chart-README.en.md"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["import-values", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def import_fixture(capsys, tmp_path: Path, name: str, stack: str = "imported", *extra: str) -> tuple[int, str, Path]:
    code, _, err = run(capsys, str(FIXTURES / name), "--stack", stack, "--stacks-dir", str(tmp_path), *extra)
    return code, err, tmp_path / f"Pulumi.{stack}.yaml"


def container(rendering: Rendering, kind: str, name: str) -> dict[str, Any]:
    spec = normalize(rendering.one(kind).inputs)["spec"]["template"]["spec"]
    return next(c for c in spec.get("containers", []) + spec.get("initContainers", []) if c["name"] == name)


def env_of(spec: dict[str, Any]) -> dict[str, Any]:
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in spec.get("env", [])}


def volume_dir(spec: dict[str, Any], path: str) -> str:
    """Where in the model volume a container's `path` is, through its mount (and the mount's subPath)."""
    mount = next(m for m in spec["volumeMounts"] if m["name"] == "model")
    inside = posixpath.relpath(path, mount["mountPath"])
    return posixpath.normpath(posixpath.join(mount.get("subPath", ""), inside))


def in_directory(path: str, directory: str) -> bool:
    # The model may sit in a per-source directory below the configured subPath.
    return path == directory or path.startswith(directory + "/")


# --- the chart README's own example -----------------------------------------------------------


def test_codellama_fixture_is_the_chart_readmes_example_verbatim():
    if not CHART_README.is_file():
        pytest.skip(f"no chart README at {CHART_README}")
    text = CHART_README.read_text()
    found = re.search(r"## Example: serve CodeLlama.*?```yaml\n(.*?)```", text, re.S)
    assert found is not None, f"{CHART_README} has no CodeLlama example"
    example = found.group(1)
    assert (FIXTURES / "codellama.yaml").read_text() == example


def test_chart_example_imports_with_the_charts_meaning(capsys, tmp_path):
    code, err, stack_file = import_fixture(capsys, tmp_path, "codellama.yaml", "codellama-7b")
    assert code == 0, err
    assert "not carried over" not in err
    assert stack_file.read_text().startswith(
        f"# Imported by `vllm-serving import-values` from the T9k vLLM chart values file {FIXTURES / 'codellama.yaml'}."
    )

    rendering = render(stack_file)
    pvc = normalize(rendering.one("PersistentVolumeClaim").inputs)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "24Gi"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    # The chart's storageClass "" is the cluster default, which a stack expresses by leaving it out.
    assert "storageClassName" not in pvc["spec"]

    download = container(rendering, "Job", "download")
    assert env_of(download)["SOURCE"] == "huggingface"
    assert env_of(download)["HF_MODEL_ID"] == "codellama/CodeLlama-7b-Instruct-hf"
    downloaded_to = volume_dir(download, env_of(download)["MODEL_DIR"])
    assert in_directory(downloaded_to, "CodeLlama-7b-Instruct-hf")

    server = container(rendering, "Deployment", "vllm")
    assert server["image"] == "docker.io/vllm/vllm-openai:v0.3.3"
    assert server["imagePullPolicy"] == "IfNotPresent"
    assert server["resources"]["limits"] == {"cpu": "4", "memory": "64Gi", "nvidia.com/gpu": "1"}
    model_arg = next(arg for arg in server["args"] if arg.startswith("--model="))
    # The server loads exactly the directory the download filled.
    assert volume_dir(server, model_arg.removeprefix("--model=")) == downloaded_to
    # The chart example's proxy placeholders are left out: nothing deploys `<YOUR_HTTP_PROXY>`.
    assert "HTTP_PROXY" not in env_of(server) and "HTTPS_PROXY" not in env_of(server)
    assert "--served-model-name=codellama-7b" in server["args"]
    assert normalize(rendering.one("Deployment").inputs)["spec"]["replicas"] == 1
    assert rendering.outputs["servedModelName"] == "codellama-7b"


def test_chart_tag_is_kept_with_a_note_recommending_the_pinned_default(capsys, tmp_path):
    code, err, stack_file = import_fixture(capsys, tmp_path, "codellama.yaml")
    assert code == 0, err
    assert stack_file_values(stack_file)["image"]["tag"] == "v0.3.3"
    assert re.search(rf"note: image.tag 'v0.3.3' is carried over as given.*{re.escape(DEFAULT_VLLM_TAG)}", err)


def test_chart_example_placeholders_are_left_out_and_listed(capsys, tmp_path):
    code, err, stack_file = import_fixture(capsys, tmp_path, "codellama.yaml")
    assert code == 0, err
    assert "left out: env[0] (HTTP_PROXY): '<YOUR_HTTP_PROXY>' is a placeholder" in err
    assert "left out: env[1] (HTTPS_PROXY): '<YOUR_HTTPS_PROXY>' is a placeholder" in err
    # Both entries were placeholders: no `env` key is left at all.
    assert "env" not in stack_file_values(stack_file)
    assert "<YOUR_" not in "".join(line for line in stack_file.read_text().splitlines() if not line.startswith("#"))


def test_a_placeholder_anywhere_is_left_out_and_real_entries_kept(capsys, tmp_path):
    values = yaml.safe_load((FIXTURES / "codellama.yaml").read_text())
    values["env"].append({"name": "NO_PROXY", "value": ".svc,.cluster.local"})
    values["model"]["huggingface"]["existingSecret"] = "<YOUR_SECRET>"
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    code, _, err = run(capsys, str(tmp_path / "values.yaml"), "--stack", "x", "--stacks-dir", str(tmp_path))
    assert code == 0, err
    config = stack_file_values(tmp_path / "Pulumi.x.yaml")
    assert config["env"] == [{"name": "NO_PROXY", "value": ".svc,.cluster.local"}]
    assert "existingSecret" not in config["model"]["huggingface"]
    assert "left out: model.huggingface.existingSecret: '<YOUR_SECRET>' is a placeholder" in err


def test_a_missing_model_size_is_a_warning_in_the_output_and_the_file(capsys, tmp_path):
    code, err, stack_file = import_fixture(capsys, tmp_path, "codellama.yaml")
    assert code == 0, err
    assert "warning: model.size is not set" in err and "vllm-serving:model.size" in err
    assert "# Before deploying:\n#   model.size is not set" in stack_file.read_text()


def test_written_file_has_the_hand_written_stack_layout(capsys, tmp_path):
    code, err, stack_file = import_fixture(capsys, tmp_path, "codellama.yaml")
    assert code == 0, err
    text = stack_file.read_text()
    assert '      storageClass: ""\n' in text
    assert "      accessModes:\n        - ReadWriteOnce\n" in text
    assert "  vllm-serving:replicaCount: 1\n" in text
    # Everything the user set explicitly is kept, including values equal to the chart's defaults.
    assert stack_file_values(stack_file)["model"]["huggingface"] == {
        "id": "codellama/CodeLlama-7b-Instruct-hf", "files": "", "existingSecret": ""
    }


# --- defaults that differ ---------------------------------------------------------------------


def test_missing_tag_means_the_charts_default_not_this_projects(capsys, tmp_path):
    # s3.yaml sets no image at all: the chart release it came from ran v0.3.3.
    code, err, stack_file = import_fixture(capsys, tmp_path, "s3.yaml")
    assert code == 0, err
    assert stack_file_values(stack_file)["image"] == {"tag": "v0.3.3"}
    assert "note: image.tag is not set: the chart's default 'v0.3.3' is written out" in err
    assert "Notes:\n#   image.tag is not set" in stack_file.read_text()


def test_the_projects_pinned_tag_needs_no_note(capsys, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(
        f"image:\n  tag: {DEFAULT_VLLM_TAG}\nmodel:\n  deployName: m\n  source: huggingface\n"
        "  huggingface:\n    id: org/model\n"
    )
    code, _, err = run(capsys, str(values), "--stack", "m", "--stacks-dir", str(tmp_path))
    assert code == 0, err
    assert "image.tag" not in err


def test_null_leaves_mean_the_charts_default(capsys, tmp_path):
    # Helm drops nulls from values; a null here must not reach the schema as None.
    values = tmp_path / "values.yaml"
    values.write_text(
        "model:\n  deployName: m\n  volume:\n    storageClass:\n    existingClaim: null\n"
        "  source: huggingface\n  huggingface:\n    id: org/model\n"
    )
    code, _, err = run(capsys, str(values), "--stack", "m", "--stacks-dir", str(tmp_path))
    assert code == 0, err
    assert stack_file_values(tmp_path / "Pulumi.m.yaml")["model"]["volume"] == {}


# --- what cannot be carried over ----------------------------------------------------------------


def test_unknown_keys_are_reported_with_their_path_and_left_out(capsys, tmp_path):
    code, err, stack_file = import_fixture(capsys, tmp_path, "unknown-keys.yaml")
    assert code == 0, err
    reported = [line for line in err.splitlines() if line.startswith("not carried over: ")]
    paths = [line.removeprefix("not carried over: ").split(": ", 1)[0] for line in reported]
    assert paths == [
        "nameOverride",
        "image.digest",
        "resources.requests",
        'resources.limits."amd.com/gpu"',
        "service",
        "model.huggingface.revision",
        "env[0].valueFromm",
    ]
    assert "the chart's keys here: registry, repository, tag, pullPolicy" in err
    # A key the chart ignored but this project knows is left out too, with where to set it.
    assert "this project has vllm-serving:model.huggingface.revision: set it by hand" in err
    assert "7 keys not carried over" in err

    config = stack_file_values(stack_file)
    assert set(config) == {"image", "resources", "model", "env"}
    assert config["image"] == {"tag": "v0.3.3"}
    assert config["resources"] == {"limits": {"cpu": 4}}
    assert "revision" not in config["model"]["huggingface"]
    assert config["env"] == [{"name": "HTTP_PROXY", "value": "http://proxy.example.internal:3128"}]
    # The reviewer of the stack file sees the same list.
    assert '#   resources.limits."amd.com/gpu": unknown key' in stack_file.read_text()


def test_invalid_values_exit_2_naming_the_key_and_write_nothing(capsys, tmp_path):
    code, err, stack_file = import_fixture(capsys, tmp_path, "invalid-size.yaml")
    assert code == 2
    assert "vllm-serving:model.volume.size: '24GB' is not a Kubernetes quantity" in err
    assert 'did you mean "24Gi"' in err
    assert "nothing written" in err
    assert not stack_file.exists()


def test_console_script_reports_invalid_values_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vllm_serving", "import-values", str(FIXTURES / "invalid-size.yaml"),
         "--stack", "bad", "--stacks-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60,
    )
    assert result.returncode == 2
    assert "model.volume.size" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("model: [unclosed\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping of chart values, got list"),
    ],
)
def test_unreadable_values_exit_2(capsys, tmp_path, content, message):
    values = tmp_path / "values.yaml"
    values.write_text(content)
    code, _, err = run(capsys, str(values), "--stack", "x", "--stacks-dir", str(tmp_path))
    assert code == 2
    assert message in err and "Traceback" not in err


def test_missing_values_file_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, str(tmp_path / "nope.yaml"), "--stack", "x", "--stacks-dir", str(tmp_path))
    assert code == 2
    assert err.startswith(f"error: cannot read {tmp_path / 'nope.yaml'}")


def test_stack_name_must_be_a_file_name(capsys, tmp_path):
    code, _, err = run(capsys, str(FIXTURES / "codellama.yaml"), "--stack", "../evil", "--stacks-dir", str(tmp_path))
    assert code == 2
    assert "is not a stack name" in err
    assert list(tmp_path.iterdir()) == []


# --- existing stack files ----------------------------------------------------------------------


def test_existing_stack_file_is_refused_without_force(capsys, tmp_path):
    existing = tmp_path / "Pulumi.codellama-7b.yaml"
    existing.write_text("config: {}\n")
    code, err, _ = import_fixture(capsys, tmp_path, "codellama.yaml", "codellama-7b")
    assert code == 2
    assert f"error: {existing} already exists: pass --force to overwrite it" in err
    assert existing.read_text() == "config: {}\n"


def test_force_overwrites_an_existing_stack_file(capsys, tmp_path):
    existing = tmp_path / "Pulumi.codellama-7b.yaml"
    existing.write_text("config: {}\n")
    code, err, _ = import_fixture(capsys, tmp_path, "codellama.yaml", "codellama-7b", "--force")
    assert code == 0, err
    assert f"overwrote {existing}" in err
    assert stack_file_values(existing)["model"]["deployName"] == "codellama-7b"


# --- the other sources ----------------------------------------------------------------------------


def test_git_sourced_values_import(capsys, tmp_path):
    code, err, stack_file = import_fixture(capsys, tmp_path, "git.yaml", "qwen-git")
    assert code == 0, err
    rendering = render(stack_file)
    download = container(rendering, "Job", "download")
    env = env_of(download)
    assert env["SOURCE"] == "git"
    assert env["GIT_URL"] == "https://git.example.internal/models/Qwen2.5-Coder-7B-Instruct.git"
    assert env["GIT_REF"] == "v1.0"
    assert env["GIT_TOKEN"] == {"secretKeyRef": {"name": "git-token", "key": "token"}}
    assert download["image"] == DEFAULT_GIT_IMAGE
    server = container(rendering, "Deployment", "vllm")
    assert server["resources"]["limits"] == {"cpu": "8", "memory": "48Gi", "nvidia.com/gpu": "1"}
    assert "--served-model-name=qwen-coder" in server["args"]
    pvc = normalize(rendering.one("PersistentVolumeClaim").inputs)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "40Gi"


def test_s3_sourced_values_import(capsys, tmp_path):
    code, err, stack_file = import_fixture(capsys, tmp_path, "s3.yaml", "mistral-s3")
    assert code == 0, err
    rendering = render(stack_file)
    download = container(rendering, "Job", "download")
    env = env_of(download)
    assert env["SOURCE"] == "s3"
    assert env["S3_URL"] == "s3://models/mistral-7b-instruct-v0.2/"
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "s3-models", "key": "accessKeyID"}}
    assert download["image"] == DEFAULT_S3_IMAGE
    pvc = normalize(rendering.one("PersistentVolumeClaim").inputs)
    assert pvc["spec"]["storageClassName"] == "shared-nfs"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert normalize(rendering.one("Deployment").inputs)["spec"]["replicas"] == 2
