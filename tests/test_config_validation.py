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
    ("source", "key"),
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


@pytest.mark.parametrize(("size", "hint"), [("24GB", "24Gi"), ("100 gb", "100Gi"), ("1.5TB", "1.5Ti"), ("512MB", "512Mi")])
def test_volume_size_must_be_a_quantity_with_a_hint(size, hint):
    found, _ = problems(with_changes(model__volume={"size": size}))
    assert "not a Kubernetes quantity" in found["model.volume.size"]
    assert f'did you mean "{hint}"' in found["model.volume.size"]


@pytest.mark.parametrize("memory", ["64GB", "lots", "-", ""])
def test_memory_limit_must_be_a_quantity(memory):
    found, _ = problems(with_changes(resources={"limits": {"memory": memory}}))
    assert "not a Kubernetes quantity for memory" in found["resources.limits.memory"]


@pytest.mark.parametrize("quantity", ["64Gi", "500M", "1e3", "0.5", "128974848", "2Ti", "100m", "0.001", "7Ei"])
def test_kubernetes_quantities_are_accepted(quantity):
    # CPU: a quantity with no floor of its own (memory's are tested below).
    assert parse_config(with_changes(resources={"limits": {"cpu": quantity}})).resources.limits.cpu == quantity


@pytest.mark.parametrize("quantity", ["8Ei", "1e19", 1e30, "9223372036854775808"])
def test_a_quantity_beyond_what_kubernetes_holds_is_refused(quantity):
    """Kubernetes would cap it at 2^63-1 (apimachinery's Quantity): the cluster would hold another value."""
    for key in ("resources__limits__cpu", "model__volume__size", "download__cpu"):
        found, _ = problems(with_changes(**{key: quantity}))
        assert "more than Kubernetes holds (2^63-1" in found[key.replace("__", ".")]


@pytest.mark.parametrize("quantity", ["0.0001", "0.5m", "1n", "999u", "1e-4"])
def test_a_quantity_finer_than_a_thousandth_is_refused(quantity):
    """Kubernetes rounds it up to the next thousandth: 0.1m becomes 1m."""
    found, _ = problems(with_changes(resources={"limits": {"cpu": quantity}}))
    assert "finer than a thousandth (1m), which Kubernetes rounds up" in found["resources.limits.cpu"]


@pytest.mark.parametrize("key", ["resources__limits__cpu", "model__volume__size", "model__size", "download__cpu",
                                 "server__shmSizeLimit", "server__gpuMemory"])
def test_a_zero_quantity_is_refused(key):
    found, _ = problems(with_changes(**{key: "0"}))
    assert "must be more than 0" in found[key.replace("__", ".")]


@pytest.mark.parametrize(("key", "small", "floor", "enough"), [
    ("resources__limits__memory", 64, "1Gi", "1Gi"),
    ("resources__limits__memory", "512Mi", "1Gi", "1.5Gi"),
    ("download__memory", "2", "64Mi", "64Mi"),
])
def test_memory_too_small_to_start_is_refused_with_the_suffix_hint(key, small, floor, enough):
    found, _ = problems(with_changes(**{key: small}))
    message = found[key.replace("__", ".")]
    assert f"is less than {floor}, too little to start" in message and "a number without a suffix is bytes" in message
    parse_config(with_changes(**{key: enough}))


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


def test_several_replicas_on_a_shared_volume_are_fine():
    assert parse_config(with_changes(replicaCount=3, model__volume={"accessModes": ["ReadWriteMany"]})).replicaCount == 3
    # ReadOnlyMany alone cannot be downloaded into (components/config/surface_rules.py): a pre-filled claim.
    prefilled = {"deployName": "m", "source": "", "volume": {"existingClaim": "filled", "accessModes": ["ReadOnlyMany"]}}
    assert parse_config({"model": prefilled, "replicaCount": 3}).replicaCount == 3


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
    ("key", "value"),
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
    assert quantity_bytes("1.5Ki") == 1536 and quantity_bytes("100m") == 0.1 and quantity_bytes("2e-3") == 0.002
    for text in ("24GB", "Gi", "24 Gi", "24Gi\n1"):
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            quantity_bytes(text)


