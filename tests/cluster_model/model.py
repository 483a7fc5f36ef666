"""A small, explicit model of where Kubernetes can place a pod and whether it can then mount its volume.

Only the rules that decide the fate of this program's pods, each with the source it follows
(kubernetes/kubernetes at master unless said otherwise; docs from kubernetes/website):

- resources fit: NodeResourcesFit, pkg/scheduler/framework/plugins/noderesources/fit.go
  (a pod's request is the larger of its containers' sum and any init container,
  pkg/api/v1/resource/helpers.go `PodRequests`);
- taints: TaintToleration filters NoSchedule and NoExecute taints,
  pkg/scheduler/framework/plugins/tainttoleration/taint_toleration.go `Filter`; matching as in
  staging/src/k8s.io/api/core/v1/toleration.go `ToleratesTaint`;
- nodeSelector and required node affinity: pkg/scheduler/framework/plugins/nodeaffinity/node_affinity.go;
  terms are ORed, a term's expressions ANDed (staging/src/k8s.io/component-helpers/scheduling/corev1/
  nodeaffinity/nodeaffinity.go);
- required pod affinity with the self-match rule: pkg/scheduler/framework/plugins/interpodaffinity/
  filtering.go (`satisfyPodAffinity` in older releases; now `nodeTopologyMatchesAffinity`,
  `nodePodsSatisfyAffinity` and `satisfiesSelfAffinityCheck`); terms default to the pod's own namespace;
- finished pods are invisible to the scheduler: pkg/scheduler/scheduler.go `newPodInformer`
  (status.phase!=Succeeded,status.phase!=Failed); a terminating pod (evicted, deleted, on a dead node)
  is not finished: it counts for pod affinity and resources, and keeps its volumes attached, until its
  object is gone;
- a cordoned node (spec.unschedulable, as `kubectl drain` leaves it) takes no new pod:
  pkg/scheduler/framework/plugins/nodeunschedulable/node_unschedulable.go (the program's pods do not
  tolerate node.kubernetes.io/unschedulable);
- volume topology: a bound volume's node affinity must match the node (VolumeBinding,
  pkg/scheduler/framework/plugins/volumebinding/binder.go); Immediate binds at claim creation "without
  knowledge of the Pod's scheduling requirements", WaitForFirstConsumer "conforming to the topology
  that is specified by the Pod's scheduling constraints" (content/en/docs/concepts/storage/storage-classes.md,
  "Volume Binding Mode");
- ReadWriteOncePod: one pod in the whole cluster, refused by the scheduler (VolumeRestrictions,
  pkg/scheduler/framework/plugins/volumerestrictions/volume_restrictions.go);
- ReadWriteOnce: "mounted as read-write by a single node ... can allow multiple pods to access the
  volume when the pods are running on the same node"; ReadOnlyMany/ReadWriteMany: many nodes
  (content/en/docs/concepts/storage/persistent-volumes.md, "Access Modes"). The scheduler does not
  stop a second node: the attach/detach controller does (pkg/volume/util/util.go `IsMultiAttachAllowed`,
  "Multi-Attach error" from pkg/controller/volume/attachdetach/reconciler/reconciler.go), so the pod is
  placed and then never starts.

Anything in a pod spec this model does not know (pod anti-affinity, topology spread) raises, so a
manifest can never pass by being misread.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

GPU = "nvidia.com/gpu"
ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
SINGLE_NODE = ("ReadWriteOnce", "ReadWriteOncePod")


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class Node:
    name: str
    zone: str
    cpu: float
    memory_gi: float
    gpus: int = 0
    taints: tuple[Taint, ...] = ()
    extra_labels: tuple[tuple[str, str], ...] = ()
    unschedulable: bool = False  # cordoned

    @property
    def labels(self) -> dict[str, str]:
        return {HOSTNAME: self.name, ZONE: self.zone, **dict(self.extra_labels)}


@dataclass(frozen=True)
class StorageClass:
    name: str
    binding: str  # "Immediate" or "WaitForFirstConsumer"
    # The node label a provisioned volume is pinned by: ZONE (cloud block storage), HOSTNAME (local
    # storage), or None (a network filesystem reachable from every node).
    topology_key: str | None
    # Immediate: the topology values the provisioner may pick at creation (allowedTopologies).
    immediate_domains: tuple[str, ...] = ()


@dataclass
class Volume:
    claim: str
    access_modes: tuple[str, ...]
    storage_class: StorageClass
    # (key, value) the provisioned volume's node affinity requires; None until bound (or no topology).
    bound_to: tuple[str, str] | None = None
    bound: bool = False


@dataclass
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    spec: dict[str, Any]
    node: str
    phase: str = "Running"  # "Running", "Succeeded" or "Failed": nothing else matters here
    terminating: bool = False  # deleted or evicted, its object not gone yet: still counts everywhere

    @property
    def claims(self) -> set[str]:
        return {v["persistentVolumeClaim"]["claimName"] for v in self.spec.get("volumes", []) if "persistentVolumeClaim" in v}


def _quantity(value: Any) -> float:
    text = str(value)
    for suffix, factor in (("Gi", 1.0), ("Mi", 1 / 1024), ("Ti", 1024.0), ("m", 0.001)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def pod_requests(spec: dict[str, Any]) -> dict[str, float]:
    """cpu (cores), memory (Gi) and GPUs: the sum over containers, or an init container's if larger."""
    def of(container: dict[str, Any]) -> dict[str, float]:
        resources = container.get("resources", {})
        requests = {**resources.get("limits", {}), **resources.get("requests", {})}
        return {name: _quantity(requests.get(key, 0)) for name, key in (("cpu", "cpu"), ("memory", "memory"), ("gpu", GPU))}

    total = {"cpu": 0.0, "memory": 0.0, "gpu": 0.0}
    for container in spec["containers"]:
        for name, value in of(container).items():
            total[name] += value
    for container in spec.get("initContainers", []) or []:
        for name, value in of(container).items():
            total[name] = max(total[name], value)
    return total


