"""The program's real manifests, replayed through first deploy, model change, replica change and adapter
change on modelled clusters, for each access mode: every pod must be placeable and able to mount its
volume at every step, whichever feasible node the scheduler picks."""

from __future__ import annotations

import copy
import functools
import json
import logging
from typing import Any

import pytest

from components.config import ConfigError
from tests.conftest import HF_MODEL, render_values

from .model import GPU, HOSTNAME, ZONE, Cluster, Node, StorageClass, Taint, Volume
from .replay import lifecycle_ops, replay, volumes_for

GPU_TAINT = Taint(GPU, "present", "NoSchedule")
GPU_LABEL = ("nvidia.com/gpu.present", "true")
GPU_SELECTOR = {"server": {"nodeSelector": dict([GPU_LABEL])}}


def gpu_node(name: str, zone: str, taints: tuple[Taint, ...] = (GPU_TAINT,)) -> Node:
    return Node(name, zone, cpu=32, memory_gi=256, gpus=1, taints=taints, extra_labels=(GPU_LABEL,))


def cpu_node(name: str, zone: str) -> Node:
    return Node(name, zone, cpu=8, memory_gi=32)


# GPU nodes carry the nvidia.com/gpu:NoSchedule taint (as GPU node pools do by default); CPU nodes none.
CLUSTERS = {
    "one-zone": [gpu_node("g1", "a"), gpu_node("g2", "a"), cpu_node("c1", "a"), cpu_node("c2", "a")],
    # GPUs in zones a and b only; a CPU-only zone c.
    "three-zones": [gpu_node("g1", "a"), gpu_node("g2", "b"), cpu_node("c1", "a"), cpu_node("c2", "b"), cpu_node("c3", "c")],
    # Every node tainted: nothing without the server's tolerations can run.
    "all-tainted": [gpu_node("g1", "a"), gpu_node("g2", "b")],
}
GPU_ZONES = {"one-zone": ("a",), "three-zones": ("a", "b"), "all-tainted": ("a", "b")}


def storage_class(kind: str, cluster: str) -> StorageClass:
    return {
        # Cloud block storage (EBS, PD, Azure Disk), bound in the first consumer's zone.
        "block-wffc": StorageClass("block-wffc", "WaitForFirstConsumer", ZONE),
        # Node-local storage (local-path, TopoLVM): bound to the first consumer's node.
        "local-wffc": StorageClass("local-wffc", "WaitForFirstConsumer", HOSTNAME),
        # Block storage bound at creation, in a zone the class's allowedTopologies permit (the GPU zones).
        "block-immediate": StorageClass("block-immediate", "Immediate", ZONE, GPU_ZONES[cluster]),
        # A network filesystem (NFS, CephFS) every node reaches.
        "shared-fs": StorageClass("shared-fs", "Immediate", None),
    }[kind]


@functools.cache
def _render(values_json: str):
    return render_values(json.loads(values_json))


def render(values: dict[str, Any]):
    return _render(json.dumps(values, sort_keys=True))


def merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in change.items():
        result[key] = merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) else value
    return result


ADAPTERS = {"lora": {"adapters": [{"name": "sql", "source": "huggingface", "huggingface": {"id": "org/sql-lora"}}]}}


def download_stack(modes: list[str], storage: str, gpu_selector: bool) -> list[tuple[str, dict[str, Any]]]:
    """The four lifecycle steps of a stack that downloads its model into a new volume."""
    first = {"model": merged(HF_MODEL, {"volume": {"accessModes": modes, "storageClass": storage}})}
    if gpu_selector:
        first = merged(first, GPU_SELECTOR)
    model_change = merged(first, {"model": {"huggingface": {"revision": "v2"}}})
    multi_node = not all(mode in ("ReadWriteOnce", "ReadWriteOncePod") for mode in modes)
    # A single-node volume admits one replica (the config refuses more): scale to zero and back.
    replicas = [("replica change", merged(model_change, {"replicaCount": 2}))] if multi_node else [
        ("scale to zero", merged(model_change, {"replicaCount": 0})),
        ("scale back", merged(model_change, {"replicaCount": 1})),
    ]
    adapter = merged(replicas[-1][1], ADAPTERS)
    return [("first deploy", first), ("model change", model_change), *replicas, ("adapter change", adapter)]


def existing_claim_stack(modes: list[str], replicas: int, with_adapter: bool) -> list[tuple[str, dict[str, Any]]]:
    """A pre-filled claim, no download: a new sub-path stands for a model change."""
    model = {"deployName": "llama", "source": "", "volume": {"existingClaim": "shared", "accessModes": modes, "subPath": "m1"}}
    first = {"model": model, **GPU_SELECTOR}
    model_change = merged(first, {"model": {"volume": {"subPath": "m2"}}})
    steps = [("first deploy", first), ("model change", model_change)]
    if replicas > 1:
        steps.append(("replica change", merged(model_change, {"replicaCount": replicas})))
    else:
        steps += [("scale to zero", merged(model_change, {"replicaCount": 0})),
                  ("scale back", merged(model_change, {"replicaCount": 1}))]
    if with_adapter:
        steps.append(("adapter change", merged(steps[-1][1], ADAPTERS)))
    return steps