# --- every string that reaches Kubernetes, a shell or a tool: one validator per kind ------------

BIG = 2**31  # one past int32


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("model__volume__storageClass", "Fast_SSD", "not a valid StorageClass name"),
        ("model__huggingface__existingSecret", "hf token", "not a valid Secret name"),
        ("ingress__className", "Nginx", "not a valid IngressClass name"),
        ("ingress__tlsSecret", "tls\n", "not a valid Secret name"),
        ("server__priorityClassName", "High", "not a valid PriorityClass name"),
        ("server__runtimeClassName", "nvidia\n", "not a valid RuntimeClass name"),
        ("server__serviceAccountName", "-sa", "not a valid ServiceAccount name"),
        ("apiKeySecret__key", "api key; rm -rf ~", "not a valid Secret key"),
        ("image__tag", " latest", "not an image tag"),
        ("image__tag", "v0.33.0 ", "not an image tag"),
        ("image__tag", ".hidden", "not an image tag"),
        ("image__tag", "v" * 129, "not an image tag"),
        ("image__registry", "docker io", "not an image registry"),
        ("image__repository", "Vllm/VLLM-openai", "not an image repository"),
        ("download__image", "alpine/git", "not a pinned image reference"),
        ("download__image", "docker.io/alpine/git:latest", "not a pinned tag"),
        ("download__image", "alpine git:v2", "not a pinned image reference"),
        ("httpRoute__requestTimeout", "1.5h", "not a Gateway API duration"),
        ("httpRoute__requestTimeout", "999999s", "not a Gateway API duration"),
        ("model__huggingface__id", "org/../etc", "not a Hugging Face repository id"),
        ("model__huggingface__id", "a/b/c", "not a Hugging Face repository id"),
        ("model__huggingface__id", "org/model--x", "not a Hugging Face repository id"),
        ("model__huggingface__id", "org/model.git", "not a Hugging Face repository id"),
        ("model__huggingface__id", "-org/model", "not a Hugging Face repository id"),
        ("model__huggingface__revision", "--upload-pack=x", "not a valid revision"),
        ("model__huggingface__revision", "main\n", "not a valid revision"),
        ("model__git__ref", "--upload-pack=touch /tmp/x", "not a valid git ref"),
        ("model__git__ref", "main:evil", "not a valid git ref"),
        ("model__git__ref", "a..b", "not a valid git ref"),
        ("model__git__ref", "v1.lock", "not a valid git ref"),
        ("model__git__ref", "feat//x", "not a valid git ref"),
        ("model__git__ref", "x@{1}", "not a valid git ref"),
        ("model__git__ref", ".hidden", "not a valid git ref"),
        ("model__git__url", "file:///srv/repo", "not a valid git URL"),
        ("model__git__url", "ext::sh -c touch% /tmp/x", "not a valid git URL"),
        ("model__git__url", "git@github.com:org/repo.git", "not a valid git URL"),
        ("model__git__url", "https://host/repo with space", "not a valid git URL"),
        ("model__git__url", "https://oauth2:glpat-secret@gitlab.example/r.git", "holds credentials"),
        ("model__s3__url", "s3://Bucket/x", "must look like s3://bucket/prefix"),
        ("model__s3__url", "s3://ab/x", "must look like s3://bucket/prefix"),
        ("model__s3__url", "s3://192.168.1.10/x", "must look like s3://bucket/prefix"),
        ("model__s3__url", "s3://bucket/../other", "the prefix must not hold"),
        ("model__s3__url", "s3://bucket/a\nb", "the prefix must not hold"),
        ("model__s3__url", "s3://bucket//x", "the prefix must not hold"),
        ("model__volume__subPath", "models/a b", "not a safe directory name"),
        ("model__volume__subPath", "models/$(reboot)", "not a safe directory name"),
        ("model__huggingface__files", "*.json\x1b[2J", "must not hold control characters"),
        ("autoscaling__prometheusAddress", "http://admin:pw@prometheus:9090", "holds credentials"),
    ],
)
def test_each_name_kind_is_refused_by_its_own_validator(key, value, words):
    found, _ = problems(with_changes(**{key: value}))
    assert words in found[key.replace("__", ".")]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("server__nodeSelector", {"gpu type": "a100"}),
        ("server__nodeSelector", {"gpu": "a 100"}),
        ("server__nodeSelector", {"example.com/" + "x" * 64: "a100"}),
        ("server__podAnnotations", {"bad key!": "x"}),
        ("server__podAnnotations", {"big": "x" * (256 * 1024)}),
        ("service__annotations", {"Example_Com/x": "y"}),
        ("ingress__annotations", {"/x": "y"}),
        ("metrics__serviceMonitor__labels", {"release": "x" * 64}),
    ],
)
def test_label_and_annotation_keys_and_values_follow_kubernetes(key, value):
    found, message = problems(with_changes(**{key: value}))
    assert key.replace("__", ".") in found
    assert len(message) < 2000


