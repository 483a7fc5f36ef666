"""Fixtures for the download Job tests: the scripts of components/scripts/ run as the
Job runs them (`sh download.sh` with the contract's environment), against real
servers on 127.0.0.1 that the fixtures start and stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "components" / "scripts"
FIXTURES = REPO / "tests" / "fixtures"


def require_tool(*names: str) -> None:
    """Skip when a system tool is missing on a developer machine; fail in CI, which installs them."""
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (Debian packages listed in .ci/apt-packages.txt)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide {reason}")
    pytest.skip(reason)


def require_module(name: str) -> None:
    """As require_tool, for the Python packages of .ci/test-requirements.txt."""
    import importlib.util

    if importlib.util.find_spec(name) is not None:
        return
    reason = f"Python package {name} not installed (.ci/test-requirements.txt)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide {reason}")
    pytest.skip(reason)


def write_random(path: Path, size: int, seed: int) -> Path:
    """A file of `size` pseudo-random bytes (distinct per seed), cheap to generate."""
    import random

    path.parent.mkdir(parents=True, exist_ok=True)
    block = random.Random(seed).randbytes(min(size, 1 << 20) or 1)
    with path.open("wb") as handle:
        remaining = size
        while remaining > 0:
            handle.write(block[:remaining])
            remaining -= len(block)
    return path


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def last_error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


class Downloader:
    """Runs `<shell> components/scripts/download.sh` with a clean environment."""

    def __init__(self, tmp_path: Path, shell: str):
        self.tmp_path = tmp_path
        self.shell = shell
        self.bin = tmp_path / "bin"
        self.bin.mkdir(exist_ok=True)
        # The Job's image has `python3`; here it is the venv's interpreter, which has huggingface_hub.
        wrapper = self.bin / "python3"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        wrapper.chmod(0o755)
        path = [str(self.bin)]
        if shell == "busybox":
            # alpine/git and rclone/rclone have busybox's cp, ln, sed, grep, find...: so do these runs.
            applets = tmp_path / "busybox"
            applets.mkdir(exist_ok=True)
            busybox = shutil.which("busybox")
            assert busybox is not None, "the busybox_downloader fixture requires busybox first"
            listing = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout
            for applet in listing.split():
                if not (applets / applet).exists():
                    (applets / applet).symlink_to(busybox)
            path.append(str(applets))
        path += ["/usr/local/bin", "/usr/bin", "/bin"]
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        self.model_dir = tmp_path / "model"
        self.model_dir.mkdir(exist_ok=True)
        # Nothing of the caller's environment leaks in: no proxies, no tokens, no caches.
        self.base_env = {
            "PATH": ":".join(path),
            "HOME": str(home),
            "TMPDIR": str(tmp_path),
            "LANG": "C.UTF-8",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "MODEL_DIR": str(self.model_dir),
            "SOURCE_FINGERPRINT": "0123456789ab",
        }
        # To run hf_download.py against another huggingface_hub release than the venv's
        # (the Job's image may carry any 0.x, 1.x or later): a `pip install --target` directory.
        if os.environ.get("DOWNLOAD_TEST_PYTHONPATH"):
            self.base_env["PYTHONPATH"] = os.environ["DOWNLOAD_TEST_PYTHONPATH"]

    def command(self) -> list[str]:
        shell = ["busybox", "sh"] if self.shell == "busybox" else [self.shell]
        return [*shell, str(SCRIPTS / "download.sh")]

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.base_env, **extra}

    def run(self, timeout: float = 60, **env: str) -> Result:
        done = subprocess.run(self.command(), env=self.env(**env), capture_output=True, text=True, timeout=timeout)
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, **env: str) -> subprocess.Popen:
        """Start a run in its own process group, so that kill() takes its children too.
        Its output goes to files, which `output_so_far` reads while it runs."""
        self.stdout_path = self.tmp_path / "run.stdout"
        self.stderr_path = self.tmp_path / "run.stderr"
        with self.stdout_path.open("w") as stdout, self.stderr_path.open("w") as stderr:
            return subprocess.Popen(self.command(), env=self.env(**env), stdout=stdout, stderr=stderr,
                                    start_new_session=True)

    def output_so_far(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def kill(self, process: subprocess.Popen) -> Result:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        return Result(process.returncode, self.stdout_path.read_text(), self.stderr_path.read_text())

    @property
    def marker(self) -> Path:
        return self.model_dir / ".vllm-serving-complete"


@pytest.fixture
def dash_downloader(tmp_path: Path) -> Downloader:
    """As in the vllm/vllm-openai image (Ubuntu): dash as sh, GNU tools, python3."""
    require_tool("dash")
    require_module("huggingface_hub")
    return Downloader(tmp_path, "dash")


@pytest.fixture
def busybox_downloader(tmp_path: Path) -> Downloader:
    """As in alpine/git and rclone/rclone: busybox sh and busybox applets."""
    require_tool("busybox")
    return Downloader(tmp_path, "busybox")


@pytest.fixture
def hub():
    """The fake Hub; the tests that use it run huggingface_hub against it."""
    require_module("huggingface_hub")
    from .hub_fake import FakeHub

    server = FakeHub().start()
    yield server
    server.stop()


@pytest.fixture
def git_server_factory():
    """Starts GitServers over a GitStore (see git_fake), stopped after the test."""
    require_tool("git", "git-lfs")
    from .git_fake import GitServer

    servers = []

    def make(store, **options) -> GitServer:
        server = GitServer(store, **options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def s3_server():
    require_tool("rclone")
    require_module("moto")
    require_module("boto3")
    from .s3_fake import S3Server

    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def random_file(tmp_path: Path) -> Callable[[str, int], Path]:
    counter = iter(range(1, 1 << 30))

    def make(name: str, size: int) -> Path:
        number = next(counter)
        return write_random(tmp_path / "sources" / f"{number}-{name.replace('/', '_')}", size, number)

    return make
