"""download.sh itself: the completion marker, what it does with a directory filled for
another source, and that every script is plain POSIX sh (dash and busybox ash)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import SCRIPTS, Downloader, require_tool

# Every shell script the Job mounts.
SHELL_SCRIPTS = [SCRIPTS / name for name in ("download.sh", "git_download.sh", "s3_download.sh", "select_files.sh",
                                             "prune_versions.sh", "job.sh")]


@pytest.fixture(params=["dash", "busybox"])
def downloader(request, tmp_path) -> Downloader:
    require_tool(request.param)
    return Downloader(tmp_path, request.param)


@pytest.fixture
def tiny_repo(hub, random_file):
    hub.add_repo("acme/tiny").commit({"config.json": random_file("config.json", 100),
                                      "model.safetensors": random_file("w", 1000)})
    return {"SOURCE": "huggingface", "HF_MODEL_ID": "acme/tiny", "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1"}


def test_complete_marker_means_no_network_at_all(downloader, hub, tiny_repo):
    downloader.marker.write_text("0123456789ab\n")
    result = downloader.run(**tiny_repo)
    assert result.returncode == 0, result.output
    assert "model already complete" in result.stdout
    assert hub.requests == []


def test_marker_of_another_spec_is_removed_with_its_files(downloader, hub, tiny_repo):
    downloader.marker.write_text("old-spec\n")
    (downloader.model_dir / "pytorch_model.bin").write_text("weights of the previous model")
    result = downloader.run(**tiny_repo)
    assert result.returncode == 0, result.output
    assert sorted(p.name for p in downloader.model_dir.iterdir() if p.name not in (".cache", ".huggingface")) == [
        ".vllm-serving-complete", ".vllm-serving-owner", "config.json", "model.safetensors"]
    assert downloader.marker.read_text() == "0123456789ab\n"


@pytest.mark.parametrize("stale", ["old-spec\n", ""])
def test_failed_run_leaves_no_marker(downloader, hub, tiny_repo, stale):
    downloader.marker.write_text(stale)
    result = downloader.run(**{**tiny_repo, "HF_MODEL_ID": "acme/missing"})
    assert result.returncode != 0
    assert not downloader.marker.exists()
    assert (downloader.model_dir / ".vllm-serving-partial").read_text() == "0123456789ab\n"


def test_partial_download_of_another_spec_is_removed(downloader, hub, tiny_repo):
    (downloader.model_dir / ".vllm-serving-partial").write_text("old-spec\n")
    (downloader.model_dir / "model-00001-of-00009.safetensors").write_text("half of another model")
    result = downloader.run(**tiny_repo)
    assert result.returncode == 0, result.output
    assert not (downloader.model_dir / "model-00001-of-00009.safetensors").exists()


def test_partial_download_of_the_same_spec_is_resumed_not_removed(downloader, hub, tiny_repo):
    (downloader.model_dir / ".vllm-serving-partial").write_text("0123456789ab\n")
    (downloader.model_dir / "kept.txt").write_text("left by the interrupted run")
    result = downloader.run(**tiny_repo)
    assert result.returncode == 0, result.output
    assert (downloader.model_dir / "kept.txt").exists()
    assert not (downloader.model_dir / ".vllm-serving-partial").exists()


def test_directory_without_our_markers_is_never_wiped(downloader, hub, tiny_repo):
    (downloader.model_dir / "users-own-file.txt").write_text("not ours")
    result = downloader.run(**tiny_repo)
    assert result.returncode == 0, result.output
    assert (downloader.model_dir / "users-own-file.txt").read_text() == "not ours"


def test_marker_is_renamed_into_place(downloader, hub, tiny_repo):
    """Written to a temp file and renamed: a crash never leaves a half-written marker."""
    calls = downloader.tmp_path / "mv-calls"
    shim = downloader.bin / "mv"
    shim.write_text(f'#!/bin/sh\necho "$*" >>"{calls}"\nexec /bin/mv "$@"\n')
    shim.chmod(0o755)
    result = downloader.run(**tiny_repo)
    assert result.returncode == 0, result.output
    marker = downloader.marker
    assert f"-f {marker}.tmp {marker}" in calls.read_text().splitlines()
    assert not marker.with_name(marker.name + ".tmp").exists()


def sync_shim(downloader: Downloader, exit_code: int = 0) -> Path:
    """A `sync` first on PATH that records its arguments and whether the marker exists yet, then
    runs the image's own sync (coreutils under dash, busybox's applet under busybox)."""
    calls = downloader.tmp_path / "sync-calls"
    real = "busybox sync" if downloader.shell == "busybox" else "/bin/sync"
    shim = downloader.bin / "sync"
    shim.write_text(f'#!/bin/sh\nif [ -e "{downloader.marker}" ]; then m=marker; else m=no-marker; fi\n'
                    f'echo "$m $*" >>"{calls}"\n{real} "$@" || exit $?\nexit {exit_code}\n')
    shim.chmod(0o755)
    return calls


def test_weights_reach_the_disk_before_the_marker_and_the_marker_before_success(downloader, hub, tiny_repo):
    """A node crash after writeback of the marker but not of the weights would leave a complete-looking
    truncated model; one after success but before the marker's writeback, a completed Job whose
    server waits for a marker forever."""
    calls = sync_shim(downloader)
    result = downloader.run(**tiny_repo)
    assert result.returncode == 0, result.output
    model_dir = downloader.model_dir
    assert calls.read_text().splitlines() == [f"no-marker -f {model_dir}", f"marker -f {model_dir}"]
    assert f"download: flushing {model_dir} to the volume" in result.stdout


def test_a_failed_flush_fails_the_download_without_a_marker(downloader, hub, tiny_repo):
    calls = sync_shim(downloader, exit_code=5)
    result = downloader.run(**tiny_repo)
    assert result.returncode != 0
    assert calls.read_text().splitlines() == [f"no-marker -f {downloader.model_dir}"]
    assert not downloader.marker.exists()
    assert result.last_error_line == (f"download failed: cannot flush {downloader.model_dir} to the volume "
                                      "(sync -f failed): the bytes may not be on disk")


def test_unknown_source(downloader):
    result = downloader.run(SOURCE="ftp")
    assert result.returncode != 0
    assert result.last_error_line == "download failed: source 'ftp' is unknown (expected huggingface, git or s3)"
    assert not downloader.marker.exists()


def test_missing_fingerprint_is_refused(downloader, hub, tiny_repo):
    env = downloader.env(**tiny_repo)
    del env["SOURCE_FINGERPRINT"]
    done = subprocess.run(downloader.command(), env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "SOURCE_FINGERPRINT" in done.stderr
    assert hub.requests == []


@pytest.mark.parametrize("shell", ["dash", "busybox"])
@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=[s.name for s in SHELL_SCRIPTS])
def test_scripts_parse_in_posix_shells(shell, script):
    require_tool(shell)
    command = ["busybox", "sh", "-n", str(script)] if shell == "busybox" else [shell, "-n", str(script)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_scripts_pass_shellcheck_as_posix_sh():
    require_tool("shellcheck")
    done = subprocess.run(["shellcheck", "--shell=sh", *map(str, SHELL_SCRIPTS)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_scripts_are_what_the_job_mounts():
    """The Job mounts every file of components/scripts/ and runs download.sh, which must find
    its siblings by name (the ConfigMap keeps names but not the executable bit)."""
    names = {p.name for p in SCRIPTS.iterdir() if p.is_file()}
    assert {"download.sh", "hf_download.py", "git_download.sh", "s3_download.sh"} <= names
    text = (SCRIPTS / "download.sh").read_text()
    for invocation in ('python3 "$scripts/hf_download.py"', 'sh "$scripts/git_download.sh"',
                       'sh "$scripts/s3_download.sh"'):
        assert invocation in text
