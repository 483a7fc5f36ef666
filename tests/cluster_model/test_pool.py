"""A rollout of the server keeps the InferencePool's endpoints ready where capacity allows."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import HF_MODEL
from vllm_serving.manifests import normalize

from .model import Cluster
from .pool import pool_endpoints
from .replay import lifecycle_ops, replay, volumes_for
from .test_replay import GPU_SELECTOR, cpu_node, gpu_node, merged, render, storage_class

ROUTED = {
    "model": merged(HF_MODEL, {"volume": {"accessModes": ["ReadWriteMany"], "storageClass": "shared-fs"}}),
    "apiKeySecret": {"name": "llm-api-key"},
    "httpRoute": {"enabled": True, "parentRefs": [{"name": "inference-gateway"}]},
    "routing": {"enabled": True},
    **GPU_SELECTOR,
}


def upgrade(replicas: int, rollout: str = "auto") -> list[tuple[str, dict[str, Any]]]:
    """Deploy on vLLM 0.33, then move to 0.34 (the default since): every server pod is replaced."""
    first = merged(ROUTED, {"replicaCount": replicas, "server": {"rollout": rollout}, "image": {"tag": "v0.33.0"}})
    return [("first deploy", first), ("image upgrade", merged(first, {"image": {"tag": "v0.34.0"}}))]


def endpoints_during(steps: list[tuple[str, dict[str, Any]]], gpu_nodes: int) -> tuple[list[int], str | None]:
    renderings = [(name, render(values)) for name, values in steps]
    pool = normalize(renderings[-1][1].one("InferencePool").inputs)
    ops = lifecycle_ops(renderings)
    nodes = [gpu_node(f"g{index}", "a") for index in range(gpu_nodes)] + [cpu_node("c1", "a")]
    (volumes,) = volumes_for("codellama-7b-model", ("ReadWriteMany",), storage_class("shared-fs", "one-zone"))
    cluster = Cluster(nodes, copy.deepcopy(volumes))
    counts = pool_endpoints(cluster, ops, pool)
    during = [count.endpoints for count in counts if count.step == "image upgrade"]
    return during, replay(cluster, ops)


@pytest.mark.parametrize("replicas", [2, 3])
def test_rolling_one_at_a_time_keeps_all_but_one_endpoint_without_a_spare_gpu(replicas):
    during, failure = endpoints_during(upgrade(replicas), gpu_nodes=replicas)
    assert failure is None
    assert min(during) == replicas - 1
    # The new pods carry the pool's labels: every one ends up an endpoint.
    assert during[-1] == replicas


def test_with_a_spare_gpu_a_surge_keeps_every_endpoint():
    during, failure = endpoints_during(upgrade(2, rollout="surge"), gpu_nodes=3)
    assert failure is None
    assert min(during) == 2 and during[-1] == 2


def test_one_replica_has_no_endpoint_while_it_is_recreated():
    """Where capacity does not allow (one GPU, one replica), the pool is empty between the old pod
    and the new: the picker's queue (routing.flowControl) then holds requests, as at zero."""
    during, failure = endpoints_during(upgrade(1), gpu_nodes=1)
    assert failure is None
    assert min(during) == 0 and during[-1] == 1


def test_the_pool_does_not_select_by_version_so_old_and_new_pods_serve_together():
    """The selector is the Service's, without the version label a new image changes."""
    rendering = render(upgrade(2)[0][1])
    selector = normalize(rendering.one("InferencePool").inputs)["spec"]["selector"]["matchLabels"]
    assert "app.kubernetes.io/version" not in selector
