"""Build the release: the wheel and sdist of a commit, and the project template that installs them.

    .venv/bin/python scripts/release.py [--commit REV] [--out DIR]     (./run-tests sets up .venv)

From a clean checkout of the commit (`git archive`: committed files only, nothing of the working
tree), with setuptools from requirements-dev.txt and no network:

    DIR/vllm_serving-<version>-py3-none-any.whl
    DIR/vllm_serving-<version>.tar.gz
    DIR/SHA256SUMS                                    (sha256sum -c reads it)
    DIR/vllm-serving-template/                        `pulumi new DIR/vllm-serving-template`

The template is templates/vllm-serving with the wheel in `wheels/`, the policy pack in `policy/`
(its requirements.txt: requirements-policy.txt, hashed) and, in requirements.txt and
requirements-dev.txt, the wheel's pin by its hash after the hashed lock of every dependency: a
project made from it installs exactly this build with `pip install -r requirements-dev.txt`
(or `pulumi install`), offline from the wheel and checked. docs/releases.md says how a team
publishes and upgrades it. Files are dated at the commit (SOURCE_DATE_EPOCH), so the wheel of a
commit is the same bytes on every build.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path("templates") / "vllm-serving"
TEMPLATE_OUT = "vllm-serving-template"
WHEELS = "wheels"
# Rendering and `pulumi up` need the first; the project's tests and CI the second.
TEMPLATE_LOCKS = ("requirements.txt", "requirements-dev.txt")


def _git(*args: str, binary: bool = False):
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=not binary).stdout


def checkout(commit: str | None, into: Path) -> int:
    """The commit's files in `into` and its commit time; with no commit, the working tree's files
    that git would commit (tracked or new, not ignored: no .venv, no build output) and HEAD's time,
    which is how the tests build the code they test."""
    if commit is not None:
        archive = _git("archive", "--format=tar", commit, binary=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(into, filter="data")
        return int(_git("log", "-1", "--format=%ct", commit).strip())
    for name in filter(None, _git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")):
        if (ROOT / name).is_file():  # a tracked file deleted in the working tree is listed too
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)
    return int(_git("log", "-1", "--format=%ct").strip())


def _backend(call: str, source: Path, out: Path, epoch: int) -> Path:
    """One PEP 517 hook of setuptools' backend, in a process of its own, in this environment (no
    isolation, so nothing is downloaded): pyproject.toml's [build-system] is setuptools."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "PYTHONDONTWRITEBYTECODE": "1"}
    code = f"import sys; from setuptools import build_meta; print('built', build_meta.{call}(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"release: {call} failed:\n{result.stderr[-4000:]}")
    # setuptools logs on stdout too: the name is on the last line.
    return out / result.stdout.strip().splitlines()[-1].removeprefix("built ")


def build(source: Path, out: Path, epoch: int) -> tuple[Path, Path]:
    """The sdist of the checkout, then the wheel built from that sdist unpacked (as `python -m
    build` does), so that a file the sdist misses fails the build instead of the wheel's users."""
    sdist = _backend("build_sdist", source, out, epoch)
    unpacked = source.parent / "sdist"
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, filter="data")
    (root,) = unpacked.iterdir()
    return sdist, _backend("build_wheel", root, out, epoch)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pin_lines(wheel: Path) -> str:
    """The lines that install the release's wheel from the project's wheels/, checked by hash."""
    return (
        "# vllm-serving itself: the release's wheel, checked against its hash (scripts/release.py wrote\n"
        "# this). To install it from where your organisation publishes it, replace the path with its URL\n"
        "# (`vllm-serving @ https://.../<wheel>`), keeping the hash: docs/releases.md in vllm-serving.\n"
        f"./{WHEELS}/{wheel.name} \\\n    --hash=sha256:{sha256(wheel)}\n"
    )


def make_template(source: Path, wheel: Path, out: Path) -> Path:
    """templates/vllm-serving of the commit, with the wheel and its pin."""
    template = out / TEMPLATE_OUT
    shutil.copytree(source / TEMPLATE, template)
    (template / WHEELS).mkdir()
    shutil.copy2(wheel, template / WHEELS / wheel.name)
    for name in TEMPLATE_LOCKS:
        lock = template / name
        lock.write_text(lock.read_text() + pin_lines(wheel))
    # The policy pack of the same commit, which the project's preview and up workflows run, with
    # its own environment's hashed lock as its requirements.txt (PulumiPolicy.yaml's pip toolchain).
    shutil.copytree(source / "policy", template / "policy", ignore=shutil.ignore_patterns("requirements.txt"))
    shutil.copy2(source / "requirements-policy.txt", template / "policy" / "requirements.txt")
    return template


def release(commit: str | None, out: Path) -> dict[str, Path]:
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"release: {out} is not empty; give an empty or new --out directory")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vllm-serving-release-") as temp:
        source = Path(temp) / "src"
        epoch = checkout(commit, source)
        sdist, wheel = build(source, out, epoch)
        template = make_template(source, wheel, out)
    (out / "SHA256SUMS").write_text("".join(f"{sha256(path)}  {path.name}\n" for path in (wheel, sdist)))
    return {"wheel": wheel, "sdist": sdist, "template": template}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commit", default="HEAD", help="the commit to release (default HEAD; its files only)")
    parser.add_argument("--out", default="dist", help="an empty or new directory for the release (default dist/)")
    args = parser.parse_args()
    version = tomllib.loads(_git("show", f"{args.commit}:pyproject.toml"))["project"]["version"]
    if _git("status", "--porcelain", "--untracked-files=no").strip():
        print("release: the working tree has uncommitted changes; they are NOT in the release", file=sys.stderr)
    made = release(args.commit, Path(args.out))
    print(f"vllm-serving {version} from {_git('rev-parse', args.commit).strip()}:")
    for what, path in made.items():
        print(f"  {what}: {path}" + (f"  sha256 {sha256(path)}" if path.is_file() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
