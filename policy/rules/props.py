"""Reading a resource's props: its pod spec, its containers, and their command lines.

Props may be plain dicts and lists (tests) or pulumi_policy's read-only proxies
(a Mapping and a Sequence that raise on values unknown during preview), so
only the abstract collection types are relied on, and only the fields a check
needs are read: touching an unrelated unknown value would turn the whole check
into a "can't run during preview" advisory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

Props = Mapping[str, Any]
Check = Callable[[str, Props], list[str]]

# Where each workload kind keeps its pod spec. Deployments, Jobs and Pods are what
# this project creates; the other controllers are listed so that moving the server
# to one of them cannot step around the pack.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

# Workloads with more than one pod template: a LeaderWorkerSet (server.nodes > 1) has a leader's
# and a worker's, each checked like a Deployment's.
GROUP_POD_SPEC_PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet": {
        "leader": ("spec", "leaderWorkerTemplate", "leaderTemplate", "spec"),
        "worker": ("spec", "leaderWorkerTemplate", "workerTemplate", "spec"),
    },
}

PVC_TYPE = "kubernetes:core/v1:PersistentVolumeClaim"


GPU_RESOURCE = "nvidia.com/gpu"

# Set by the program on a claim it creates, when it knows how big the model is.
MODEL_BYTES_ANNOTATION = "vllm-serving/model-bytes"
# ...and how many copies of it the claim holds at once during a model change (1 when absent).
MODEL_COPIES_ANNOTATION = "vllm-serving/model-copies"


# Shell words: a `sh -c "... vllm serve ..."` script is split the way a shell would, roughly.
WORD_SEPARATORS = re.compile(r"[\s;&|()<>'\"`]+")
# Arguments, keeping $(VAR) references whole.
ARG_SEPARATORS = re.compile(r"[\s'\"]+")


def get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else ()


def strings(value: Any) -> list[str]:
    return [item for item in as_list(value) if isinstance(item, str)]


def split_words(values: Sequence[str], separators: re.Pattern[str] = WORD_SEPARATORS) -> list[str]:
    return [word for value in values for word in separators.split(value) if word]


def pod_spec(resource_type: str, props: Props) -> Mapping[str, Any] | None:
    path = POD_SPEC_PATHS.get(resource_type)
    spec = get(props, *path) if path else None
    return spec if isinstance(spec, Mapping) else None


def _pod_specs(resource_type: str, props: Props) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(prefix for messages, pod spec) for each pod template of a workload."""
    spec = pod_spec(resource_type, props)
    if spec is not None:
        yield "", spec
    for role, path in GROUP_POD_SPEC_PATHS.get(resource_type, {}).items():
        spec = get(props, *path)
        if isinstance(spec, Mapping):
            yield f"{role} ", spec


def containers(resource_type: str, props: Props) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(label for messages, container) for every container and init container of a workload."""
    for prefix, spec in _pod_specs(resource_type, props):
        for field, what in (("initContainers", "init container"), ("containers", "container")):
            for index, container in enumerate(as_list(spec.get(field))):
                if isinstance(container, Mapping):
                    name = container.get("name")
                    label = f"{what} {name!r}" if isinstance(name, str) and name else f"{field}[{index}]"
                    yield prefix + label, container
