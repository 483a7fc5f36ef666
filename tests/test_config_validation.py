"""Every validation rule, as the user sees it: one message naming each bad key and what is allowed."""

from __future__ import annotations

import copy

import pytest

from components.config import ConfigError, parse_config, quantity_bytes

VALID = {"model": {"deployName": "codellama-7b", "source": "huggingface", "huggingface": {"id": "org/model"}}}


def problems(raw):
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return dict(caught.value.problems), str(caught.value)


def with_changes(**paths):
    raw = copy.deepcopy(VALID)
    for dotted, value in paths.items():
        node = raw
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return raw


def test_valid_config_parses_with_chart_defaults():
    config = parse_config(VALID)
    assert config.replicaCount == 1
    assert config.image.registry == "docker.io"
    assert config.image.repository == "vllm/vllm-openai"
    assert config.image.pullPolicy == "IfNotPresent"
    assert config.resources.limits.cpu == "4"
    assert config.resources.limits.memory == "64Gi"
    assert config.resources.limits.gpu == 1
    assert config.model.volume.size == "32Gi"
    assert config.model.volume.accessModes == ["ReadWriteOnce"]
    assert config.model.volume.storageClass == ""
    assert config.model.volume.existingClaim == ""
    assert config.model.volume.subPath == ""
    assert config.env == []


@pytest.mark.parametrize("source", ["hf", "HuggingFace", "http", "none"])
def test_unknown_source_is_refused_with_the_allowed_values(source):
    found, _ = problems(with_changes(model__source=source))
    assert "'huggingface', 'git', 's3' or ''" in found["model.source"]


def test_no_source_needs_an_existing_claim():
    found, _ = problems(with_changes(model__source=""))
    assert "model.volume.existingClaim" in found
    assert 'model.source is ""' in found["model.volume.existingClaim"]


def test_no_source_with_existing_claim_is_valid():
    config = parse_config(with_changes(model__source="", model__volume={"existingClaim": "shared-models"}))
    assert config.model.source == ""


@pytest.mark.parametrize(
    "source, key",
    [("huggingface", "model.huggingface.id"), ("git", "model.git.url"), ("s3", "model.s3.url"), ("s3", "model.s3.existingSecret")],
)
def test_each_source_requires_its_own_fields(source, key):
    raw = {"model": {"deployName": "m", "source": source}}
    found, _ = problems(raw)
    assert found[key] == f'required when model.source is "{source}"'


def test_git_url_must_be_http():
    found, _ = problems({"model": {"deployName": "m", "source": "git", "git": {"url": "git@host:org/repo.git"}}})
    assert "http:// or https://" in found["model.git.url"]


def test_s3_url_must_name_a_bucket():
    raw = {"model": {"deployName": "m", "source": "s3", "s3": {"url": "models/x", "existingSecret": "s"}}}
    found, _ = problems(raw)
    assert "s3://bucket/prefix" in found["model.s3.url"]


@pytest.mark.parametrize("size, hint", [("24GB", "24Gi"), ("100 gb", "100Gi"), ("1.5TB", "1.5Ti"), ("512MB", "512Mi")])
def test_volume_size_must_be_a_quantity_with_a_hint(size, hint):
    found, _ = problems(with_changes(model__volume={"size": size}))
    assert "not a Kubernetes quantity" in found["model.volume.size"]
    assert f'did you mean "{hint}"' in found["model.volume.size"]


@pytest.mark.parametrize("memory", ["64GB", "lots", "-", ""])
def test_memory_limit_must_be_a_quantity(memory):
    found, _ = problems(with_changes(resources={"limits": {"memory": memory}}))
    assert "not a Kubernetes quantity for memory" in found["resources.limits.memory"]


@pytest.mark.parametrize("quantity", ["64Gi", "500M", "1e3", "0.5", "128974848", "2Ti", "100m"])
def test_kubernetes_quantities_are_accepted(quantity):
    assert parse_config(with_changes(resources={"limits": {"memory": quantity}})).resources.limits.memory == quantity


def test_deploy_name_is_required():
    found, _ = problems({"model": {"source": "huggingface", "huggingface": {"id": "org/m"}}})
    assert found["model.deployName"] == "required"


@pytest.mark.parametrize("name", ["CodeLlama", "7b-model", "code_llama", "codellama-", "a" * 41, "org/model", ""])
def test_deploy_name_must_be_a_dns_1035_label(name):
    found, _ = problems(with_changes(model__deployName=name))
    assert "DNS-1035 label" in found["model.deployName"]


