"""A model larger than one node: the server as a LeaderWorkerSet of `server.nodes`-pod groups.

Each replica is a group (LeaderWorkerSet, kubernetes-sigs/lws, `leaderworkerset.x-k8s.io/v1`) of
`server.nodes` pods, each with the GPUs of `resources.limits`. The launch is vLLM's own multi-node
mode on the multiprocessing backend (vllm/engine/arg_utils.py, `--nnodes`/`--node-rank`;
vllm/config/parallel.py: `nnodes > 1` requires the mp, uni or external_launcher backend): every pod
runs `vllm serve` with the same engine arguments and `--nnodes N --master-addr <leader>`; the
leader (`--node-rank 0`) runs the OpenAI server, each worker `--headless` (no API server: it only
joins the torch.distributed group; vllm/entrypoints/cli/serve.py, `run_headless`). The leader's
address and each pod's index come from the environment LWS puts in every container
(pkg/utils/pod/pod_utils.go, `AddLWSVariables`: LWS_LEADER_ADDRESS, LWS_WORKER_INDEX,
LWS_GROUP_SIZE), which Kubernetes expands in `args` as `$(NAME)`.

The pod spec is the Deployment's (deployment.py): the same volumes, init container, placement,
`/dev/shm` and env, so every pod loads the whole checkpoint from the shared volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ..config import ServingConfig
from ..config.engine_rules import engine_warnings
from ..labels import common_labels
from ..names import group_name
from ..storage.placement import unconstrained_binding_warning
from .args import server_args
from .deployment import ServerLaunch, VllmServerArgs, pod_spec, pod_template, rollout_timeout_minutes, server_container
from .surface import surface_config_map

API_VERSION = "leaderworkerset.x-k8s.io/v1"
# LWS labels every pod with its index in the group; the leader's is "0"
# (api/leaderworkerset/v1/leaderworkerset_types.go, WorkerIndexLabelKey).
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
LEADER_SELECTOR = {WORKER_INDEX_LABEL: "0"}
# torch.distributed's rendezvous on the leader; vLLM's default (vllm/config/parallel.py, master_port).
MASTER_PORT = 29501
VLLM_SERVE = ("vllm", "serve")

# A worker's preStop: wait while the leader's torch.distributed store (on the master port, hosted by
# the leader's rank-0 process for the life of the process group) accepts connections, i.e. until the
# leader's engine has exited, or its address no longer resolves (the leader pod is gone). Python,
# not a shell loop: the vLLM image has python3, and sh has no TCP connect. The port is an argument.
WAIT_FOR_LEADER_SCRIPT = """
import os, socket, sys, time
address, port = os.environ["LWS_LEADER_ADDRESS"], int(sys.argv[1])
while True:
    try:
        socket.create_connection((address, port), timeout=2).close()
    except OSError:
        break
    time.sleep(2)
"""


def launch_args(config: ServingConfig, node_rank: str) -> list[str]:
    """The argv of one pod of a group: the single-node engine arguments, plus the group's shape."""
    return [
        *server_args(config),
        "--distributed-executor-backend=mp",
        f"--nnodes={config.server.nodes}",
        f"--node-rank={node_rank}",
        "--master-addr=$(LWS_LEADER_ADDRESS)",
        f"--master-port={MASTER_PORT}",
    ]


def leader_args(config: ServingConfig) -> list[str]:
    return launch_args(config, "0")


def worker_args(config: ServingConfig) -> list[str]:
    return [*launch_args(config, "$(LWS_WORKER_INDEX)"), "--headless"]


def worker_drain(config: ServingConfig) -> k8s.core.v1.LifecycleArgs | None:
    """Keep a worker up while its leader drains.

    vLLM's headless worker exits on the first SIGTERM without consulting --shutdown-timeout
    (vllm/entrypoints/cli/serve.py, `run_headless`: the signal handler raises SystemExit, and a
    worker of node rank > 0 runs its executor inline); the group's requests then fail. When a whole
    group stops (a rollout, a scale-in, the LeaderWorkerSet deleted), every pod gets its preStop hook
    at once: the leader's sleeps `server.drainSeconds`, then vLLM finishes running requests for up to
    `server.shutdownTimeoutSeconds`; this hook holds the worker's SIGTERM until the leader's engine is
    gone, within the same grace period (the kubelet sends SIGTERM when it runs out). A worker evicted
    alone (a node drain) waits the same way while its leader serves on, until the grace period ends:
    then the group's requests fail and LeaderWorkerSet recreates the group (README, "Draining a
    multi-node group")."""
    if config.server.drainSeconds == 0 and config.server.shutdownTimeoutSeconds == 0:
        return None
    return k8s.core.v1.LifecycleArgs(pre_stop=k8s.core.v1.LifecycleHandlerArgs(
        exec_=k8s.core.v1.ExecActionArgs(command=["python3", "-c", WAIT_FOR_LEADER_SCRIPT, str(MASTER_PORT)])
    ))