@pytest.mark.parametrize(
    "key",
    [
        "replicaCount", "server__startupTimeoutSeconds", "autoscaling__maxReplicas", "autoscaling__cooldownSeconds",
        "download__ttlSecondsAfterFinished", "download__runAsUser", "podDisruptionBudget__maxUnavailable",
        "engine__maxModelLen", "lora__maxLoras",
    ],
)
def test_integers_that_become_kubernetes_int32_are_bounded(key):
    found, _ = problems(with_changes(**{key: BIG}))
    assert "less than or equal to 2147483647" in found[key.replace("__", ".")]


def test_a_toleration_key_and_value_are_label_syntax():
    found, _ = problems(with_changes(server__tolerations=[{"key": "a b", "operator": "Equal", "value": "x\n"}]))
    assert "not a valid toleration key" in found["server.tolerations[0].key"]
    assert "not a valid toleration value" in found["server.tolerations[0].value"]


def test_adapters_urls_and_refs_are_checked_like_the_models():
    lora = {"adapters": [
        {"name": "sql", "source": "git", "git": {"url": "https://u:tok@git.example/sql.git", "ref": "-x"}},
        {"name": "chat", "source": "s3", "s3": {"url": "s3://x/../y", "existingSecret": "s3-env"}},
        {"name": "web", "source": "huggingface", "huggingface": {"id": "org/../../etc"}},
    ]}
    found, _ = problems(with_changes(lora=lora))
    assert "holds credentials" in found["lora.adapters[0].git.url"]
    assert "not a valid git ref" in found["lora.adapters[0].git.ref"]
    assert "must look like s3://bucket/prefix" in found["lora.adapters[1].s3.url"]
    assert "not a Hugging Face repository id" in found["lora.adapters[2].huggingface.id"]


def test_extra_args_are_bounded_each_and_together():
    found, _ = problems(with_changes(server__extraArgs=["--seed=1", "--chat-template=" + "x" * 5000]))
    assert "at most 4096" in found["server.extraArgs[1]"]
    found, _ = problems(with_changes(server__extraArgs=["--x=" + "y" * 4000] * 17))
    assert "at most 65536" in found["server.extraArgs"]


def test_env_references_are_typed_names_and_keys():
    env = [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "Bad_Name", "key": "k"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a key"}}},
        {"name": "C", "valueFrom": {"secretRef": {"name": "s"}}},
    ]
    found, _ = problems(with_changes(env=env))
    assert "not a valid Secret or ConfigMap name" in found["env[0].valueFrom.secretKeyRef.name"]
    assert "not a valid Secret or ConfigMap key" in found["env[1].valueFrom.secretKeyRef.key"]
    assert "unknown key" in found["env[2].valueFrom.secretRef"]