@pytest.mark.parametrize("mode", ["RWO", "ReadWriteOnly", "readwriteonce"])
def test_access_modes_come_from_the_kubernetes_set(mode):
    found, _ = problems(with_changes(model__volume={"accessModes": [mode]}))
    assert "ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod" in found["model.volume.accessModes"]


def test_replica_count_must_not_be_negative():
    found, _ = problems(with_changes(replicaCount=-1))
    assert "greater than or equal to 0" in found["replicaCount"]


@pytest.mark.parametrize("mode", ["ReadWriteOnce", "ReadWriteOncePod"])
def test_several_replicas_on_a_single_node_volume_are_refused_with_the_reason(mode):
    found, _ = problems(with_changes(replicaCount=2, model__volume={"accessModes": [mode]}))
    assert "other nodes could not mount it" in found["replicaCount"]
    assert "ReadWriteMany" in found["replicaCount"]


@pytest.mark.parametrize("mode", ["ReadWriteMany", "ReadOnlyMany"])
def test_several_replicas_on_a_shared_volume_are_fine(mode):
    assert parse_config(with_changes(replicaCount=3, model__volume={"accessModes": [mode]})).replicaCount == 3


def test_unknown_keys_are_refused_with_the_allowed_keys():
    found, _ = problems(with_changes(model__volume={"sizee": "10Gi"}, replicacount=2))
    assert "allowed here: storageClass, size, accessModes, existingClaim, subPath" in found["model.volume.sizee"]
    assert "unknown key" in found["replicacount"]


def test_image_tag_must_be_pinned():
    found, _ = problems(with_changes(image={"tag": "latest"}))
    assert "not a pinned tag" in found["image.tag"]


def test_pull_policy_from_the_kubernetes_set():
    found, _ = problems(with_changes(image={"pullPolicy": "Sometimes"}))
    assert "'Always', 'IfNotPresent' or 'Never'" in found["image.pullPolicy"]


def test_at_least_one_gpu():
    found, _ = problems(with_changes(resources={"limits": {"nvidia.com/gpu": 0}}))
    assert "at least 1" in found['resources.limits["nvidia.com/gpu"]']


def test_env_needs_a_value_or_a_reference():
    found, _ = problems(with_changes(env=[{"name": "HTTP_PROXY"}]))
    assert "exactly one of value or valueFrom" in found["env[0]"]


def test_env_name_must_be_valid():
    found, _ = problems(with_changes(env=[{"name": "1 BAD", "value": "x"}]))
    assert "not a valid environment variable name" in found["env[0].name"]


def test_sub_path_stays_inside_the_volume():
    found, _ = problems(with_changes(model__volume={"subPath": "../etc"}))
    assert "relative path inside the volume" in found["model.volume.subPath"]


def test_every_problem_is_listed_in_one_message():
    raw = {
        "replicaCount": 2,
        "model": {"deployName": "Bad_Name", "source": "huggingface", "volume": {"size": "24GB"}},
        "image": {"pullPolicy": "Sometimes"},
    }
    found, message = problems(raw)
    assert set(found) == {
        "model.deployName",
        "model.volume.size",
        "image.pullPolicy",
        "model.huggingface.id",
        "replicaCount",
    }
    assert message.startswith("invalid stack config (5 problems):")
    for key in found:
        assert f"vllm-serving:{key}: " in message


def test_a_broken_key_does_not_produce_follow_up_noise():
    # With the source misspelt, "existingClaim required" (the rule for source "") would be wrong advice.
    found, _ = problems(with_changes(model__source="hf"))
    assert set(found) == {"model.source"}


@pytest.mark.parametrize(
    "key, value",
    [
        ("model__deployName", "codellama-7b\n"),
        ("namespace", "llm\n"),
        ("model__volume__existingClaim", "models\n"),
        ("apiKeySecret__name", "api-key\n"),
        ("httpRoute__requestTimeout", "300s\n"),
    ],
)
def test_a_name_or_duration_with_a_trailing_newline_is_refused(key, value):
    # `re.match` with `$` accepts a trailing newline, which Kubernetes then refuses at apply time.
    found, _ = problems(with_changes(**{key: value}))
    assert repr(value) in found[key.replace("__", ".")]


def test_the_one_quantity_parser_gives_the_value_and_refuses_what_is_not_a_quantity():
    assert quantity_bytes("24Gi") == 24 * 2**30
    assert quantity_bytes("15G") == 15e9
    assert quantity_bytes("1.5e3") == 1500
    assert quantity_bytes("500m") == 0.5
    for text in ("24GB", "Gi", "24 Gi", "24Gi\n1"):
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            quantity_bytes(text)
