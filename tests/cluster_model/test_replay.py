"""The program's real manifests, replayed through first deploy, model change, replica change and adapter
change on modelled clusters, for each access mode: every pod must be placeable and able to mount its
volume at every step, whichever feasible node the scheduler picks. Also: a failed download then `up`,
other tenants holding GPUs at the first download, a multi-node group with a cache claim, and a node
drain during a download (docs/failures.md)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
from typing import Any

import pytest

from components.config import ConfigError
from tests.conftest import HF_MODEL, engine_config, merged, render_values
from vllm_serving.render import render_config

from .model import GPU, HOSTNAME, ZONE, Cluster, Node, Pod, StorageClass, Taint, Volume
from .pulumi_steps import gpus_needed_at_once, job_step, replace_order
from .replay import Op, lifecycle_ops, replay, volumes_for

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
def _render(values_json: str, deployed: bool):
    values = json.loads(values_json)
    # A stack that deployed before has its servedModelName output (rename_guard): the model's name.
    previous = {"servedModelName": values["model"]["deployName"]} if deployed else None
    return render_config(engine_config(values), [], "test", previous_outputs=previous)


def render(values: dict[str, Any], deployed: bool = False):
    """The stack as `pulumi up` renders it: on a stack that never deployed, or one that did."""
    return _render(json.dumps(values, sort_keys=True), deployed)


def rendered_steps(steps: list[tuple[str, dict[str, Any]]], deployed_from: int = 1) -> list[tuple[str, Any]]:
    """Each step's rendering; the stack has deployed from step `deployed_from` on (the first `up`
    that completed exports servedModelName)."""
    return [(name, render(values, index >= deployed_from)) for index, (name, values) in enumerate(steps)]


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


def failure_of(
    cluster: str, steps: list[tuple[str, dict[str, Any]]], volumes: list[dict[str, Volume]], failing: frozenset[str] = frozenset()
) -> str | None:
    # A failed first `up` exports nothing: the stack has deployed from the first step that completed.
    completed = next(index for index, (name, _) in enumerate(steps) if name not in failing)
    ops = lifecycle_ops(rendered_steps(steps, completed + 1), failing)
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
def test_without_a_gpu_node_selector_the_first_download_still_binds_the_volume_where_the_server_fits(storage, cluster, caplog):
    # The first Job reserves the server's GPUs: it cannot run on a CPU node (or in a CPU-only zone),
    # so there is nothing to warn about.
    steps = download_stack(["ReadWriteOnce"], storage, gpu_selector=False)
    volumes = volumes_for("codellama-7b-model", ("ReadWriteOnce",), storage_class(storage, cluster))
    assert failure_of(cluster, steps, volumes) is None
    assert binding_warnings(steps[0][1], caplog) == 0


@pytest.mark.parametrize(("storage", "cluster"), [("local-wffc", "one-zone"), ("block-wffc", "three-zones")])
def test_a_download_placement_override_without_a_gpu_selector_can_bind_where_no_gpu_is_and_the_program_warns(storage, cluster, caplog):
    # A download.* placement override opts out of the reservation: the Job may then bind the volume on a
    # CPU node (or in a CPU-only zone), where the server can never mount it; the program warns.
    override = {"download": {"tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]}}
    steps = [(name, merged(values, override)) for name, values in download_stack(["ReadWriteOnce"], storage, gpu_selector=False)]
    volumes = volumes_for("codellama-7b-model", ("ReadWriteOnce",), storage_class(storage, cluster))
    failure = failure_of(cluster, steps, volumes)
    assert failure is not None and "[first deploy]" in failure and "Pending" in failure
    assert binding_warnings(steps[0][1], caplog) == 1
    # With the GPU nodes selected, or a volume any node reaches, there is nothing to warn about.
    assert binding_warnings(merged(steps[0][1], GPU_SELECTOR), caplog) == 0
    assert binding_warnings(merged(download_stack(["ReadWriteMany"], "shared-fs", gpu_selector=False)[0][1], override), caplog) == 0


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


@pytest.mark.parametrize(("modes", "storage"), [(["ReadWriteOnce"], "block-wffc"), (["ReadWriteMany"], "shared-fs")])
def test_the_up_after_a_failed_download_retries_it_and_serves(modes, storage):
    # The Job fails (backoff limit, deadline): that `up` fails and the server is not created. The next
    # `up`, with the same config, must replace the failed Job (same name) instead of re-awaiting it.
    first = download_stack(modes, storage, gpu_selector=True)[0][1]
    steps = [("failed download", first), ("up again", first), ("model change", merged(first, {"model": {"huggingface": {"revision": "v2"}}}))]
    volumes = volumes_for("codellama-7b-model", tuple(modes), storage_class(storage, "one-zone"))
    assert failure_of("one-zone", steps, volumes, frozenset({"failed download"})) is None
    ops = lifecycle_ops(rendered_steps(steps, 2), frozenset({"failed download"}))
    job = next(op.pod for op in ops if op.kind == "fail")
    # The retry deletes the failed Job's pod before the new one starts (the provider's delete-before-replace).
    assert [(op.kind, op.step) for op in ops if op.pod == job] == [
        ("create", "failed download"), ("fail", "failed download"),
        ("delete", "up again"), ("create", "up again"), ("complete", "up again"),
    ]


def test_without_replace_unready_a_failed_download_wedges_every_later_up():
    # What the annotation prevents: pulumi-kubernetes re-awaits the checkpointed failed Job.
    first = download_stack(["ReadWriteOnce"], "block-wffc", gpu_selector=True)[0][1]
    rendering = copy.deepcopy(render(first))
    for job in rendering.by_kind("Job"):
        del job.inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"]
    ops = lifecycle_ops([("failed download", rendering), ("up again", rendering)], frozenset({"failed download"}))
    cluster = Cluster(list(CLUSTERS["one-zone"]), volumes_for("codellama-7b-model", ("ReadWriteOnce",), storage_class("block-wffc", "one-zone"))[0])
    failure = replay(cluster, ops)
    assert failure is not None and "[up again]" in failure and "re-awaits the failed Job" in failure


def test_a_completed_job_is_left_alone_and_a_failed_one_replaced():
    job = {"metadata": {"annotations": {"pulumi.com/replaceUnready": "true"}}}
    assert job_step(job, "Complete") == "none"
    assert job_step(job, None) == "none"  # deleted by its TTL: the provider cannot read it
    assert job_step(job, "Failed") == "replace"
    assert job_step({"metadata": {}}, "Failed") == "reawait"


def tenant_holding_gpus(node: str, gpus: int = 1) -> Pod:
    """Another tenant's running pod that holds a GPU node's GPUs."""
    spec = {"containers": [{"name": "train", "resources": {"limits": {GPU: str(gpus)}}}]}
    return Pod(f"tenant-on-{node}", "other-team", {"app": "training"}, spec, node)


def without_reservation(rendering):
    """The rendering as before the reservation: the download Jobs without their reserving init container."""
    rendering = copy.deepcopy(rendering)
    for job in rendering.by_kind("Job"):
        spec = job.inputs["spec"]["template"]["spec"]
        spec.pop("initContainers", None)
    return rendering


@pytest.mark.parametrize(("storage", "cluster"), [("local-wffc", "one-zone"), ("block-wffc", "three-zones")])
@pytest.mark.parametrize("gpu_selector", [True, False])
def test_the_first_download_never_binds_the_volume_where_other_workloads_hold_the_gpus(storage, cluster, gpu_selector):
    # Another team's pod holds g1's only GPU. The first Job must not bind the volume on g1 (local
    # storage: the server could never follow) or in g1's zone (zonal storage: its only GPU is taken).
    steps = download_stack(["ReadWriteOnce"], storage, gpu_selector=gpu_selector)
    volumes = volumes_for("codellama-7b-model", ("ReadWriteOnce",), storage_class(storage, cluster))[0]
    occupied = Cluster(list(CLUSTERS[cluster]), copy.deepcopy(volumes), [tenant_holding_gpus("g1")])
    ops = lifecycle_ops(rendered_steps(steps))
    assert replay(occupied.copy(), ops) is None
    # Before: a GPU-less Job could land on g1 (with the server's nodeSelector and tolerations), and the
    # server then waited Pending.
    before = lifecycle_ops([(name, without_reservation(rendering)) for name, rendering in rendered_steps(steps)])
    failure = replay(occupied.copy(), before)
    assert failure is not None and "download" in failure.split(" → ")[0] and "on g1" in failure.split(" → ")[0]
    assert "[first deploy]" in failure and "Pending" in failure


def test_only_the_first_download_of_a_new_stack_reserves_and_only_the_model_job():
    values = merged(download_stack(["ReadWriteOnce"], "block-wffc", gpu_selector=True)[0][1], ADAPTERS)
    new, deployed = render(values), render(values, deployed=True)

    def reservation(rendering, job_name_part):
        job = next(job for job in rendering.by_kind("Job") if job_name_part in job.inputs["metadata"]["name"])
        return job, job.inputs["spec"]["template"]["spec"].get("initContainers")

    job, init = reservation(new, "codellama-7b-download-")
    assert init == [{
        "name": "reserve-server-resources", "image": init[0]["image"], "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", ":"],
        "resources": {"requests": {"cpu": "4", "memory": "64Gi", GPU: "1"}, "limits": {"cpu": "4", "memory": "64Gi", GPU: "1"}},
        "securityContext": init[0]["securityContext"],
    }]
    # The server container's resources, as the Deployment renders them.
    assert init[0]["resources"] == new.one("Deployment").inputs["spec"]["template"]["spec"]["containers"][0]["resources"]
    adapter_job, adapter_init = reservation(new, "codellama-7b-download-a0-")
    assert adapter_init is None and new.urn_of(job) in adapter_job.dependencies
    # A stack that deployed before: its volume is bound, its server holds the GPUs, no reservation, and
    # the model's Job keeps the name it always had.
    job_deployed, init_deployed = reservation(deployed, "codellama-7b-download-")
    assert init_deployed is None and job_deployed.inputs["metadata"]["name"] != job.inputs["metadata"]["name"]
    # A volume every node reaches binds nowhere in particular: no reservation.
    rwx = render(merged(values, {"model": {"volume": {"accessModes": ["ReadWriteMany"]}}}))
    assert all(job.inputs["spec"]["template"]["spec"].get("initContainers") is None for job in rwx.by_kind("Job"))


MULTI_NODE = merged(GPU_SELECTOR, {
    "model": merged(HF_MODEL, {"volume": {"accessModes": ["ReadWriteMany"], "storageClass": "shared-fs"}}),
    "server": {"nodes": 2, "compileCache": {"enabled": True, "gpuType": "NVIDIA-A100-SXM4-80GB", "existingClaim": "vllm-cache"}},
})


@pytest.mark.parametrize(("modes", "attaches"), [(["ReadWriteMany"], True), (["ReadWriteOnce"], False)])
def test_a_multi_node_group_with_a_cache_claim_starts_only_when_the_claim_is_read_write_many(modes, attaches):
    # Leader and worker run on different nodes (each takes a node's GPU) and both mount the cache claim
    # read-write: a single-node claim fails the second pod with a Multi-Attach error.
    values = merged(MULTI_NODE, {"server": {"compileCache": {"accessModes": ["ReadWriteMany"]}}})
    ops = lifecycle_ops([("first deploy", render(values))])
    model = volumes_for("codellama-7b-model", ("ReadWriteMany",), storage_class("shared-fs", "one-zone"))[0]
    cache = Volume("vllm-cache", tuple(modes), StorageClass("existing", "Immediate", ZONE), (ZONE, "a"), True)
    failure = replay(Cluster(list(CLUSTERS["one-zone"]), {**model, "vllm-cache": cache}), ops)
    if attaches:
        assert failure is None
    else:
        assert failure is not None and "Multi-Attach error: vllm-cache" in failure
    assert (failure is None) == attaches


@pytest.mark.parametrize(("change", "why"), [
    ({"server": {"nodes": 2}}, "server.nodes 2 puts the pods of each group on different nodes"),
    ({"replicaCount": 2}, "2 replicas may run on different nodes"),
    ({"server": {"rollout": "surge"}}, "server.rollout surge starts each new pod while the old one runs"),
])
def test_a_single_node_cache_claim_with_several_pods_is_refused(change, why):
    base = {
        "model": merged(HF_MODEL, {"volume": {"accessModes": ["ReadWriteMany"]}}),
        "server": {"compileCache": {"enabled": True, "gpuType": "NVIDIA-A100-SXM4-80GB", "existingClaim": "vllm-cache"}},
    }
    values = merged(base, change)
    if "nodes" in change.get("server", {}):
        values = merged(values, {"resources": {"limits": {GPU: 1}}})
    with pytest.raises(ConfigError) as error:
        render_values(values)
    message = str(error.value)
    assert "vllm-serving:server.compileCache.accessModes: ReadWriteOnce lets one node mount the cache claim" in message
    assert why in message and "Use a ReadWriteMany claim" in message
    # ReadWriteMany (as the claim lists it) is accepted; a single pod may use ReadWriteOnce.
    render_values(merged(values, {"server": {"compileCache": {"accessModes": ["ReadWriteMany"]}}}))
    render_values(base)


def test_a_read_only_cache_claim_is_refused_and_the_model_volume_message_names_the_modes():
    values = {
        "model": merged(HF_MODEL, {"volume": {"accessModes": ["ReadWriteMany"]}}),
        "server": {"compileCache": {"enabled": True, "gpuType": "NVIDIA-A100-SXM4-80GB", "existingClaim": "c",
                                    "accessModes": ["ReadOnlyMany"]}},
    }
    with pytest.raises(ConfigError) as error:
        render_values(values)
    assert "server.compileCache.accessModes: a ReadOnlyMany claim cannot hold a cache the server writes" in str(error.value)


@pytest.mark.parametrize("values", [
    {"model": merged(HF_MODEL, {"volume": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}})},
    {"model": {"deployName": "llama", "source": "", "volume": {"existingClaim": "shared", "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}},
     **ADAPTERS},
])
def test_read_write_once_with_read_only_many_and_a_writer_is_refused(values):
    # Treated as several nodes before: replicas spread, no affinity, and the Job's read-write
    # attachment kept the others from attaching.
    with pytest.raises(ConfigError) as error:
        render_values(values)
    message = str(error.value)
    assert "vllm-serving:model.volume.accessModes: ReadWriteOnce with ReadOnlyMany is written on one node only" in message
    assert "Use [ReadWriteOnce]" in message


def test_read_write_once_with_read_only_many_and_nothing_written_serves_from_several_nodes():
    steps = existing_claim_stack(["ReadWriteOnce", "ReadOnlyMany"], 2, with_adapter=False)
    volume = Volume("shared", ("ReadWriteOnce", "ReadOnlyMany"), StorageClass("existing", "Immediate", None), None, True)
    assert failure_of("one-zone", steps, [{"shared": volume}]) is None


@pytest.mark.parametrize("field", [{"namespaceSelector": {}}, {"matchLabelKeys": ["pod-template-hash"]}, {"mismatchLabelKeys": ["x"]}])
def test_an_unmodelled_pod_affinity_term_field_raises_instead_of_being_ignored(field):
    term = {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": HOSTNAME, **field}
    spec = {"containers": [{"name": "c"}], "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}
    with pytest.raises(NotImplementedError, match="pod affinity term fields"):
        Cluster(list(CLUSTERS["one-zone"]), {}).feasible_nodes("default", {"app": "x"}, spec)


def drain_during_a_download(objects_gone: bool) -> list:
    """First deploy, then a model change whose download is running beside the server on g1 when g1 is
    drained: cordoned, both pods evicted, the Job controller and the ReplicaSet create replacements.
    objects_gone: the evicted pods' objects are deleted before the replacements are scheduled (a
    drain whose pods ended; on a dead node only the out-of-service taint does that)."""
    first = download_stack(["ReadWriteOnce"], "block-wffc", gpu_selector=True)[0][1]
    change = merged(first, {"model": {"huggingface": {"revision": "v2"}}})
    ops = lifecycle_ops([("first deploy", render(first))])
    server = next(op for op in ops if op.kind == "create" and "download" not in op.pod)
    job = next(op for op in lifecycle_ops([("model change", render(change, deployed=True))]) if op.kind == "create")
    step = "drain g1"
    ops += [dataclasses.replace(job, step="model change"), Op("cordon", "g1", step), Op("evict", server.pod, step), Op("evict", job.pod, step)]
    if objects_gone:
        ops += [Op("delete", server.pod, step), Op("delete", job.pod, step)]
    return [
        *ops,
        dataclasses.replace(job, pod=f"{job.pod}-replacement", step=step),
        dataclasses.replace(server, pod=f"{server.pod}-replacement", step=step),
    ]


def test_a_drain_during_a_download_pins_the_replacements_to_the_old_node_while_the_old_pods_exist():
    # The terminating pods still match the claim's pod affinity, on a node that takes no new pod.
    cluster = Cluster(list(CLUSTERS["one-zone"]), volumes_for("codellama-7b-model", ("ReadWriteOnce",), storage_class("block-wffc", "one-zone"))[0])
    failure = replay(cluster, drain_during_a_download(objects_gone=False))
    assert failure is not None and failure.endswith("-replacement: no node can take it (Pending)")
    assert "download" in failure.rsplit(" → ", 1)[-1]


@pytest.mark.parametrize("g2_taken", [False, True])
def test_a_drain_during_a_download_lets_the_job_pin_the_old_models_server_where_no_gpu_is_free(g2_taken):
    # Once the old pods are gone, the Job's replacement goes first, anywhere its placement allows in the
    # volume's zone, and the old model's server must follow it: Pending where another workload holds the
    # GPU, until the Job completes (docs/failures.md, "A node drain during a download").
    volumes = volumes_for("codellama-7b-model", ("ReadWriteOnce",), storage_class("block-wffc", "one-zone"))[0]
    cluster = Cluster(list(CLUSTERS["one-zone"]), volumes, [tenant_holding_gpus("g2")] if g2_taken else [])
    failure = replay(cluster, drain_during_a_download(objects_gone=True))
    if not g2_taken:
        assert failure is None
        return
    assert failure is not None and "download" in failure and "-replacement on g2" in failure
    assert failure.endswith("-replacement: no node can take it (Pending)") and "download" not in failure.rsplit(" → ", 1)[-1]


def test_the_leader_worker_set_once_named_like_the_service_is_replaced_old_group_first():
    """A multi-node stack deployed before the LeaderWorkerSet took its `-group` name: `up` replaces it.
    Created first, the new group of 2 × 8 GPUs would wait for the GPUs the old group holds (for the
    whole await timeout); deleted first, it needs the old group's GPUs only."""
    from tests.test_multinode import example_values

    rendering = render_values(example_values())
    resource = next(r for r in rendering.resources if r.inputs.get("kind") == "LeaderWorkerSet")
    new = resource.inputs
    old = merged(new, {"metadata": {"name": example_values()["model"]["deployName"]}})
    order = replace_order(old, new, resource.options["deleteBeforeReplace"])
    assert order == ["delete", "create"]
    template = new["spec"]["leaderWorkerTemplate"]
    per_pod = int(template["leaderTemplate"]["spec"]["containers"][0]["resources"]["limits"][GPU])
    group_gpus = template["size"] * per_pod
    assert gpus_needed_at_once(order, group_gpus, group_gpus) == group_gpus
    assert gpus_needed_at_once(replace_order(old, new, False), group_gpus, group_gpus) == 2 * group_gpus
