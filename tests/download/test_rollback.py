"""Rollback (README, Day 2): reverting the source keys in the stack file renders the previous
version's directory again, and the Job, run for real (job.sh, download.sh, hf_download.py and
prune_versions.sh against the fake Hub), finds that version complete on the volume and exits
without a single request to the Hub; both versions stay for the next rollback."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import HF_MODEL, container, render_values

from .conftest import SCRIPTS, Downloader, require_tool

V1 = {**HF_MODEL, "huggingface": {"id": "acme/tiny", "revision": "v1"}}
V2 = {**HF_MODEL, "huggingface": {"id": "acme/tiny", "revision": "v2"}}


@pytest.fixture
def downloader(tmp_path) -> Downloader:
    require_tool("dash")
    return Downloader(tmp_path, "dash")


@pytest.fixture
def tiny_repo(hub, random_file):
    repo = hub.add_repo("acme/tiny")
    repo.commit({"config.json": random_file("config.json", 100), "model.safetensors": random_file("w1", 4000)}, tags=("v1",))
    repo.commit({"config.json": random_file("config.json", 120), "model.safetensors": random_file("w2", 5000)}, tags=("v2",))
    return repo


def job_env(model: dict, volume: Path, pod_tmp: Path, hub_url: str) -> dict[str, str]:
    """The rendered Job's own variables, with the pod's /volume and /tmp mapped to directories here."""
    rendered = container(render_values({"model": model}), "Job", "download")["env"]
    env = {var["name"]: var["value"] for var in rendered if "value" in var and var["name"] != "HOME"}
    for name, value in env.items():
        for pod_path, here in (("/volume", volume), ("/tmp", pod_tmp)):
            if value == pod_path or value.startswith(pod_path + "/"):
                env[name] = str(here) + value[len(pod_path):]
    # The stack's env would point the Job at a mirror the same way (HF_ENDPOINT).
    return {**env, "HF_ENDPOINT": hub_url, "HF_HUB_DISABLE_XET": "1"}


def run_job(downloader: Downloader, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["dash", str(SCRIPTS / "job.sh")], env=downloader.env(**env),
                          capture_output=True, text=True, timeout=120)


def test_reverting_the_source_keys_renders_the_previous_versions_directory_again():
    first, changed, reverted = (render_values({"model": model}) for model in (V1, V2, V1))
    dirs = [container(r, "Deployment", "vllm")["volumeMounts"][0]["subPath"] for r in (first, changed, reverted)]
    assert dirs[0] != dirs[1] and dirs[2] == dirs[0]
    # The same Job as the first time (its name is a hash of its inputs): nothing new to run.
    assert reverted.one("Job").inputs["metadata"]["name"] == first.one("Job").inputs["metadata"]["name"]


def test_a_rollback_finds_the_previous_version_on_the_volume_and_downloads_nothing(hub, tiny_repo, downloader, tmp_path):
    volume, pod_tmp = tmp_path / "volume", tmp_path / "pod-tmp"
    pod_tmp.mkdir()
    v1, v2 = (job_env(model, volume, pod_tmp, hub.url) for model in (V1, V2))
    assert run_job(downloader, v1).returncode == 0
    changed = run_job(downloader, v2)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    versions = Path(v1["VERSIONS_DIR"])
    assert sorted(p.name for p in versions.iterdir()) == sorted([v1["SOURCE_FINGERPRINT"], v2["SOURCE_FINGERPRINT"]])

    hub.clear()
    started = time.monotonic()
    rolled_back = run_job(downloader, v1)
    elapsed = time.monotonic() - started
    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    assert "model already complete" in rolled_back.stdout
    assert hub.requests == []
    # Seconds, not a download: the marker check and the prune.
    assert elapsed < 10, elapsed
    # The version rolled back from is now the previous one, kept for rolling forward again.
    assert sorted(p.name for p in versions.iterdir()) == sorted([v1["SOURCE_FINGERPRINT"], v2["SOURCE_FINGERPRINT"]])
    assert (Path(v1["MODEL_DIR"]) / ".vllm-serving-complete").read_text().strip() == v1["SOURCE_FINGERPRINT"]
