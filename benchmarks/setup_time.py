"""How long a fresh clone takes to render its first stack, set-up included.

Clones a commit of this repository into a temporary directory (as a new user's `git clone`),
then times `./vllm-serving render STACK` twice: the first run sets up `.venv`, the second shows
what every later run costs. Repeats that with a new clone each time and prints min and median.
The package caches (uv's, and the uv installed once per machine) stay as they are: the figure is
"a fresh clone on a machine that has installed these packages before"; pass --cold to also
empty a private uv cache and tools directory each round (then every wheel is downloaded).

    python3 benchmarks/setup_time.py                      # HEAD, 3 rounds
    python3 benchmarks/setup_time.py --ref 0957571 -n 1   # an older commit, for comparison
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}) in {cwd}:\n{result.stderr[-3000:]}")
    return elapsed, result.stderr


def venv_size(clone: Path) -> int:
    return sum(path.stat().st_size for path in (clone / ".venv").rglob("*") if path.is_file() and not path.is_symlink())


def one_round(commit: str, stack: str, workdir: Path, env: dict[str, str]) -> tuple[float, float, int, str]:
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "--quiet", commit], cwd=clone, check=True)
    first, setup_log = timed(["./vllm-serving", "render", stack], clone, env)
    second, _ = timed(["./vllm-serving", "render", stack], clone, env)
    size = venv_size(clone)
    shutil.rmtree(clone)
    return first, second, size, setup_log


def summary(label: str, values: list[float]) -> str:
    return f"{label}: min {min(values):.1f} s, median {statistics.median(values):.1f} s  ({', '.join(f'{v:.1f}' for v in values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="HEAD", help="the commit to clone (default HEAD)")
    parser.add_argument("--stack", default="codellama-7b")
    parser.add_argument("-n", "--rounds", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="empty uv's cache and the tools directory each round")
    args = parser.parse_args()

    commit = subprocess.run(["git", "rev-parse", args.ref], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    firsts: list[float] = []
    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="vllm-serving-setup-time-") as tmp:
        workdir = Path(tmp)
        env = dict(os.environ)
        for round_number in range(1, args.rounds + 1):
            if args.cold:
                for name in ("uv-cache", "tools"):
                    shutil.rmtree(workdir / name, ignore_errors=True)
                env |= {"UV_CACHE_DIR": str(workdir / "uv-cache"), "VLLM_SERVING_TOOLS": str(workdir / "tools")}
            first, second, size, setup_log = one_round(commit, args.stack, workdir, env)
            firsts.append(first)
            seconds.append(second)
            print(f"round {round_number}: first render {first:.1f} s, second {second:.1f} s, .venv {size / 2**20:.0f} MiB",
                  file=sys.stderr)
            if round_number == 1:
                print("  " + setup_log.strip().replace("\n", "\n  "), file=sys.stderr)
    load = os.getloadavg()[0]
    print(f"commit {commit[:12]}, stack {args.stack}, {args.rounds} round(s), {os.cpu_count()} CPUs, load {load:.1f}"
          f"{', cold caches' if args.cold else ', warm package cache'}")
    print(summary("first render (fresh clone, set-up included)", firsts))
    print(summary("second render", seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