def _network(config: ServingConfig) -> dict[str, Any]:
    """What server.network adds to every pod's container: NCCL/Gloo env, RDMA, IPC_LOCK."""
    network = config.server.network
    env = []
    if network.socketInterface:
        env = [
            k8s.core.v1.EnvVarArgs(name=name, value=network.socketInterface)
            for name in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME")
        ]
    rdma = ((network.rdmaResource, str(network.rdmaCount)),) if network.rdmaResource else ()
    # RDMA registers (pins) memory, which needs IPC_LOCK beyond the default memlock limit.
    return {"env": tuple(env), "extra_limits": rdma, "add_capabilities": ("IPC_LOCK",) if rdma else ()}


def _template(
    args: VllmServerArgs, labels: dict[str, str], launch: ServerLaunch, surface_config_map: pulumi.Input[str] | None
) -> k8s.core.v1.PodTemplateSpecArgs:
    host_network = args.config.server.network.hostNetwork
    spec = pod_spec(args, server_container(args, launch), host_network=host_network, surface_config_map=surface_config_map)
    return pod_template(args, labels, spec)


def rollout_strategy(config: ServingConfig) -> dict[str, Any]:
    """server.rollout for a LeaderWorkerSet, whose only strategy type is RollingUpdate (groups, not
    pods, are the units): recreate takes every group down first (maxUnavailable 100%); oneAtATime
    stops one group, then starts its replacement, on the GPUs it freed; surge starts one extra
    group first, on spare nodes."""
    unavailable, surge = {"recreate": ("100%", 0), "oneAtATime": (1, 0), "surge": (0, 1)}[config.rollout]
    return {"type": "RollingUpdate", "rollingUpdateConfiguration": {"maxUnavailable": unavailable, "maxSurge": surge}}


def await_annotations(config: ServingConfig) -> dict[str, str]:
    """pulumi-kubernetes has no await logic for a LeaderWorkerSet; `pulumi.com/waitFor` makes it
    wait for LWS's Available condition (all groups ready and updated; the controller stamps the
    condition with the generation, so an update does not pass on the old one), for as long as
    the Deployment's wait (one rollout step per group when they roll one by one). With no replicas there is nothing to wait for."""
    if config.replicaCount == 0:
        return {"pulumi.com/skipAwait": "true"}
    return {
        "pulumi.com/waitFor": "condition=Available",
        "pulumi.com/timeoutSeconds": str(rollout_timeout_minutes(config) * 60),
    }


def leader_worker_set_spec(
    args: VllmServerArgs, labels: dict[str, str], surface_config_map: pulumi.Input[str]
) -> dict[str, Any]:
    """surface_config_map: the allow-list's ConfigMap, which only the leader (the OpenAI server) mounts."""
    config = args.config
    network = _network(config)
    leader = ServerLaunch(command=VLLM_SERVE, args=tuple(leader_args(config)), **network)
    worker = ServerLaunch(
        command=VLLM_SERVE, args=tuple(worker_args(config)), serves_http=False, lifecycle=worker_drain(config), **network
    )
    return {
        "replicas": config.replicaCount,
        # The group is one model: when any of its pods or containers restarts, NCCL's communicator
        # is broken for all, so LWS recreates the whole group.
        "leaderWorkerTemplate": {
            "size": config.server.nodes,
            "restartPolicy": "RecreateGroupOnPodRestart",
            "leaderTemplate": _template(args, labels, leader, surface_config_map),
            "workerTemplate": _template(args, labels, worker, None),
        },
        "rolloutStrategy": rollout_strategy(config),
        # Workers start with the leader: their headless engines must join its rendezvous to load.
        "startupPolicy": "LeaderCreated",
    }


class MultiNodeServer(pulumi.ComponentResource):
    """The server of `server.nodes` > 1: one LeaderWorkerSet."""

    leader_worker_set: k8s.apiextensions.CustomResource

    def __init__(
        self,
        name: str,
        args: VllmServerArgs,
        opts: pulumi.ResourceOptions | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ):
        super().__init__("vllm-serving:index:MultiNodeServer", name, None, opts)
        config = args.config
        deploy_name = config.model.deployName
        labels = common_labels(deploy_name, "server", config.image.tag)
        if warning := unconstrained_binding_warning(config, args.first_download_reserved):
            pulumi.log.warn(warning)
        for warning in engine_warnings(config):  # a tag without a profile of its own release
            pulumi.log.warn(warning)
        surface = surface_config_map(self, name, config)
        self.leader_worker_set = k8s.apiextensions.CustomResource(
            f"{name}-leaderworkerset",
            api_version=API_VERSION,
            kind="LeaderWorkerSet",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=group_name(deploy_name), namespace=config.namespace, labels=labels,
                annotations=await_annotations(config),
            ),
            spec=leader_worker_set_spec(args, labels, surface.metadata.name),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(depends_on),
                # Replaced only when its name changes (a LeaderWorkerSet once named deployName takes
                # its new name): pulumi-kubernetes then creates the new one before deleting the old
                # (provider/pkg/provider/provider.go, Diff: deleteBeforeReplace only for an unchanged
                # name), and a second group of multi-GPU nodes would wait for GPUs the first holds.
                delete_before_replace=True,
            ),
        )
        self.register_outputs({"leaderWorkerSetName": group_name(deploy_name)})