def test_valid_values_of_each_kind_pass():
    raw = with_changes(
        image={"registry": "registry.example.com:5000", "repository": "ml/vllm-openai", "tag": "v0.33.0-cu128"},
        download={"image": "docker.io/alpine/git:v2.49.1@sha256:" + "a" * 64},
        server={"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L40S"}, "podAnnotations": {"example.com/x": "a b"}},
        httpRoute={"requestTimeout": "1h30m"},
    )
    raw["model"]["huggingface"] = {"id": "meta-llama/Llama-3.1-8B-Instruct", "revision": "refs/pr/12"}
    parse_config(raw)
    parse_config(with_changes(model={"deployName": "m", "source": "git", "git": {"url": "https://g.example/r.git", "ref": "v1.2"}}))


# --- messages never echo a long value, or a secret ----------------------------------------------


def test_a_huge_value_is_not_echoed_in_the_message():
    found, message = problems(with_changes(model__huggingface__id="x/" + "y" * 10_000_000))
    assert len(message) < 1000 and "…" in found["model.huggingface.id"]


@pytest.mark.parametrize(
    "raw",
    [
        {**VALID, "apiKey": {"nested": "sk-do-not-show"}},
        {**VALID, "env": [{"name": "NOTE", "value": "sk-do-not-show\x07"}]},
        {**VALID, "env": [{"name": "HF_TOKEN", "value": "sk-do-not-show"}]},
        {**VALID, "env": [{"name": "HF_TOKEN", "value": ["sk-do-not-show"]}]},
    ],
)
def test_a_secret_value_is_never_echoed(raw):
    _, message = problems(raw)
    assert "sk-do-not-show" not in message


def test_thousands_of_problems_make_a_short_message():
    _, message = problems(with_changes(server__extraArgs=["--port=1"] * 5000))
    assert message.startswith("invalid stack config (5000 problems):") and "... and 4960 more" in message
    assert len(message) < 20_000


# --- secrets: credential-like env names, Kubernetes expansion -------------------------------------


@pytest.mark.parametrize(
    "name", ["HF_TOKEN", "VLLM_API_KEY", "AWS_SECRET_ACCESS_KEY", "GITHUB_PASSWORD", "openai_apikey", "AZURE_CREDENTIALS"]
)
def test_a_credential_like_env_name_needs_a_secret(name):
    found, _ = problems(with_changes(env=[{"name": name, "value": "plain"}]))
    assert "looks like a credential" in found["env[0]"] and "TOKEN|SECRET|PASSWORD" in found["env[0]"]
    assert "valueFrom.secretKeyRef" in found["env[0]"]
    parse_config(with_changes(env=[{"name": name, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]))


@pytest.mark.parametrize("name", ["TOKENIZERS_PARALLELISM", "HF_HUB_DISABLE_IMPLICIT_TOKEN", "AWS_SHARED_CREDENTIALS_FILE"])
def test_names_that_only_resemble_credentials_take_plain_values(name):
    parse_config(with_changes(env=[{"name": name, "value": "false"}]))


def test_extra_args_may_not_make_kubernetes_expand_a_variable():
    found, _ = problems(with_changes(server__extraArgs=["--chat-template=$(VLLM_API_KEY)", "--x=$$$(HF_TOKEN)"]))
    assert "$(VLLM_API_KEY)" in found["server.extraArgs[0]"] and "Kubernetes replaces" in found["server.extraArgs[0]"]
    assert "$(HF_TOKEN)" in found["server.extraArgs[1]"]
    parse_config(with_changes(server__extraArgs=["--chat-template=cost: $$(5)"]))


def test_env_values_may_not_expand_a_variable_holding_a_secret():
    env = [
        {"name": "SECRET_HOLDER", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "LEAK", "value": "$(SECRET_HOLDER)"},
        {"name": "LEAK2", "value": "x-$(VLLM_API_KEY)"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "FINE", "value": "$(POD)"},
    ]
    found, _ = problems(with_changes(env=env))
    assert set(found) == {"env[1]", "env[2]"}
    assert "$(SECRET_HOLDER)" in found["env[1]"] and "$(VLLM_API_KEY)" in found["env[2]"]


# --- extraArgs read as vLLM's parser reads them ---------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "written", "flag"),
    [
        ("--api-ke=sk-x", "--api-ke", "--api-key"),
        ("--api_key=sk-x", "--api_key", "--api-key"),
        ("--api-key.x=1", "--api-key.x", "--api-key"),
        ("--served-model=other", "--served-model", "--served-model-name"),
        ("--po=1", "--po", "--port"),
        ("--tensor-parallel=2", "--tensor-parallel", "--tensor-parallel-size"),
        ("--tensor_parallel_size=2", "--tensor_parallel_size", "--tensor-parallel-size"),
        ("-t", "-t", "-tp"),
        ("--ho=0.0.0.0", "--ho", "--host"),
    ],
)
def test_an_abbreviated_or_underscored_flag_is_refused_naming_what_was_written(argument, written, flag):
    found, message = problems(with_changes(server__extraArgs=["--max-num-batched-tokens=8192", argument]))
    assert set(found) == {"server.extraArgs[1]"}
    assert repr(written) in found["server.extraArgs[1]"] and flag in found["server.extraArgs[1]"]
    assert "sk-x" not in message


