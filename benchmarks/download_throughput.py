"""Throughput of the download Job's scripts against local servers, next to a plain local copy.

Generates a model of 8 weight files x 256 MiB (2 GiB) in a temporary directory, serves it
from each of the test servers on 127.0.0.1 (the fake Hub, git http-backend + LFS server,
moto's S3 server) and times `sh components/scripts/download.sh` for each source with its
default parallelism, then `cp -r` of the same bytes on the same disk. The figure is each
download's MB/s over the copy's: how close the scripts come to the disk, with the servers'
own costs included (moto, in Python, is much slower than a real object store).

Needs git, git-lfs, rclone, busybox and dash (Debian packages), and the test requirements.

    python benchmarks/download_throughput.py [--file-mib 256] [--files 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.download.git_fake import GitServer, GitStore, RepoBuilder  # noqa: E402
from tests.download.hub_fake import FakeHub  # noqa: E402
from tests.download.s3_fake import S3Server  # noqa: E402

SCRIPTS = ROOT / "components" / "scripts"
MiB = 1 << 20


def generate(directory: Path, files: int, file_mib: int) -> dict[str, Path]:
    """Weight files of distinct pseudo-random bytes (a 16 MiB random block, varied per file)."""
    directory.mkdir(parents=True)
    block = os.urandom(16 * MiB)
    model = {}
    for index in range(files):
        path = directory / f"model-{index + 1:05d}-of-{files:05d}.safetensors"
        with path.open("wb") as handle:
            for chunk in range(file_mib // 16):
                handle.write(index.to_bytes(4, "little") + chunk.to_bytes(4, "little") + block[8:])
        model[path.name] = path
    config = directory / "config.json"
    config.write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    model["config.json"] = config
    return model


def environment(work: Path, model_dir: Path, busybox: bool) -> dict[str, str]:
    bin_dir = work / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    python = bin_dir / "python3"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    path = [str(bin_dir)]
    if busybox:
        applets = work / "busybox"
        if not applets.exists():
            applets.mkdir()
            for applet in subprocess.run(["busybox", "--list"], capture_output=True, text=True).stdout.split():
                (applets / applet).symlink_to(shutil.which("busybox"))
        path.append(str(applets))
    model_dir.mkdir(parents=True)
    return {"PATH": ":".join(path + ["/usr/bin", "/bin"]), "HOME": str(work), "TMPDIR": str(work),
            "NO_PROXY": "127.0.0.1,localhost", "MODEL_DIR": str(model_dir), "SOURCE_FINGERPRINT": "benchmark"}


def timed_download(env: dict[str, str], shell: list[str]) -> float:
    subprocess.run(["sync"], check=True)
    started = time.monotonic()
    done = subprocess.run([*shell, str(SCRIPTS / "download.sh")], env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"download failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def verify(model: dict[str, Path], model_dir: Path) -> None:
    for name, path in model.items():
        copy = model_dir / name
        if copy.stat().st_size != path.stat().st_size or _head(copy) != _head(path):
            raise SystemExit(f"{copy} differs from {path}")


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--file-mib", type=int, default=256)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="download-throughput-"))
    results = []
    try:
        model = generate(work / "source", args.files, args.file_mib)
        total = sum(p.stat().st_size for p in model.values())
        print(f"model: {args.files} files x {args.file_mib} MiB = {total / 2**30:.2f} GiB in {work}", flush=True)

        # The copy is quick and its time swings with the page cache's write-back: the median of three.
        copies = []
        for _ in range(3):
            subprocess.run(["sync"], check=True)
            started = time.monotonic()
            subprocess.run(["cp", "-r", str(work / "source"), str(work / "copy")], check=True)
            copies.append(time.monotonic() - started)
            shutil.rmtree(work / "copy")
        copy_seconds = sorted(copies)[1]
        results.append(("local cp -r (same disk)", "median of 3", copy_seconds))

        hub = FakeHub().start()
        try:
            hub.add_repo("bench/model").commit(model)
            env = environment(work / "hf", work / "hf" / "model", busybox=False)
            env.update({"SOURCE": "huggingface", "HF_MODEL_ID": "bench/model", "HF_ENDPOINT": hub.url,
                        "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(work / "hf" / "home")})
            seconds = timed_download(env, ["dash"])
            verify(model, work / "hf" / "model")
            results.append(("huggingface (fake Hub)", "HF_MAX_WORKERS=8", seconds))
        finally:
            hub.stop()
        shutil.rmtree(work / "hf")
        print("huggingface done", flush=True)

        store = GitStore(work / "git-store")
        builder = RepoBuilder(store, "model")
        builder.commit(model, "weights")
        server = GitServer(store).start()
        try:
            env = environment(work / "git", work / "git" / "model", busybox=True)
            env.update({"SOURCE": "git", "GIT_URL": server.repo_url("model")})
            seconds = timed_download(env, ["busybox", "sh"])
            verify(model, work / "git" / "model")
            results.append(("git + LFS (http-backend)", "GIT_LFS_CONCURRENCY=8", seconds))
        finally:
            server.stop()
        shutil.rmtree(work / "git")
        shutil.rmtree(work / "git-store")
        print("git done", flush=True)

        s3 = S3Server().start()
        try:
            s3.upload("bench", "model", model)
            env = environment(work / "s3", work / "s3" / "model", busybox=True)
            env.update({"SOURCE": "s3", "S3_URL": "s3://bench/model", "S3_ENDPOINT_URL": s3.url,
                        "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key})
            seconds = timed_download(env, ["busybox", "sh"])
            verify(model, work / "s3" / "model")
            results.append(("s3 (moto server, rclone)", "S3_CONCURRENCY=16", seconds))
        finally:
            s3.stop()
        print("s3 done", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    copy_rate = total / copy_seconds / 1e6
    print(f"\n{'source':28} {'parallelism':24} {'bytes':>12} {'seconds':>8} {'MB/s':>8} {'vs cp':>6}")
    for name, parallelism, seconds in results:
        rate = total / seconds / 1e6
        print(f"{name:28} {parallelism:24} {total:>12} {seconds:>8.2f} {rate:>8.0f} {rate / copy_rate:>6.2f}")
    print(f"\n{os.cpu_count()} CPUs; servers and downloader share them. Each download includes its listing, "
          "checks and completion marker.")


if __name__ == "__main__":
    main()
