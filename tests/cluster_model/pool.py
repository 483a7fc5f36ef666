"""The InferencePool's endpoints while `pulumi up` rolls the server: how many are ready at each step.

An InferencePool's endpoints are the pods its `spec.selector.matchLabels` selects in its namespace,
on its target ports (gateway-api-inference-extension v1.5.0, apix/v1/inferencepool_types.go;
the picker's datastore adds and removes pods as they become ready or go,
pkg/epp/controller/pod_reconciler.go). Pods are taken as ready once placed, as the rollout
replay takes them as available (replay.py, `_rollout_ops`): the count is of the pods the
strategy keeps, which is what a rollout can guarantee; a new pod's load time comes on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import Cluster
from .replay import Op


@dataclass(frozen=True)
class EndpointCount:
    step: str
    op: str
    endpoints: int


def _selects(pool: dict[str, Any], namespace: str, labels: dict[str, str]) -> bool:
    match = pool["spec"]["selector"]["matchLabels"]
    return namespace == pool["metadata"]["namespace"] and all(labels.get(key) == value for key, value in match.items())


def pool_endpoints(cluster: Cluster, ops: list[Op], pool: dict[str, Any]) -> list[EndpointCount]:
    """The pool's ready endpoints after every operation, placing each pod on the first node the
    scheduler's filters leave (replay() checks every other placement). A pod no node takes stays
    Pending and is no endpoint."""
    state = cluster.copy()
    counts = []
    for op in ops:
        if op.kind == "create":
            nodes = state.feasible_nodes(op.namespace, op.labels or {}, op.spec or {})
            if nodes:
                state.place(op.pod, op.namespace, op.labels or {}, op.spec or {}, nodes[0])
        elif op.kind == "complete":
            next(pod for pod in state.pods if pod.name == op.pod).phase = "Succeeded"
        else:
            state.pods = [pod for pod in state.pods if pod.name != op.pod]
        ready = [pod for pod in state.active_pods() if _selects(pool, pod.namespace, pod.labels)]
        counts.append(EndpointCount(op.step, f"{op.kind} {op.pod}", len(ready)))
    return counts