def test_a_prefix_of_a_typed_flag_is_refused_only_when_that_key_is_set():
    parse_config(with_changes(server__extraArgs=["--max-model=8192"]))
    found, _ = problems(with_changes(server__extraArgs=["--max-model=8192"], engine={"maxModelLen": 4096}))
    assert "--max-model-len is also set by engine.maxModelLen, the typed key for it" in found["server.extraArgs[0]"]
    found, _ = problems(with_changes(server__extraArgs=["--disable-prefix-caching"], engine={"enablePrefixCaching": True}))
    assert "engine.enablePrefixCaching" in found["server.extraArgs[0]"]


def test_a_config_file_of_flags_is_refused():
    found, _ = problems(with_changes(server__extraArgs=["--config=/model/flags.yaml"]))
    assert "cannot see" in found["server.extraArgs[0]"]


def _argparse_reading(argument, options):
    """What Python's own argparse (allow_abbrev=True, as vLLM leaves it) sets for argument."""
    import argparse

    class Refusing(argparse.ArgumentParser):
        def error(self, message):
            raise ValueError(message)

    parser = Refusing(add_help=False, allow_abbrev=True)
    for index, option in enumerate(options):
        parser.add_argument(option, dest=f"o{index}", nargs="?", const="set")
    try:
        namespace, _ = parser.parse_known_args([argument])
    except ValueError as error:
        return "ambiguous" if "ambiguous" in str(error) else "error"
    set_ = [options[int(dest[1:])] for dest, value in vars(namespace).items() if value is not None]
    return set_[0] if set_ else None


@pytest.mark.parametrize("version", ["0.32.0", "0.33.0", "0.34.0"])
def test_the_flag_reader_agrees_with_argparse_on_vllms_options(version):
    from components.config.vllm_flags import read_argument
    from components.engine import load_profile

    options = load_profile(version).option_strings
    arguments = ["--api-ke=x", "--po=1", "--por", "--served", "--tensor-p=2", "--h", "--hos=x", "-t", "-tp=2", "-qawq",
                 "-d", "-dp", "--model", "--mod", "--max-model-len=1", "--no-enable-prefix", "--disable-prefix-c",
                 "--enable-lora", "--enable-lo", "--nothing-like-this", "-z", "--config-f=x", "--enable-ext", "--checkpoint-p"]
    for argument in arguments:
        reading = read_argument(argument, options)
        expected = _argparse_reading(argument, options)
        if expected == "ambiguous":
            assert reading.ambiguous, argument
        elif expected in (None, "error"):
            assert reading.options == (), argument
        else:
            assert reading.options == (expected,), argument


@pytest.mark.parametrize("name", ["GIT_CONFIG_COUNT", "GIT_SSH_COMMAND", "GIT_ASKPASS", "RCLONE_CONFIG_X_TYPE"])
def test_env_may_not_reconfigure_the_download_tools(name):
    found, _ = problems(with_changes(env=[{"name": name, "value": "x"}]))
    assert "would reconfigure git or rclone" in found["env[0].name"]


