"""Seconds per stack that review takes: `render`, `render --validate` and `diff`, for many stacks.

Makes a throw-away git repository holding this project's committed tree and N stack files,
variations of the example stacks (each example under a new deployName), commits them as the
base, then edits every stack in the working tree (one more engine flag) so that `diff` has a
change to report in each. Then times, for N = 1, 10, 50 and 200, one process for all N stacks:

    render STACK... -o DIR           the manifests
    render STACK... --validate       the manifests against the Kubernetes 1.29-1.35 schemas
    diff STACK... --base HEAD        the base renders in one subprocess of its own code

and prints wall-clock and CPU seconds (this process's children: the base subprocess included) per
stack, beside the anchors measured in the same run:

    python -c pass                               a bare interpreter's start
    python -c 'import pulumi, pulumi_kubernetes' the floor of any render's start-up
    render ONE STACK                             a single render, start-up included

`helm template` of the vLLM production-stack chart is the comparison the issue asks for, but no
registry this machine reaches ships helm (no Debian, PyPI or npm package of it; Debian's Go 1.19
cannot build helm v3.18+), so this run cannot measure it: the figure it prints for helm is the
issue's own measurement (0.047 s CPU a render), marked as such.

    .venv/bin/python benchmarks/review_speed.py                 # N = 1, 10, 50, 200
    .venv/bin/python benchmarks/review_speed.py --sizes 1 10    # a quicker look
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The issue's measurement of `helm template` (13: "0.76 s CPU a render against 0.047 s"); not this run's.
HELM_CPU_PER_RENDER_FROM_THE_ISSUE = 0.047
GIT = ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", "-c", "user.name=bench", "-c", "user.email=b@b"]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command; exits on an unexpected status."""
    cpu, started = children_cpu(), time.monotonic()
    result = subprocess.run(command, cwd=cwd, env={**os.environ, "PYTHONPATH": str(cwd)}, capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode not in ok:
        sys.exit(f"{' '.join(command[:6])} ... exited {result.returncode}:\n{result.stderr[-3000:]}")
    return wall, children_cpu() - cpu


def make_project(into: Path, count: int) -> list[str]:
    """The committed tree with `count` stack files committed, each edited since; their paths."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    examples = sorted((into / "stacks").glob("Pulumi.*.yaml"))
    documents = [yaml.safe_load(path.read_text()) for path in examples]
    for path in examples:
        path.unlink()
    stacks = []
    for index in range(count):
        document = yaml.safe_load(yaml.safe_dump(documents[index % len(documents)]))
        model = document["config"]["vllm-serving:model"]
        model["deployName"] = f"{model['deployName'][:30]}-{index}"
        path = into / "stacks" / f"Pulumi.bench-{index}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        stacks.append(str(path))
    subprocess.run([*GIT, "init", "-q"], cwd=into, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=into, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "base"], cwd=into, check=True)
    for stack in stacks:
        document = yaml.safe_load(Path(stack).read_text())
        engine = document["config"].setdefault("vllm-serving:engine", {})
        engine["maxNumSeqs"] = 64
        Path(stack).write_text(yaml.safe_dump(document, sort_keys=False))
    return stacks


def floor(command: list[str], cwd: Path, rounds: int = 3) -> tuple[float, float]:
    """The least (wall, CPU) of a few runs: the start-up floors barely vary but for the load."""
    runs = [timed(command, cwd) for _ in range(rounds)]
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 200])
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="review-speed-") as temp:
        project = Path(temp) / "project"
        stacks = make_project(project, max(args.sizes))
        cli = [python, "-m", "vllm_serving"]
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}")
        print("anchors (least of 3 runs)        wall s   CPU s")
        anchors = {
            "python -c pass": [python, "-c", "pass"],
            "import pulumi, pulumi_kubernetes": [python, "-c", "import pulumi, pulumi_kubernetes"],
            "render one stack": [*cli, "render", stacks[0], "-o", str(Path(temp) / "one")],
        }
        for label, command in anchors.items():
            wall, cpu = floor(command, project)
            print(f"  {label:<31} {wall:7.2f} {cpu:7.2f}")
        print(f"  helm template (the issue's figure, not measured here: no helm on this machine)   {HELM_CPU_PER_RENDER_FROM_THE_ISSUE:.3f}")
        print()
        print("stacks  command           wall s  CPU s  wall s/stack  CPU s/stack")
        for size in args.sizes:
            chosen = stacks[:size]
            runs = {
                "render": [*cli, "render", *chosen, "-o", str(Path(temp) / f"out-{size}")],
                "render --validate": [*cli, "render", *chosen, "--validate", "-o", str(Path(temp) / f"valid-{size}")],
                "diff": [*cli, "diff", *chosen, "--base", "HEAD"],
            }
            review_wall = review_cpu = 0.0
            for label, command in runs.items():
                wall, cpu = timed(command, project, ok=(0, 1) if label == "diff" else (0,))
                if label != "render":
                    review_wall, review_cpu = review_wall + wall, review_cpu + cpu
                print(f"{size:6d}  {label:<17} {wall:6.1f} {cpu:6.1f}  {wall / size:12.3f} {cpu / size:12.3f}")
            helm = size * HELM_CPU_PER_RENDER_FROM_THE_ISSUE
            print(
                f"{size:6d}  review (diff + validate): {review_cpu:.1f} s CPU, {review_wall:.1f} s wall; helm template, "
                f"by the issue's figure: {helm:.1f} s CPU for {size} renders ({2 * helm:.1f} s for a diff's two sides), "
                "plus its start per call"
            )


if __name__ == "__main__":
    main()
