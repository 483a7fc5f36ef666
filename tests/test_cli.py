"""`vllm-serving render` as a newcomer runs it: a real process, its output and exit status."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from vllm_serving.manifests import offline_secret_placeholder
from vllm_serving.stack_file import PROJECT_ROOT, STACKS_DIR


def run_cli(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vllm_serving", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_render_prints_every_resource_as_multi_document_yaml():
    result = run_cli("render", "codellama-7b")
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    # In reading order: what serves and how it is reached first, the download scripts last.
    # Two ConfigMaps: the download scripts and the server's allow-list (components/server/surface.py).
    assert [d["kind"] for d in documents] == ["Deployment", "Service", "PersistentVolumeClaim", "Job", "ConfigMap", "ConfigMap"]
    # Kubernetes' own field names, not the Python SDK's.
    assert "apiVersion" in documents[2] and "accessModes" in documents[2]["spec"]
    assert "api_version" not in result.stdout and "access_modes" not in result.stdout


def test_render_accepts_a_path_and_writes_one_file_per_resource(tmp_path):
    stack_file = STACKS_DIR / "Pulumi.mistral-s3.yaml"
    result = run_cli("render", str(stack_file), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(files) == 6
    assert files[0].startswith("01-deployment-mistral-7b")
    assert files[2].startswith("03-persistentvolumeclaim-mistral-7b-model")
    assert yaml.safe_load((tmp_path / "out" / files[-1]).read_text())["kind"] == "ConfigMap"


def test_render_validate_passes_for_the_example():
    result = run_cli("render", "codellama-7b", "--validate")
    assert result.returncode == 0, result.stderr


def test_invalid_config_exits_2_with_the_message_and_no_traceback(tmp_path):
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(
        "config:\n"
        "  vllm-serving:replicaCount: 3\n"
        "  vllm-serving:model:\n"
        "    deployName: CodeLlama\n"
        "    volume: {size: 24GB}\n"
        "    source: huggingface\n"
    )
    result = run_cli("render", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for key in ("model.deployName", "model.volume.size", "model.huggingface.id", "replicaCount"):
        assert f"vllm-serving:{key}:" in result.stderr
    assert 'did you mean "24Gi"' in result.stderr


def test_unknown_stack_exits_2_naming_the_stacks_that_exist():
    result = run_cli("render", "no-such-stack")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "codellama-7b" in result.stderr


def test_stack_key_without_namespace_is_refused(tmp_path):
    bad = tmp_path / "Pulumi.x.yaml"
    bad.write_text("config:\n  replicaCount: 1\n")
    result = run_cli("render", str(bad))
    assert result.returncode == 2
    assert "vllm-serving:replicaCount" in result.stderr


def test_secure_values_render_as_a_placeholder(tmp_path):
    stack = tmp_path / "Pulumi.s.yaml"
    stack.write_text(
        "config:\n"
        "  vllm-serving:model:\n"
        "    deployName: m\n"
        "    source: huggingface\n"
        "    huggingface: {id: org/m}\n"
        "  vllm-serving:env:\n"
        "    - name: EXTRA\n"
        "      value:\n"
        "        secure: v1:AAAABBBBCCCC\n"
    )
    result = run_cli("render", str(stack))
    assert result.returncode == 0, result.stderr
    assert "v1:AAAABBBBCCCC" not in result.stdout
    # A checksum of the ciphertext, so that `diff` sees a changed secret; nothing of the plaintext.
    placeholder = offline_secret_placeholder("v1:AAAABBBBCCCC")
    assert re.fullmatch(r"\[secret [0-9a-f]{12}\]", placeholder)
    assert f"EXTRA: '{placeholder}'" in result.stdout


def test_several_stacks_render_in_one_process_each_under_its_header(tmp_path):
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  vllm-serving:replicaCount: -1\n")
    result = run_cli("render", "codellama-7b", str(bad), "mistral-s3", "--validate")

    # The worst status of the three: the invalid one; the others still render.
    assert result.returncode == 2
    assert "error: stack " + str(bad) + ": invalid stack config" in result.stderr
    assert "Traceback" not in result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("# Stack: ")]
    assert [h.split()[2] for h in headers] == ["codellama-7b", "mistral-s3"]
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [d["kind"] for d in documents].count("Deployment") == 2
    assert "--- stack codellama-7b (" in result.stderr and "--- stack mistral-s3 (" in result.stderr


def test_all_stacks_as_json_lines_and_into_one_directory_per_stack(tmp_path):
    names = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml"))
    result = run_cli("render", "--all", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["stack"] for line in result.stdout.splitlines()] == names

    result = run_cli("render", "codellama-7b", "qwen-git", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["codellama-7b", "qwen-git"]
    assert len(list((tmp_path / "out" / "qwen-git").iterdir())) == 6


def test_stacks_and_all_together_are_refused():
    result = run_cli("render", "codellama-7b", "--all")
    assert result.returncode == 2
    assert "give stack names or files, or --all (not both)" in result.stderr
