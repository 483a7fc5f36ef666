"""server.nodes > 1: the server as a LeaderWorkerSet, its launch, its checks and how Pulumi waits for it."""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from components.config import parse_config
from tests.conftest import assert_schema_valid, env_of, manifest, problems, render_values, stack_file_values
from vllm_serving.render import render
from vllm_serving.stack_file import STACKS_DIR
from vllm_serving.validate import validate_manifests

EXAMPLE = STACKS_DIR / "Pulumi.llama-3-1-405b-multinode.yaml"
RWX_MODEL = {
    "deployName": "big",
    "volume": {"size": "1000Gi", "accessModes": ["ReadWriteMany"]},
    "source": "huggingface",
    "huggingface": {"id": "meta-llama/Llama-3.1-405B-Instruct-FP8"},
}
TWO_NODES = {"model": RWX_MODEL, "resources": {"limits": {"nvidia.com/gpu": 8}}, "server": {"nodes": 2}}


def example_values() -> dict[str, Any]:
    """The example stack's values, without the `vllm-serving:` prefix."""
    return stack_file_values(EXAMPLE)


def with_values(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    values = copy.deepcopy(base)
    for path, value in changes.items():
        node, *parents, leaf = [values, *path.split("__")]
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return values


def templates(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The rendered LeaderWorkerSet and its leader's and worker's pod specs."""
    lws = manifest(render_values(values), "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    return lws, template["leaderTemplate"]["spec"], template["workerTemplate"]["spec"]


def test_two_nodes_render_a_leader_worker_set_instead_of_a_deployment():
    rendering = render_values(TWO_NODES)
    assert rendering.by_kind("Deployment") == []
    lws = manifest(rendering, "LeaderWorkerSet")
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    assert lws["spec"]["replicas"] == 1
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2
    assert template["restartPolicy"] == "RecreateGroupOnPodRestart"
    # One group: server.rollout auto is recreate, every group down first.
    assert lws["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"] == {"maxUnavailable": "100%", "maxSurge": 0}
    assert_schema_valid(rendering)


def test_the_shipped_crd_schema_catches_a_mistake_inside_a_worker_template():
    lws = manifest(render_values(TWO_NODES), "LeaderWorkerSet")
    lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["volumeMount"] = []
    lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Always"
    failures = validate_manifests([lws])
    assert any("unknown field(s) 'volumeMount'" in line for line in failures), failures
    assert any("restartPolicy" in line for line in failures), failures


def test_leader_serves_and_workers_join_it_from_the_lws_environment():
    _, leader, worker = templates(TWO_NODES)
    leader_container, worker_container = leader["containers"][0], worker["containers"][0]
    assert leader_container["command"] == worker_container["command"] == ["vllm", "serve"]
    shape = ["--distributed-executor-backend=mp", "--nnodes=2", "--master-addr=$(LWS_LEADER_ADDRESS)", "--master-port=29501"]
    for argv in (leader_container["args"], worker_container["args"]):
        assert set(shape) <= set(argv)
        # Tensor parallel within a node, pipeline parallel across nodes.
        assert "--tensor-parallel-size=8" in argv and "--pipeline-parallel-size=2" in argv
    assert "--node-rank=0" in leader_container["args"] and "--headless" not in leader_container["args"]
    assert "--node-rank=$(LWS_WORKER_INDEX)" in worker_container["args"] and "--headless" in worker_container["args"]


def test_only_the_leader_has_probes_and_the_port_and_every_pod_has_gpus_shm_and_the_model():
    _, leader, worker = templates(TWO_NODES)
    for key in ("startupProbe", "readinessProbe", "livenessProbe", "ports"):
        assert key in leader["containers"][0] and key not in worker["containers"][0]
    for spec in (leader, worker):
        container = spec["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]
        assert any(mount["mountPath"] == "/model" for mount in container["volumeMounts"])
        assert [c["name"] for c in spec["initContainers"]] == ["wait-for-model"]
        assert "hostNetwork" not in spec


def test_the_service_selects_the_leader_only():
    service = manifest(render_values(TWO_NODES), "Service")
    assert service["spec"]["selector"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"


@pytest.mark.parametrize("replicas", [1, 3])
def test_pulumi_waits_for_the_available_condition_as_long_as_for_a_deployment(replicas):
    values = with_values(TWO_NODES, replicaCount=replicas, server__startupTimeoutSeconds=3600)
    lws, _, _ = templates(values)
    annotations = lws["metadata"]["annotations"]
    assert annotations["pulumi.com/waitFor"] == "condition=Available"
    one_node = with_values(values, server__nodes=1)
    deployment_wait = render_values(one_node).one("Deployment").options["customTimeouts"]["create"]
    assert f"{int(annotations['pulumi.com/timeoutSeconds']) // 60}m" == deployment_wait


@pytest.mark.parametrize(("rollout", "unavailable", "surge"), [
    ("recreate", "100%", 0), ("oneAtATime", 1, 0), ("surge", 0, 1),
])
def test_server_rollout_maps_onto_the_groups(rollout, unavailable, surge):
    lws, _, _ = templates(with_values(TWO_NODES, replicaCount=2, server__rollout=rollout))
    assert lws["spec"]["rolloutStrategy"] == {
        "type": "RollingUpdate", "rollingUpdateConfiguration": {"maxUnavailable": unavailable, "maxSurge": surge}
    }


def test_no_replicas_skip_the_wait():
    lws, _, _ = templates(with_values(TWO_NODES, replicaCount=0))
    assert lws["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


def test_network_knobs_reach_every_pod():
    network = {"socketInterface": "eth1", "rdmaResource": "rdma/ib", "rdmaCount": 2, "hostNetwork": True}
    _, leader, worker = templates(with_values(TWO_NODES, server__network=network))
    for spec in (leader, worker):
        container = spec["containers"][0]
        assert env_of(container)["NCCL_SOCKET_IFNAME"] == env_of(container)["GLOO_SOCKET_IFNAME"] == "eth1"
        assert container["resources"]["limits"]["rdma/ib"] == container["resources"]["requests"]["rdma/ib"] == "2"
        assert container["securityContext"]["capabilities"]["add"] == ["IPC_LOCK"]
        assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"


def test_explicit_parallelism_must_use_every_gpu_of_the_group():
    found = problems(with_values(TWO_NODES, engine={"tensorParallelSize": 8, "pipelineParallelSize": 1}))
    assert found["engine.tensorParallelSize"] == (
        "tensor parallel 8 × pipeline parallel 1 = 8, but each replica gets 8 GPUs "
        '(resources.limits."nvidia.com/gpu") × 2 nodes (server.nodes) = 16 GPUs; the product must equal the GPUs'
    )
    # Tensor parallel across both nodes is a choice, not a mistake.
    config = parse_config(with_values(TWO_NODES, engine={"tensorParallelSize": 16, "pipelineParallelSize": 1}))
    assert (config.tensor_parallel_size, config.pipeline_parallel_size) == (16, 1)


@pytest.mark.parametrize("mode", ["ReadWriteOnce", "ReadWriteOncePod"])
def test_a_single_node_volume_is_refused_with_several_nodes(mode):
    # A pre-filled claim: a download would also be refused on ReadWriteOncePod, for its own reason.
    model = {"deployName": "big", "volume": {"existingClaim": "models", "accessModes": [mode]}}
    found = problems({**TWO_NODES, "model": model})
    message = found["model.volume.accessModes"]
    assert message.startswith(f"{mode} cannot serve server.nodes 2: every pod of a group loads the full checkpoint")
    assert "ReadWriteMany" in message


def test_network_settings_without_several_nodes_are_refused():
    found = problems(with_values(TWO_NODES, server={"network": {"socketInterface": "eth0"}}))
    assert "server.nodes is 1" in found["server.network"]


def test_launch_flags_and_autoscaling_are_refused_with_several_nodes():
    found = problems(with_values(
        TWO_NODES, server__extraArgs=["--nnodes=4", "--master_port=1234"],
        autoscaling={"enabled": True, "prometheusAddress": "http://prometheus:9090"},
    ))
    assert found["server.extraArgs[0]"].startswith("--nnodes is set by this program for a multi-node group")
    assert found["server.extraArgs[1]"].startswith("--master-port is set by this program")
    assert "LeaderWorkerSet" in found["autoscaling.enabled"]


def test_one_node_renders_the_deployment_and_no_leader_worker_set():
    rendering = render_values({"model": RWX_MODEL, "resources": {"limits": {"nvidia.com/gpu": 8}}})
    assert rendering.by_kind("LeaderWorkerSet") == []
    deployment = manifest(rendering, "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["command"] == ["vllm", "serve"]
    assert "leaderworkerset.sigs.k8s.io/worker-index" not in manifest(rendering, "Service")["spec"]["selector"]


def test_the_example_stack_renders_a_schema_valid_group_of_two_eight_gpu_pods():
    rendering = render(EXAMPLE)
    assert_schema_valid(rendering)
    lws = manifest(rendering, "LeaderWorkerSet")
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    claim = manifest(rendering, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_a_network_policy_admits_the_group_pods_to_each_other_on_every_port():
    policy = manifest(render_values(with_values(TWO_NODES, networkPolicy={"enabled": True})), "NetworkPolicy")
    peers = [rule for rule in policy["spec"]["ingress"] if "ports" not in rule]
    assert peers == [{"from": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "big", "app.kubernetes.io/component": "server",
    }}}]}]


def _worker_pre_stop(values: dict[str, Any]) -> list[str] | None:
    spec = render_values(values).one("LeaderWorkerSet").inputs["spec"]["leaderWorkerTemplate"]
    container = spec["workerTemplate"]["spec"]["containers"][0]
    return ((container.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command")


def test_a_worker_waits_for_its_leader_to_drain_before_it_gets_sigterm():
    command = _worker_pre_stop(TWO_NODES)
    assert command is not None and command[:2] == ["python3", "-c"] and command[3] == "29501"
    # Nothing to wait for when the leader does not drain either.
    assert _worker_pre_stop(with_values(TWO_NODES, server__drainSeconds=0, server__shutdownTimeoutSeconds=0)) is None


def test_the_worker_pre_stop_returns_only_once_the_leader_port_closes():
    command = _worker_pre_stop(TWO_NODES)
    assert command is not None
    leader = socket.socket()
    leader.bind(("127.0.0.1", 0))
    leader.listen(8)
    port = leader.getsockname()[1]
    hook = subprocess.Popen([sys.executable, "-c", command[2], str(port)], env={"LWS_LEADER_ADDRESS": "127.0.0.1"})
    try:
        time.sleep(3)
        assert hook.poll() is None  # the leader's store still answers: keep the worker up
        leader.close()
        assert hook.wait(timeout=10) == 0
    finally:
        hook.kill()
        leader.close()
    # A leader whose address no longer resolves (its pod is gone): return at once.
    gone = subprocess.run([sys.executable, "-c", command[2], "29501"], env={"LWS_LEADER_ADDRESS": "leader.invalid"}, timeout=30)
    assert gone.returncode == 0
