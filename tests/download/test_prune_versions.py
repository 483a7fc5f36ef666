"""prune_versions.sh on a shared volume: only this stack's superseded versions go, never the
current or the previous (served) one, whatever characters the sub-path holds."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import SCRIPTS, require_tool


def version(root: Path, name: str, owner: str | None, complete: bool = True, age: int = 0) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(b"weights")
    if owner is not None:
        (directory / ".vllm-serving-owner").write_text(owner + "\n")
    if complete:
        marker = directory / ".vllm-serving-complete"
        marker.write_text(name + "\n")
        stamp = time.time() - age
        os.utime(marker, (stamp, stamp))
    return directory


def prune(shell: str, root: Path, current: str, owner: str = "llama") -> subprocess.CompletedProcess:
    require_tool(shell)
    command = ["busybox", "sh"] if shell == "busybox" else [shell]
    env = {"PATH": os.environ["PATH"], "VERSIONS_DIR": str(root), "SOURCE_FINGERPRINT": current,
           "VERSION_OWNER": owner}
    return subprocess.run([*command, str(SCRIPTS / "prune_versions.sh")], env=env, capture_output=True, text=True,
                          check=True)


SHELLS = ["dash", "busybox"]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("sub_path", ["models", "my models", "two\nlines", "glob*[x] $(touch y)", "-rf"])
def test_only_this_stacks_older_versions_go(tmp_path, shell, sub_path):
    root = tmp_path / sub_path
    version(root, "aaaaaaaaaaaa", "llama", age=300)
    version(root, "bbbbbbbbbbbb", "llama", age=200)  # the previous one: the server may still run it
    version(root, "cccccccccccc", "llama")  # the current one
    version(root, "dddddddddddd", "mistral", age=400)  # another stack sharing the claim and sub-path
    version(root, "eeeeeeeeeeee", "mistral", age=100)
    version(root, "ffffffffffff", None, age=500)  # written before owners existed, or by hand
    version(root, "123412341234", "llama", complete=False)  # an abandoned partial download of ours
    (root / "notes").mkdir()
    result = prune(shell, root, "cccccccccccc")
    assert sorted(p.name for p in root.iterdir()) == [
        "bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd", "eeeeeeeeeeee", "ffffffffffff", "notes"]
    assert "removing superseded model version aaaaaaaaaaaa of llama" in result.stdout
    # Nothing outside the sub-path was touched (a word-split path would reach the parent).
    assert sorted(p.name for p in tmp_path.iterdir()) == [sub_path]


@pytest.mark.parametrize("shell", SHELLS)
def test_the_previous_version_is_the_newest_completed_one_of_this_stack(tmp_path, shell):
    version(tmp_path, "aaaaaaaaaaaa", "llama", age=100)
    version(tmp_path, "bbbbbbbbbbbb", "llama", age=300)
    version(tmp_path, "dddddddddddd", "mistral", age=10)  # newer, but another stack's
    version(tmp_path, "cccccccccccc", "llama")
    prune(shell, tmp_path, "cccccccccccc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aaaaaaaaaaaa", "cccccccccccc", "dddddddddddd"]


@pytest.mark.parametrize("shell", SHELLS)
def test_without_an_owner_nothing_is_removed(tmp_path, shell):
    version(tmp_path, "aaaaaaaaaaaa", "", age=300)
    version(tmp_path, "bbbbbbbbbbbb", "", age=200)
    version(tmp_path, "cccccccccccc", "")
    result = prune(shell, tmp_path, "cccccccccccc", owner="")
    assert len(list(tmp_path.iterdir())) == 3
    assert "VERSION_OWNER is not set" in result.stderr



@pytest.mark.parametrize("shell", SHELLS)
def test_a_download_abandoned_half_way_is_removed_before_the_next_one_starts(tmp_path, shell):
    # download.sh names the owner when it starts a version, so its half-written files are ours too.
    abandoned = tmp_path / "123412341234"
    abandoned.mkdir()
    command = ["busybox", "sh"] if shell == "busybox" else [shell]
    env = {"PATH": os.environ["PATH"], "MODEL_DIR": str(abandoned), "SOURCE_FINGERPRINT": "123412341234",
           "VERSION_OWNER": "llama", "SOURCE": "nowhere"}
    failed = subprocess.run([*command, str(SCRIPTS / "download.sh")], env=env, capture_output=True, text=True)
    assert failed.returncode != 0 and (abandoned / ".vllm-serving-owner").read_text() == "llama\n"
    version(tmp_path, "bbbbbbbbbbbb", "llama", age=100)  # the served one
    (tmp_path / "cccccccccccc").mkdir()  # the next change, about to download (job.sh prunes first)
    result = prune(shell, tmp_path, "cccccccccccc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bbbbbbbbbbbb", "cccccccccccc"]
    assert "removing superseded model version 123412341234 of llama" in result.stdout