def failure_of(cluster: str, steps: list[tuple[str, dict[str, Any]]], volumes: list[dict[str, Volume]]) -> str | None:
    ops = lifecycle_ops([(name, render(values)) for name, values in steps])
    for volume_set in volumes:
        failure = replay(Cluster(list(CLUSTERS[cluster]), copy.deepcopy(volume_set)), ops)
        if failure:
            return failure
    return None


DOWNLOAD_CASES = [
    (modes, storage, cluster)
    for modes, storages in ((["ReadWriteOnce"], ("block-wffc", "local-wffc", "block-immediate")), (["ReadWriteMany"], ("shared-fs",)))
    for storage in storages
    for cluster in CLUSTERS
]


@pytest.mark.parametrize(("modes", "storage", "cluster"), DOWNLOAD_CASES, ids=lambda v: v if isinstance(v, str) else "+".join(v))
def test_every_step_of_a_downloading_stack_places_and_mounts_every_pod(modes, storage, cluster):
    steps = download_stack(modes, storage, gpu_selector=True)
    volumes = volumes_for("codellama-7b-model", tuple(modes), storage_class(storage, cluster))
    assert failure_of(cluster, steps, volumes) is None


@pytest.mark.parametrize("cluster", ["one-zone", "all-tainted"])
def test_the_default_stack_without_a_gpu_node_selector_works_where_the_zone_cannot_differ(cluster):
    # One zone (or GPU nodes only): a block volume bound wherever the Job lands is reachable by the server.
    steps = download_stack(["ReadWriteOnce"], "block-wffc", gpu_selector=False)
    volumes = volumes_for("codellama-7b-model", ("ReadWriteOnce",), storage_class("block-wffc", cluster))
    assert failure_of(cluster, steps, volumes) is None


@pytest.mark.parametrize(("storage", "cluster"), [("local-wffc", "one-zone"), ("block-wffc", "three-zones")])
def test_without_a_gpu_node_selector_the_volume_can_bind_where_no_gpu_is_and_the_program_warns(storage, cluster, caplog):
    # What the README and the warning say: the Job may bind the volume on a CPU node (or in a CPU-only
    # zone), and the server can then never mount it. server.nodeSelector closes it (test above).
    steps = download_stack(["ReadWriteOnce"], storage, gpu_selector=False)
    volumes = volumes_for("codellama-7b-model", ("ReadWriteOnce",), storage_class(storage, cluster))
    failure = failure_of(cluster, steps, volumes)
    assert failure is not None and "[first deploy]" in failure and "Pending" in failure
    assert binding_warnings(steps[0][1], caplog) == 1
    # With the GPU nodes selected, or a volume any node reaches, there is nothing to warn about.
    assert binding_warnings(merged(steps[0][1], GPU_SELECTOR), caplog) == 0
    assert binding_warnings(download_stack(["ReadWriteMany"], "shared-fs", gpu_selector=False)[0][1], caplog) == 0


def binding_warnings(values: dict[str, Any], caplog) -> int:
    """How many times the program warns that the new volume may bind away from the GPUs."""
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        render_values(values)  # not the cached render: the warning is logged while the program runs
    return sum("is bound where the download Job first runs" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(("modes", "replicas", "bound_to"), [
    (["ReadOnlyMany"], 2, None),
    (["ReadWriteMany"], 2, None),
    (["ReadWriteOnce"], 1, (ZONE, "a")),
    (["ReadWriteOncePod"], 1, (ZONE, "a")),
])
@pytest.mark.parametrize("cluster", ["one-zone", "all-tainted"])
def test_an_existing_claim_without_download_places_and_mounts_every_pod(modes, replicas, bound_to, cluster):
    # ReadWriteOncePod with adapters would download: refused by config (test below), so not replayed;
    # so is a download into ReadOnlyMany alone (tests/test_surface_config.py).
    with_adapter = modes not in (["ReadWriteOncePod"], ["ReadOnlyMany"])
    steps = existing_claim_stack(modes, replicas, with_adapter)
    volume = Volume("shared", tuple(modes), StorageClass("existing", "Immediate", bound_to and bound_to[0]), bound_to, True)
    assert failure_of(cluster, steps, [{"shared": volume}]) is None


@pytest.mark.parametrize("values", [
    {"model": merged(HF_MODEL, {"volume": {"accessModes": ["ReadWriteOncePod"]}})},
    {"model": {"deployName": "llama", "source": "", "volume": {"existingClaim": "shared", "accessModes": ["ReadWriteOncePod"]}},
     **ADAPTERS},
])
def test_read_write_once_pod_with_a_download_is_refused_by_config(values):
    with pytest.raises(ConfigError) as error:
        render_values(values)
    message = str(error.value)
    assert "vllm-serving:model.volume.accessModes: ReadWriteOncePod admits one pod at a time" in message
    assert "Use ReadWriteOnce" in message and 'existingClaim with model.source ""' in message
