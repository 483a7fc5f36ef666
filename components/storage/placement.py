"""Where the pods that mount the model volume may run: the server's and the download Jobs' placement.

Pure functions over plain data, so the rules can be read and tested apart from Pulumi.

Why the Jobs get the server's placement by default: the Job is usually the volume's first
consumer. With a WaitForFirstConsumer class the volume is provisioned in the topology of the
node the first consumer is scheduled on (kubernetes/website,
content/en/docs/concepts/storage/storage-classes.md, "Volume Binding Mode"), so a Job free to run
on any node can bind the volume in a zone, or on a node, where the GPU pods never run. It must also
tolerate what the server tolerates, or a cluster whose every node is tainted never runs it.

Why pods of a single-node volume carry a required pod affinity to each other: a ReadWriteOnce
volume is attached to one node at a time (the attach/detach controller refuses a second node
unless the access modes include ReadWriteMany or ReadOnlyMany: kubernetes/kubernetes,
pkg/volume/util/util.go, `IsMultiAttachAllowed`, reported by
pkg/controller/volume/attachdetach/reconciler/reconciler.go, `reportMultiAttachError`). A
download Job started while the server runs (a model or adapter change) must therefore land on the
server's node. Every pod mounting the claim carries the label `vllm-serving/claim: <claim>` and a
required podAffinity term selecting that label with topologyKey kubernetes.io/hostname:
- while such a pod runs, the scheduler places the next one on its node
  (pkg/scheduler/framework/plugins/interpodaffinity/filtering.go: `satisfyPodAffinity` in older
  releases, now `nodeTopologyMatchesAffinity` and `nodePodsSatisfyAffinity`);
- when none runs, the first pod of the group may go to any node, because it matches its own term:
  "This pod may be the first pod in a series that have affinity to themselves" (same file,
  `satisfiesSelfAffinityCheck`: no existing pod matches and `podMatchesAllAffinityTerms` holds);
- finished pods do not count: the scheduler's pod informer lists only non-terminal pods
  (pkg/scheduler/scheduler.go, `newPodInformer`, field selector
  status.phase!=Succeeded,status.phase!=Failed), so a completed Job never pins the server.

Why the first download of a new single-node volume reserves the server's resources: a node
selector keeps the Job on GPU nodes, not on one where the server fits. A Job landing on a GPU node
whose GPUs other workloads hold binds a WaitForFirstConsumer volume there (or in its zone), and the
server waits Pending until they leave. So on a stack that never deployed, the model's download
Job gets an init container that requests exactly the server container's resources (cpu, memory,
GPUs) and exits at once: a pod's request is the larger of its containers' sum and any init
container's (kubernetes/kubernetes pkg/api/v1/resource/helpers.go, `PodRequests`), and the scheduler
holds it for the pod's whole life, so the Job only runs, and binds the volume, on a node that has
room for the server, and keeps that room until the weights are in. The server's pod is created once
the Job has completed and freed it. Only then: every later download runs while the server holds its
GPUs, beside it (the claim's pod affinity), where a second reservation would never fit. "Never
deployed" is read from the stack's own outputs (rename_guard.never_deployed: there are none): an
existing stack, or one whose outputs cannot be read, gets no reservation; its volume is bound already.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import SINGLE_NODE_ACCESS_MODES, ServingConfig

CLAIM_LABEL = "vllm-serving/claim"
HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"
MAX_LABEL_VALUE = 63


@dataclass(frozen=True)
class PodPlacement:
    """The scheduling fields of one pod template, in Kubernetes' own (camelCase) field names."""

    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] = field(default_factory=dict)
    # Labels the pod must carry for the affinity to select it.
    labels: dict[str, str] = field(default_factory=dict)


def single_node(access_modes: Sequence[str]) -> bool:
    """Whether the volume can be used from one node only (every mode is ReadWriteOnce or ReadWriteOncePod)."""
    return all(mode in SINGLE_NODE_ACCESS_MODES for mode in access_modes)


def claim_label_value(claim_name: str) -> str:
    """The claim's name as a label value: itself when it fits 63 characters, else a prefix and a hash.

    A claim name is a DNS subdomain (up to 253 characters of [a-z0-9.-]); those characters are
    valid in a label value, only the length can be too much.
    """
    if len(claim_name) <= MAX_LABEL_VALUE:
        return claim_name
    digest = hashlib.sha256(claim_name.encode()).hexdigest()[:10]
    return f"{claim_name[: MAX_LABEL_VALUE - len(digest) - 1]}-{digest}"