def test_the_option_list_generator_applies_vllms_rules(tmp_path):
    """scripts/vllm_options.py on a vLLM-shaped source: bool fields get --no-x, --enable-x gets
    --disable-x, an optional-valued bool | str | None gets neither, and extra flags are kept."""
    import importlib.util
    from pathlib import Path

    root = tmp_path / "vllm"
    for directory in ("config", "entrypoints/common", "engine", "utils"):
        (root / directory).mkdir(parents=True)
    # 0.33 on: EnableDisableAction pairs --enable-x with --disable-x (0.32 has no such class).
    (root / "utils/argparse_utils.py").write_text("class EnableDisableAction(BooleanOptionalAction):\n    pass\n")
    (root / "config/model.py").write_text(
        "class ModelConfig:\n    max_model_len: int | None = None\n    enable_sleep_mode: bool = False\n"
        "    hf_token: bool | str | None = None\n"
    )
    (root / "entrypoints/common/cli_args.py").write_text(
        "class BaseFrontendArgs:\n    lora_modules: list | None = None\n"
        "class FrontendArgs(BaseFrontendArgs):\n    port: int = 8000\n    allow_credentials: bool = False\n"
        "def make_arg_parser(parser):\n    parser.add_argument('--headless', action='store_true')\n"
    )
    (root / "engine/arg_utils.py").write_text(
        "class EngineArgs:\n    @staticmethod\n    def add_cli_args(parser):\n"
        "        model_kwargs = get_kwargs(ModelConfig)\n"
        "        group.add_argument('--max-model-len', '-mml', **model_kwargs['max_model_len'])\n"
        "        group.add_argument('--enable-sleep-mode', **model_kwargs['enable_sleep_mode'])\n"
        "        group.add_argument('--hf-token', **{**model_kwargs['hf_token'], 'default': None})\n"
    )
    script = Path(__file__).resolve().parent.parent / "scripts" / "vllm_options.py"
    spec = importlib.util.spec_from_file_location("vllm_options_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.server_options(root) == sorted([
        "-h", "--help", "--headless", "--lora-modules", "--port", "--allow-credentials", "--no-allow-credentials",
        "--max-model-len", "-mml", "--enable-sleep-mode", "--no-enable-sleep-mode", "--disable-sleep-mode", "--hf-token",
    ])
    parser = module.server_parser(root)
    assert parser["--port"] == {"value": {"type": "int", "optional": False}}
    assert parser["--max-model-len"] == {"value": {"type": "human_int_or_auto", "optional": True}}
    assert parser["--enable-sleep-mode"] == parser["--headless"] == {"flag": True}
    assert parser["--hf-token"] == {}  # bool | str | None: any text, or none
    # Without EnableDisableAction (0.32), a bool field gets --no-x only.
    (root / "utils/argparse_utils.py").write_text("")
    assert "--disable-sleep-mode" not in module.server_options(root)


def test_a_bare_extra_arg_is_refused_since_vllm_could_read_it_as_the_model():
    # `vllm serve` takes an optional positional model_tag in place of --model.
    found, _ = problems({
        "model": {"deployName": "m", "source": "huggingface", "huggingface": {"id": "org/m"}},
        "server": {"extraArgs": ["--max-model-len", "4321", "/tmp/other-model"]},
    })
    assert set(found) == {"server.extraArgs[0]", "server.extraArgs[1]", "server.extraArgs[2]"}
    # The flag without its value in the same item is refused too: the parser takes the next item.
    assert "--max-model-len needs a value in the same item (--max-model-len=...)" in found["server.extraArgs[0]"]
    assert "4321" not in found["server.extraArgs[1]"]  # a bare item may be a secret: never shown
    assert "could read a bare item as the model to serve" in found["server.extraArgs[2]"]
    assert "--max-model-len=8192" in found["server.extraArgs[1]"]
