"""Where the download Job and the server pods may run, as rendered (components/storage/placement.py)."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import ConfigError
from components.storage.placement import CLAIM_LABEL, claim_label_value
from tests.conftest import HF_MODEL, render_values

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
CLAIM_TERM = {"labelSelector": {"matchLabels": {CLAIM_LABEL: "codellama-7b-model"}}, "topologyKey": "kubernetes.io/hostname"}
NODE_AFFINITY = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]}
]}}


def pod_templates(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rendering = render_values(values)
    return {kind: rendering.one(kind).inputs["spec"]["template"] for kind in ("Job", "Deployment")}


def with_volume(modes: list[str], **extra: Any) -> dict[str, Any]:
    return {"model": {**HF_MODEL, "volume": {**HF_MODEL["volume"], "accessModes": modes}}, **extra}


def test_the_job_gets_the_server_placement_by_default():
    server = {"nodeSelector": {"gpu": "l40s"}, "affinity": {"nodeAffinity": NODE_AFFINITY}}
    job = pod_templates(with_volume(["ReadWriteMany"], server=server))["Job"]["spec"]
    assert job["nodeSelector"] == {"gpu": "l40s"}
    assert job["tolerations"] == [GPU_TOLERATION]
    assert job["affinity"] == {"nodeAffinity": NODE_AFFINITY}


def test_each_download_key_replaces_its_default_even_when_empty():
    server = {"nodeSelector": {"gpu": "l40s"}, "affinity": {"nodeAffinity": NODE_AFFINITY}}
    download = {"nodeSelector": {"pool": "cpu"}, "tolerations": []}
    templates = pod_templates(with_volume(["ReadWriteMany"], server=server, download=download))
    job = templates["Job"]["spec"]
    assert job["nodeSelector"] == {"pool": "cpu"}
    assert "tolerations" not in job
    assert job["affinity"] == {"nodeAffinity": NODE_AFFINITY}  # download.affinity unset: the server's
    assert templates["Deployment"]["spec"]["nodeSelector"] == {"gpu": "l40s"}


def test_pods_of_a_single_node_volume_are_labelled_and_follow_each_other():
    user_affinity = {"nodeAffinity": NODE_AFFINITY}
    templates = pod_templates(with_volume(["ReadWriteOnce"], server={"affinity": user_affinity}))
    for template in templates.values():
        assert template["metadata"]["labels"][CLAIM_LABEL] == "codellama-7b-model"
        affinity = template["spec"]["affinity"]
        assert affinity["nodeAffinity"] == NODE_AFFINITY
        assert affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [CLAIM_TERM]


def test_the_claim_term_is_added_to_the_users_own_pod_affinity():
    own = {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "topology.kubernetes.io/zone"}
    affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [own]}}
    job = pod_templates(with_volume(["ReadWriteOnce"], download={"affinity": affinity}))["Job"]["spec"]
    assert job["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [own, CLAIM_TERM]


@pytest.mark.parametrize("modes", [["ReadWriteMany"], ["ReadOnlyMany"], ["ReadWriteOnce", "ReadWriteMany"]])
def test_a_volume_many_nodes_can_mount_constrains_nothing(modes):
    if modes == ["ReadOnlyMany"]:
        # Nothing can download into it (components/config/surface_rules.py): a pre-filled claim, no Job.
        prefilled = {"deployName": "m", "source": "", "volume": {"existingClaim": "filled", "accessModes": modes}}
        templates = [pod_templates_without_job({"model": prefilled, "replicaCount": 2})]
    else:
        templates = list(pod_templates(with_volume(modes, replicaCount=2)).values())
    for template in templates:
        assert CLAIM_LABEL not in template["metadata"]["labels"]
        assert "affinity" not in template["spec"]


def test_a_long_claim_name_becomes_a_valid_label_value():
    name = "a" * 70 + ".models.example"
    value = claim_label_value(name)
    assert len(value) == 63 and value[0].isalnum() and value[-1].isalnum()
    assert value != claim_label_value(name + "x") and claim_label_value("short") == "short"


def test_a_placement_change_renames_the_job():
    # The pod template of a Job is immutable: a new placement must be a new Job.
    names = {
        render_values(values).one("Job").inputs["metadata"]["name"]
        for values in (with_volume(["ReadWriteOnce"]), with_volume(["ReadWriteOnce"], server={"nodeSelector": {"gpu": "a"}}))
    }
    assert len(names) == 2


def test_download_tolerations_are_checked_like_the_servers():
    with pytest.raises(ConfigError) as error:
        render_values(with_volume(["ReadWriteOnce"], download={"tolerations": [{"key": "x", "efect": "NoSchedule"}]}))
    assert "vllm-serving:download.tolerations[0].efect: unknown key" in str(error.value)


def test_read_write_once_pod_cannot_be_combined_with_other_modes():
    values = {"model": {"deployName": "m", "source": "", "volume": {"existingClaim": "c", "accessModes": ["ReadWriteOncePod", "ReadWriteMany"]}}}
    with pytest.raises(ConfigError) as error:
        render_values(values)
    assert "ReadWriteOncePod cannot be combined with other access modes" in str(error.value)


def test_read_write_once_pod_without_a_download_serves_one_replica():
    values = {"model": {"deployName": "m", "source": "", "volume": {"existingClaim": "c", "accessModes": ["ReadWriteOncePod"]}}}
    template = pod_templates_without_job(values)
    assert template["metadata"]["labels"][CLAIM_LABEL] == "c"


def pod_templates_without_job(values: dict[str, Any]) -> dict[str, Any]:
    rendering = render_values(values)
    assert not rendering.by_kind("Job")
    return rendering.one("Deployment").inputs["spec"]["template"]
