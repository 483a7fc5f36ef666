"""Replay `pulumi up` of a sequence of rendered stacks on a modelled cluster, trying every placement.

Per `pulumi up`, in the order the program's dependencies impose: every download Job whose name is
new starts its pod (Pulumi creates a renamed Job before deleting the old one, and the Deployment
depends on the Jobs), the pods run to completion (or fail, in the steps a test names: the `up` then
stops, and the next one does with the failed Job what pulumi_steps.job_step says), then the Deployment rolls out with the strategy its
manifest names (Recreate: every old pod is gone before a new one is created; RollingUpdate: surge and
unavailability as in pkg/controller/deployment/rolling.go), or scales when only `replicas` changed.

At each pod creation the scheduler may pick any node its filters leave, so the replay explores every
one (depth first, states memoised) and reports the first sequence of choices that ends with a pod
that cannot be placed or cannot attach its volume.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from vllm_serving.render import Rendering

from .model import Cluster, Volume
from .pulumi_steps import job_step


@dataclass(frozen=True)
class Op:
    kind: str  # "create", "complete", "fail", "delete", "wedged", "evict", "cordon" (pod: the node's name)
    pod: str
    step: str
    namespace: str = ""
    labels: dict[str, str] | None = None
    spec: dict[str, Any] | None = None


def _template(manifest: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    template = manifest["spec"]["template"]
    return template.get("metadata", {}).get("labels", {}), template["spec"]


def _deployment(rendering: Rendering) -> dict[str, Any]:
    """The server's Deployment (with routing, the endpoint picker's is beside it)."""
    (server,) = [
        deployment.inputs for deployment in rendering.by_kind("Deployment")
        if _template(deployment.inputs)[0].get("app.kubernetes.io/component") == "server"
    ]
    return server


def _jobs(rendering: Rendering) -> dict[str, dict[str, Any]]:
    return {job.inputs["metadata"]["name"]: job.inputs for job in rendering.by_kind("Job")}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:6]


def _int_or_percent(value: Any, replicas: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = replicas * int(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def _rollout_ops(step: str, old: list[str], deployment: dict[str, Any], template_changed: bool) -> tuple[list[Op], list[str]]:
    """The pod creations and deletions of one Deployment update, and the pods it leaves."""
    namespace = deployment["metadata"]["namespace"]
    labels, spec = _template(deployment)
    replicas = int(deployment["spec"].get("replicas", 1))
    prefix = f"{deployment['metadata']['name']}-{_digest(deployment['spec']['template'])}"
    new_names = [f"{prefix}-{index}" for index in range(replicas)]
    create = lambda name: Op("create", name, step, namespace, labels, spec)  # noqa: E731
    if not template_changed:
        ops = [create(name) for name in new_names[len(old):]] + [Op("delete", name, step) for name in old[replicas:]]
        return ops, (old + new_names[len(old):])[:replicas]
    strategy = deployment["spec"].get("strategy", {"type": "RollingUpdate"})
    if strategy["type"] == "Recreate":
        return [Op("delete", name, step) for name in old] + [create(name) for name in new_names], new_names
    rolling = strategy.get("rollingUpdate", {})
    surge = _int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    ops, remaining, created = [], list(old), 0
    while remaining or created < replicas:
        can_create = min(replicas + surge - len(remaining) - created, replicas - created)
        ops += [create(new_names[created + index]) for index in range(max(can_create, 0))]
        created += max(can_create, 0)
        # New pods count as available once placed; old ones go while enough stay available.
        can_delete = min(len(remaining), len(remaining) + created - (replicas - unavailable))
        if can_create <= 0 and can_delete <= 0:
            raise AssertionError(f"rollout of {prefix} cannot progress (maxSurge {surge}, maxUnavailable {unavailable})")
        ops += [Op("delete", name, step) for name in remaining[: max(can_delete, 0)]]
        remaining = remaining[max(can_delete, 0):]
    return ops, new_names


def _job_ops(step: str, name: str, job: dict[str, Any], fails: bool) -> list[Op]:
    """A download Job's pod runs, then completes, or fails (the Job controller gives up: backoff
    limit or activeDeadlineSeconds)."""
    labels, spec = _template(job)
    pod = f"{name}-pod"
    return [Op("create", pod, step, job["metadata"]["namespace"], labels, spec), Op("fail" if fails else "complete", pod, step)]


def _group_ops(step: str, lws: dict[str, Any], old: dict[str, Any] | None) -> list[Op]:
    """A LeaderWorkerSet's first deploy: each group's leader, then its workers (startupPolicy
    LeaderCreated), each pod from its own template (kubernetes-sigs/lws, the leader's pod
    controller creates the worker StatefulSet once the leader exists). Its updates are not modelled."""
    if old is not None:
        raise NotImplementedError("a LeaderWorkerSet's rolling update")
    namespace, name = lws["metadata"]["namespace"], lws["metadata"]["name"]
    template = lws["spec"]["leaderWorkerTemplate"]
    ops = []
    for group in range(int(lws["spec"].get("replicas", 1))):
        for index in range(int(template["size"])):
            pod_template = template["leaderTemplate" if index == 0 else "workerTemplate"]
            labels = {**pod_template.get("metadata", {}).get("labels", {}), "leaderworkerset.sigs.k8s.io/worker-index": str(index)}
            ops.append(Op("create", f"{name}-{group}-{index}", step, namespace, labels, pod_template["spec"]))
    return ops


def lifecycle_ops(steps: list[tuple[str, Rendering]], failing: frozenset[str] = frozenset()) -> list[Op]:
    """Every pod operation of a sequence of `pulumi up` runs, in order.

    failing: the steps whose download Jobs fail. Such an `up` stops at the failed Job (the server
    depends on it, so it is not touched) and leaves the Job in the stack with init errors; what the
    next `up` does with it is pulumi_steps.job_step's answer."""
    ops: list[Op] = []
    old_jobs: dict[str, dict[str, Any]] = {}
    live: dict[str, str] = {}  # Job name -> "Complete" or "Failed"
    old_deployment: dict[str, Any] | None = None
    server_pods: list[str] = []
    for step, rendering in steps:
        jobs = _jobs(rendering)
        fails = step in failing
        runs = [name for name in jobs if name not in old_jobs]
        wedged = False
        for name in [name for name in jobs if name in old_jobs]:
            action = job_step(jobs[name], live.get(name))
            if action == "replace":
                ops.append(Op("delete", f"{name}-pod", step))
                runs.append(name)
            elif action == "reawait":
                ops.append(Op("wedged", f"{name}-pod", step))
                wedged = True
        for name in runs:
            ops += _job_ops(step, name, jobs[name], fails)
            live[name] = "Failed" if fails else "Complete"
        old_jobs = jobs
        if fails or wedged:
            continue  # the Deployment waits on the Jobs: this `up` ends here
        if not rendering.by_kind("Deployment"):
            ops += _group_ops(step, rendering.one("LeaderWorkerSet").inputs, old_deployment)
            old_deployment = rendering.one("LeaderWorkerSet").inputs
            continue
        deployment = _deployment(rendering)
        changed = old_deployment is None or old_deployment["spec"]["template"] != deployment["spec"]["template"]
        rollout, server_pods = _rollout_ops(step, server_pods, deployment, changed)
        ops += rollout
        old_deployment = deployment
    return ops