def tolerates(tolerations: list[dict[str, Any]], taint: Taint) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.effect:
            continue
        if toleration.get("key") and toleration["key"] != taint.key:
            continue
        if toleration.get("operator", "Equal") == "Exists" or toleration.get("value", "") == taint.value:
            return True
    return False


def _expression_matches(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt") and key in labels:
        number, bound = int(labels[key]), int(values[0])
        return number > bound if operator == "Gt" else number < bound
    if operator in ("Gt", "Lt"):
        return False
    raise NotImplementedError(f"node selector operator {operator}")


def _label_selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    unknown = set(selector) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise NotImplementedError(f"label selector fields {unknown}")
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    return all(_expression_matches(expression, labels) for expression in selector.get("matchExpressions", []))


def node_affinity_matches(spec: dict[str, Any], node: Node) -> bool:
    labels = node.labels
    if any(labels.get(key) != value for key, value in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return True
    return any(
        all(_expression_matches(expression, labels) for expression in term.get("matchExpressions", []))
        and not term.get("matchFields")
        for term in required["nodeSelectorTerms"]
    )


@dataclass
class Cluster:
    nodes: list[Node]
    volumes: dict[str, Volume]
    pods: list[Pod] = field(default_factory=list)

    def copy(self) -> Cluster:
        return copy.deepcopy(self)

    def _node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def active_pods(self) -> list[Pod]:
        """What the scheduler sees: non-terminal pods only (scheduler.go `newPodInformer`)."""
        return [pod for pod in self.pods if pod.phase not in ("Succeeded", "Failed")]

    def _fits(self, spec: dict[str, Any], node: Node) -> bool:
        used = {"cpu": 0.0, "memory": 0.0, "gpu": 0.0}
        for pod in self.active_pods():
            if pod.node == node.name:
                for name, value in pod_requests(pod.spec).items():
                    used[name] += value
        wanted = pod_requests(spec)
        capacity = {"cpu": node.cpu, "memory": node.memory_gi, "gpu": node.gpus}
        return all(used[name] + wanted[name] <= capacity[name] for name in wanted)

    def _pod_affinity_allows(self, namespace: str, labels: dict[str, str], spec: dict[str, Any], node: Node) -> bool:
        affinity = spec.get("affinity") or {}
        if (affinity.get("podAntiAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution"):
            raise NotImplementedError("required pod anti-affinity")
        terms = (affinity.get("podAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []
        if not terms:
            return True
        for term in terms:
            # namespaceSelector, matchLabelKeys, mismatchLabelKeys change which pods a term selects.
            unknown = set(term) - {"labelSelector", "topologyKey", "namespaces"}
            if unknown:
                raise NotImplementedError(f"pod affinity term fields {sorted(unknown)}")

        def matches_all(pod_namespace: str, pod_labels: dict[str, str]) -> bool:
            return all(
                pod_namespace in (term.get("namespaces") or [namespace])
                and _label_selector_matches(term["labelSelector"], pod_labels)
                for term in terms
            )

        if any(term["topologyKey"] not in node.labels for term in terms):
            return False  # "All topology labels must exist on the node."
        matching = [pod for pod in self.active_pods() if matches_all(pod.namespace, pod.labels)]
        if not matching:
            # The first pod of a group with affinity to itself (`satisfiesSelfAffinityCheck`).
            return matches_all(namespace, labels)
        return all(
            any(self._node(pod.node).labels.get(term["topologyKey"]) == node.labels[term["topologyKey"]] for pod in matching)
            for term in terms
        )

    def _volume_allows(self, spec: dict[str, Any], node: Node) -> bool:
        for claim in Pod("", "", {}, spec, "").claims:
            volume = self.volumes[claim]
            if volume.bound_to and node.labels.get(volume.bound_to[0]) != volume.bound_to[1]:
                return False  # VolumeBinding: the volume's node affinity does not match
            if "ReadWriteOncePod" in volume.access_modes and any(claim in pod.claims for pod in self.active_pods()):
                return False  # VolumeRestrictions: ErrReasonReadWriteOncePodConflict
        return True

    def _unschedulable_spec(self, spec: dict[str, Any]) -> None:
        for unknown in ("topologySpreadConstraints", "nodeName"):
            if spec.get(unknown):
                raise NotImplementedError(unknown)

    def feasible_nodes(self, namespace: str, labels: dict[str, str], spec: dict[str, Any]) -> list[Node]:
        """Every node the scheduler's filters leave for this pod."""
        self._unschedulable_spec(spec)
        tolerations = spec.get("tolerations") or []
        if any(toleration.get("key") == "node.kubernetes.io/unschedulable" for toleration in tolerations):
            raise NotImplementedError("a toleration of node.kubernetes.io/unschedulable")
        return [
            node for node in self.nodes
            if not node.unschedulable
            and self._fits(spec, node)
            and all(tolerates(tolerations, taint) for taint in node.taints if taint.effect in ("NoSchedule", "NoExecute"))
            and node_affinity_matches(spec, node)
            and self._pod_affinity_allows(namespace, labels, spec, node)
            and self._volume_allows(spec, node)
        ]

    def attach_conflict(self, spec: dict[str, Any], node: Node) -> str | None:
        """Why the pod's volumes cannot be attached to the node it was placed on, if they cannot."""
        for claim in Pod("", "", {}, spec, "").claims:
            volume = self.volumes[claim]
            if not all(mode in SINGLE_NODE for mode in volume.access_modes):
                continue
            elsewhere = {pod.node for pod in self.active_pods() if claim in pod.claims and pod.node != node.name}
            if elsewhere:
                return f"Multi-Attach error: {claim} ({'/'.join(volume.access_modes)}) is attached to {sorted(elsewhere)}"
        return None

    def bind_on_schedule(self, spec: dict[str, Any], node: Node) -> None:
        """WaitForFirstConsumer: the first pod's node decides the volume's topology."""
        for claim in Pod("", "", {}, spec, "").claims:
            volume = self.volumes[claim]
            if not volume.bound:
                volume.bound = True
                key = volume.storage_class.topology_key
                volume.bound_to = (key, node.labels[key]) if key else None

    def cordon(self, node_name: str) -> None:
        self.nodes = [dataclasses.replace(node, unschedulable=True) if node.name == node_name else node for node in self.nodes]

    def evict(self, pod_name: str) -> None:
        """An eviction (a drain) or a deletion: the pod terminates, its object stays until the kubelet
        confirms, which a dead node never does."""
        next(pod for pod in self.pods if pod.name == pod_name).terminating = True

    def place(self, name: str, namespace: str, labels: dict[str, str], spec: dict[str, Any], node: Node) -> Pod:
        self.bind_on_schedule(spec, node)
        pod = Pod(name, namespace, dict(labels), spec, node.name)
        self.pods.append(pod)
        return pod