def _with_claim_affinity(affinity: dict[str, Any], label_value: str) -> dict[str, Any]:
    """The user's affinity plus a required term putting this pod beside the claim's running pods."""
    merged = copy.deepcopy(affinity)
    pod_affinity = merged.setdefault("podAffinity", {})
    terms = pod_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", [])
    terms.append({
        "labelSelector": {"matchLabels": {CLAIM_LABEL: label_value}},
        "topologyKey": HOSTNAME_TOPOLOGY,
    })
    return merged


def pod_placement(
    node_selector: dict[str, str],
    tolerations: list[dict[str, Any]],
    affinity: dict[str, Any],
    claim_name: str,
    access_modes: Sequence[str],
) -> PodPlacement:
    """A pod's placement: the given one, plus the claim's pod affinity for a single-node volume."""
    if not single_node(access_modes):
        return PodPlacement(dict(node_selector), list(tolerations), copy.deepcopy(affinity))
    value = claim_label_value(claim_name)
    return PodPlacement(
        dict(node_selector), list(tolerations), _with_claim_affinity(affinity, value), {CLAIM_LABEL: value}
    )


def with_overrides(
    default: tuple[dict[str, str], list[dict[str, Any]], dict[str, Any]],
    overrides: tuple[dict[str, str] | None, list[dict[str, Any]] | None, dict[str, Any] | None],
) -> tuple[dict[str, str], list[dict[str, Any]], dict[str, Any]]:
    """Each override that is set (not None, even when empty) replaces its default as a whole."""
    return tuple(default_value if override is None else override for default_value, override in zip(default, overrides, strict=False))  # type: ignore[return-value]


def _server_fields(config: ServingConfig) -> tuple[dict[str, str], list[dict[str, Any]], dict[str, Any]]:
    server = config.server
    tolerations = [toleration.model_dump(exclude_defaults=True) for toleration in server.tolerations]
    return dict(server.nodeSelector), tolerations, dict(server.affinity)


def server_placement(config: ServingConfig) -> PodPlacement:
    return pod_placement(*_server_fields(config), config.claim_name, config.model.volume.accessModes)


def node_placement(config: ServingConfig) -> PodPlacement:
    """The server's nodes, without the claim's pod affinity: for pods that never mount the claim (the
    image pre-pull DaemonSet). They must not carry the claim label, or a download Job could follow one
    to a node the volume is not attached to; and a required affinity to the claim's pods would keep
    them off every node where none runs."""
    return PodPlacement(*_server_fields(config))


def download_placement(config: ServingConfig) -> PodPlacement:
    """The download Jobs' placement: the server's, with each `download.*` key that is set in its place."""
    download = config.download
    tolerations = (
        None if download.tolerations is None
        else [toleration.model_dump(exclude_defaults=True) for toleration in download.tolerations]
    )
    fields = with_overrides(_server_fields(config), (download.nodeSelector, tolerations, download.affinity))
    return pod_placement(*fields, config.claim_name, config.model.volume.accessModes)


def unconstrained_binding_warning(config: ServingConfig, reserved: bool = False) -> str | None:
    """A warning when a new single-node volume may be bound where the GPU pods cannot follow.

    The download Job is the new volume's first consumer. With no node constraint it may run on a
    CPU node; a WaitForFirstConsumer volume is then provisioned in that node's zone (or on that
    node, for local storage), where no GPU node may exist, and the server waits Pending. reserved:
    the Job reserves the server's resources (reserves_server_resources), so it runs on a GPU node.
    """
    volume = config.model.volume
    if reserved or volume.existingClaim or not single_node(volume.accessModes):
        return None
    placement = download_placement(config)
    if placement.node_selector or placement.affinity.get("nodeAffinity"):
        return None
    return (
        f"model.volume: the new {volume.accessModes[0]} volume is bound where the download Job first runs, "
        "and nothing restricts that Job to GPU nodes (its nodeSelector and node affinity, from server.* or "
        "download.*, are empty). "
        "With a WaitForFirstConsumer storage class the volume may be provisioned in a zone (or, for local "
        "storage, on a node) without GPUs, and the server would stay Pending. Set server.nodeSelector to a "
        "label of your GPU nodes (e.g. nvidia.com/gpu.present: \"true\" where GPU feature discovery runs)."
    )


def reserves_server_resources(config: ServingConfig, never_deployed: bool) -> bool:
    """Whether the model's download Job reserves the server's resources (see the module's docstring):
    a stack that never deployed, a new single-node volume the Job fills, and the Job placed as the
    server is (a `download.*` placement override says the Job belongs elsewhere: it is left alone)."""
    volume, download = config.model.volume, config.download
    overridden = any(value is not None for value in (download.nodeSelector, download.tolerations, download.affinity))
    return (
        never_deployed and bool(config.model.source) and not volume.existingClaim
        and single_node(volume.accessModes) and not overridden
    )