def _state_key(index: int, cluster: Cluster) -> tuple[Any, ...]:
    pods = tuple(sorted((pod.name, pod.node, pod.phase, pod.terminating) for pod in cluster.pods))
    cordoned = tuple(sorted(node.name for node in cluster.nodes if node.unschedulable))
    volumes = tuple(sorted((name, volume.bound_to) for name, volume in cluster.volumes.items()))
    return index, pods, volumes, cordoned


def replay(cluster: Cluster, ops: list[Op]) -> str | None:
    """None when every placement the scheduler may choose lets every pod run; else the failing path."""
    seen: set[tuple[Any, ...]] = set()

    def explore(index: int, state: Cluster, path: list[str]) -> str | None:
        key = _state_key(index, state)
        if key in seen:
            return None
        seen.add(key)
        if index == len(ops):
            return None
        op = ops[index]
        if op.kind == "wedged":
            return " → ".join([*path, f"[{op.step}] {op.pod}: `pulumi up` re-awaits the failed Job and fails at once"])
        if op.kind != "create":
            state = state.copy()
            if op.kind == "cordon":
                state.cordon(op.pod)
            elif op.kind == "evict":
                state.evict(op.pod)
            elif op.kind in ("complete", "fail"):
                next(pod for pod in state.pods if pod.name == op.pod).phase = "Succeeded" if op.kind == "complete" else "Failed"
            else:
                state.pods = [pod for pod in state.pods if pod.name != op.pod]
            return explore(index + 1, state, path)
        nodes = state.feasible_nodes(op.namespace, op.labels or {}, op.spec or {})
        if not nodes:
            return " → ".join([*path, f"[{op.step}] {op.pod}: no node can take it (Pending)"])
        for node in nodes:
            conflict = state.attach_conflict(op.spec or {}, node)
            if conflict:
                return " → ".join([*path, f"[{op.step}] {op.pod} on {node.name}: {conflict}"])
            placed = state.copy()
            placed.place(op.pod, op.namespace, op.labels or {}, op.spec or {}, node)
            failure = explore(index + 1, placed, [*path, f"[{op.step}] {op.pod} on {node.name}"])
            if failure:
                return failure
        return None

    return explore(0, cluster, [])


def volumes_for(claim: str, access_modes: tuple[str, ...], storage_class: Any) -> list[dict[str, Volume]]:
    """The volume as each possible provisioning leaves it before any pod: one per Immediate domain."""
    if storage_class.binding == "Immediate" and storage_class.topology_key:
        return [
            {claim: Volume(claim, access_modes, storage_class, (storage_class.topology_key, domain), True)}
            for domain in storage_class.immediate_domains
        ]
    bound = storage_class.binding == "Immediate"
    return [{claim: Volume(claim, access_modes, storage_class, None, bound)}]
