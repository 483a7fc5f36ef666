"""A model over its life: where each source downloads to, what re-downloads, the volume and its
size, the start-up budget, and the pruning of superseded versions; read off renderings before and after."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from components.config import parse_config
from components.storage.download import SCRIPTS_DIR
from tests.conftest import HF_MODEL, container, env_of, problems, render_values


def job_name(rendering):
    return rendering.one("Job").inputs["metadata"]["name"]


def server_model_dir(rendering):
    return container(rendering, "Deployment", "vllm")["volumeMounts"][0]["subPath"]


def download_dir(rendering):
    return env_of(container(rendering, "Job", "download"))["MODEL_DIR"]


def test_each_source_downloads_into_its_own_directory_and_the_server_follows():
    before = render_values({"model": HF_MODEL})
    changed = {**HF_MODEL, "huggingface": {"id": "codellama/CodeLlama-7b-Instruct-hf", "revision": "v2"}}
    after = render_values({"model": changed})
    fingerprint = env_of(container(before, "Job", "download"))["SOURCE_FINGERPRINT"]
    assert server_model_dir(before) == f"CodeLlama-7b-Instruct-hf/{fingerprint}"
    assert download_dir(before) == f"/volume/CodeLlama-7b-Instruct-hf/{fingerprint}"
    assert server_model_dir(after) != server_model_dir(before)
    assert download_dir(after).endswith(server_model_dir(after))
    assert job_name(after) != job_name(before)
    # The rollout onto the new directory waits for the new Job.
    assert after.one("Job").urn in after.one("Deployment").dependencies


@pytest.mark.parametrize(
    "change",
    [
        {"server": {"extraArgs": ["--max-model-len=4096"]}},
        {"resources": {"limits": {"cpu": 8, "memory": "96Gi", "nvidia.com/gpu": 2}}},
        {"replicaCount": 0},
        {"server": {"startupTimeoutSeconds": 3600}},
        {"service": {"type": "LoadBalancer"}},
    ],
)
def test_server_only_changes_never_redownload(change):
    before = render_values({"model": HF_MODEL})
    after = render_values({"model": HF_MODEL, **change})
    assert job_name(after) == job_name(before)
    assert server_model_dir(after) == server_model_dir(before)


def test_the_new_volume_is_protected_by_default_and_can_be_released():
    claim = render_values({"model": HF_MODEL}).one("PersistentVolumeClaim")
    assert claim.options["protect"] is True
    released = {**HF_MODEL, "volume": {**HF_MODEL["volume"], "protect": False}}
    assert render_values({"model": released}).one("PersistentVolumeClaim").options["protect"] is False


def test_existing_claim_without_source_is_served_from_its_sub_path_as_is():
    model = {"deployName": "llama", "volume": {"existingClaim": "shared", "subPath": "meta/llama"}}
    assert server_model_dir(render_values({"model": model})) == "meta/llama"


def test_model_size_is_annotated_on_the_claim():
    model = {**HF_MODEL, "size": "14Gi"}
    claim = render_values({"model": model}).one("PersistentVolumeClaim").inputs
    assert claim["metadata"]["annotations"] == {"vllm-serving/model-bytes": str(14 * 2**30)}


def test_model_larger_than_the_volume_is_refused():
    found = problems({"model": {**HF_MODEL, "size": "30Gi"}})
    assert found["model.size"] == "30Gi of weights do not fit model.volume.size 24Gi"


def test_startup_budget_too_short_for_the_model_is_refused_with_the_numbers():
    model = {**HF_MODEL, "size": "140G", "volume": {"size": "200Gi"}}
    found = problems({"model": model, "server": {"startupTimeoutSeconds": 300}})
    message = found["server.startupTimeoutSeconds"]
    assert "300 s is too short to load 140G (140.0 GB) at 0.5 GB/s" in message
    assert "about 400 s (7 min)" in message


def test_a_faster_stated_load_rate_makes_the_budget_enough():
    model = {**HF_MODEL, "size": "140G", "volume": {"size": "200Gi"}}
    config = parse_config({"model": model, "server": {"startupTimeoutSeconds": 300, "assumedLoadRateGBps": 2}})
    assert config.server.assumedLoadRateGBps == 2


@pytest.mark.parametrize(
    "argument, key",
    [
        ("--tensor-parallel-size=2", "engine.tensorParallelSize"),
        ("--served-model-name=other", "model.deployName"),
        ("--model=/elsewhere", "model.volume"),
        ("--port=9000", "port 8000"),
    ],
)
def test_extra_args_cannot_override_what_the_program_sets(argument, key):
    found = problems({"model": HF_MODEL, "server": {"extraArgs": ["--max-model-len=8192", argument]}})
    assert key in found["server.extraArgs[1]"]


# --- the pruning of superseded versions, run for real -----------------------------------------


def make_version(root: Path, version: str, complete: bool, age: int = 0) -> Path:
    directory = root / version
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(b"weights")
    (directory / ".vllm-serving-owner").write_text("stack\n")  # prune removes only its own stack's versions
    if complete:
        marker = directory / ".vllm-serving-complete"
        marker.write_text(version + "\n")
        stamp = time.time() - age
        os.utime(marker, (stamp, stamp))
    return directory


def prune(root: Path, current: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VERSIONS_DIR": str(root), "SOURCE_FINGERPRINT": current, "VERSION_OWNER": "stack"}
    return subprocess.run(
        ["sh", str(SCRIPTS_DIR / "prune_versions.sh")], env=env, capture_output=True, text=True, check=True
    )


def test_prune_keeps_the_current_and_the_previous_version_only(tmp_path):
    make_version(tmp_path, "aaaaaaaaaaaa", complete=True, age=300)
    make_version(tmp_path, "bbbbbbbbbbbb", complete=True, age=200)
    make_version(tmp_path, "dddddddddddd", complete=False)
    make_version(tmp_path, "cccccccccccc", complete=True, age=0)
    (tmp_path / "my-notes").mkdir()
    result = prune(tmp_path, "cccccccccccc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bbbbbbbbbbbb", "cccccccccccc", "my-notes"]
    assert "removing superseded model version aaaaaaaaaaaa" in result.stdout


def test_prune_does_nothing_while_the_current_version_is_incomplete(tmp_path):
    make_version(tmp_path, "aaaaaaaaaaaa", complete=True, age=300)
    make_version(tmp_path, "bbbbbbbbbbbb", complete=True, age=200)
    make_version(tmp_path, "cccccccccccc", complete=False)
    prune(tmp_path, "cccccccccccc")
    assert len(list(tmp_path.iterdir())) == 3


def test_job_entry_point_creates_the_directory_downloads_then_prunes(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name in ("job.sh", "prune_versions.sh"):
        (scripts / name).write_text((SCRIPTS_DIR / name).read_text())
    # A stand-in for the real download (tested against real servers in tests/download).
    (scripts / "download.sh").write_text('printf "%s\\n" "$SOURCE_FINGERPRINT" > "$MODEL_DIR/.vllm-serving-complete"\n')
    versions = tmp_path / "volume" / "model"
    make_version(versions, "aaaaaaaaaaaa", complete=True, age=300)
    make_version(versions, "bbbbbbbbbbbb", complete=True, age=200)
    env = {**os.environ, "VERSIONS_DIR": str(versions), "MODEL_DIR": str(versions / "cccccccccccc"),
           "SOURCE_FINGERPRINT": "cccccccccccc", "VERSION_OWNER": "stack"}
    subprocess.run(["sh", str(scripts / "job.sh")], env=env, check=True, capture_output=True)
    assert sorted(p.name for p in versions.iterdir()) == ["bbbbbbbbbbbb", "cccccccccccc"]
