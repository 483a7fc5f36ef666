"""Config errors a person can act on: did-you-mean, `--path` key paths, values as
`pulumi config set --path` stores them, and the hint when `--path` was forgotten."""

from __future__ import annotations

import json

import pytest
import yaml

from components.config import ConfigError, decode_engine_config, parse_config
from components.config.errors import key_path
from tests.conftest import HF_MODEL, engine_config, manifest, problems, render_values
from tests.test_cli import run_cli
from vllm_serving.render import render_config

# --- did you mean -------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw_extra", "path", "suggestion"), [
    ({"replicas": 2}, "replicas", "replicaCount"),
    ({"Namespace": "llm"}, "Namespace", "namespace"),
    ({"server": {"extraArg": ["--x"]}}, "server.extraArg", "server.extraArgs"),
    ({"download": {"tolerations": [{"key": "k", "efect": "NoSchedule"}]}}, "download.tolerations[0].efect",
     "download.tolerations[0].effect"),
    ({"resources": {"limits": {"nvidia.com/gpus": 2}}}, 'resources.limits["nvidia.com/gpus"]',
     'resources.limits["nvidia.com/gpu"]'),
])
def test_a_misspelt_key_at_any_level_gets_the_closest_allowed_key(raw_extra, path, suggestion):
    found = problems({"model": HF_MODEL, **raw_extra})
    assert found[path].startswith(f"unknown key; did you mean {suggestion}? (allowed here: ")


def test_a_misspelt_nested_model_key_is_suggested_too():
    found = problems({"model": {**HF_MODEL, "volume": {"sise": "1Gi"}}})
    assert found["model.volume.sise"] == (
        "unknown key; did you mean model.volume.size? "
        "(allowed here: storageClass, size, accessModes, existingClaim, subPath, retainOnDelete, protect, keepPreviousVersions)"
    )


def test_a_key_like_nothing_allowed_gets_no_guess():
    found = problems({"model": HF_MODEL, "zzzzqqq": 1})
    assert found["zzzzqqq"].startswith("unknown key (allowed here: namespace, replicaCount,")


def test_a_misspelt_namespace_is_refused_by_name_with_the_right_spelling(tmp_path):
    stack = tmp_path / "Pulumi.ns.yaml"
    model = {"deployName": "m", "source": "huggingface", "huggingface": {"id": "a/b"}}
    stack.write_text(yaml.safe_dump({"config": {"vllm-serving:model": model, "vllm_serving:replicaCount": 0}}))
    result = run_cli("render", str(stack))
    assert result.returncode == 2, result.stderr
    assert "vllm_serving:replicaCount" in result.stderr
    assert "did you mean vllm-serving:replicaCount?" in result.stderr


def test_provider_namespaces_are_left_alone_and_others_refused():
    raw = decode_engine_config({"kubernetes:context": "prod", "pulumi:tags": "{}", **engine_config({"model": HF_MODEL})})
    assert set(raw) == {"model"}
    # A namespace no part of this program reads would be ignored without a word: refused, as the
    # offline reader refuses it (issue 11: unknown namespaces are refused with a did-you-mean).
    with pytest.raises(ConfigError, match="aws:region: unknown namespace 'aws'"):
        decode_engine_config({"aws:region": "eu-west-1", **engine_config({"model": HF_MODEL})})


# --- key paths in --path syntax -----------------------------------------------------------------


@pytest.mark.parametrize(("loc", "path"), [
    (("env", 0, "name"), "env[0].name"),
    (("resources", "limits", "nvidia.com/gpu"), 'resources.limits["nvidia.com/gpu"]'),
    (("server", "nodeSelector", "kubernetes.io/hostname"), 'server.nodeSelector["kubernetes.io/hostname"]'),
    (("server", "nodeSelector", "7"), 'server.nodeSelector["7"]'),
    (("lora", "adapters", 1, "huggingface", "id"), "lora.adapters[1].huggingface.id"),
    (("model.volume.size",), "model.volume.size"),
])
def test_key_paths_are_written_as_pulumi_config_set_path_takes_them(loc, path):
    # `pulumi config set --help`: 'names[0]', '["parent.name"]["nested.name"]'.
    assert key_path(loc) == path


def test_every_printed_path_is_in_path_syntax_from_pydantic_and_from_the_rules():
    raw = {
        "model": HF_MODEL,
        "resources": {"limits": {"nvidia.com/gpu": 0}},
        "env": [{"name": "1X", "value": "1"}],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    message = str(caught.value)
    assert '  vllm-serving:resources.limits["nvidia.com/gpu"]: 0 GPUs' in message
    assert "  vllm-serving:env[0].name: '1X' is not a valid environment variable name" in message
    assert "env.0" not in message
    # A rule's own key (rules name list items the dotted way) is printed the same way.
    found = problems({"model": HF_MODEL, "env": [{"name": "A", "value": "1"}, {"name": "OK"}]})
    assert found == {"env[1]": "OK: set exactly one of value or valueFrom"}


# --- numbers and booleans where Kubernetes wants strings ----------------------------------------


def test_label_annotation_and_selector_values_set_as_numbers_render_as_strings():
    # What `pulumi config set --path server.nodeSelector.tier 3` (and `... true`) store: a number, a boolean.
    rendering = render_values({
        "model": HF_MODEL,
        "server": {
            "nodeSelector": {"tier": 3, "nvidia.com/gpu.present": True},
            "podAnnotations": {"team-id": 42},
            "tolerations": [{"key": "gpu-gen", "operator": "Equal", "value": 4, "effect": "NoSchedule"}],
        },
        "service": {"annotations": {"lb.example.com/idle-timeout": 3600}},
        "download": {"nodeSelector": {"disk": 1}},
    })
    pod = manifest(rendering, "Deployment")["spec"]["template"]
    assert pod["spec"]["nodeSelector"] == {"tier": "3", "nvidia.com/gpu.present": "true"}
    assert pod["metadata"]["annotations"]["team-id"] == "42"
    assert [t["value"] for t in pod["spec"]["tolerations"] if t["key"] == "gpu-gen"] == ["4"]
    assert manifest(rendering, "Service")["metadata"]["annotations"]["lb.example.com/idle-timeout"] == "3600"
    assert manifest(rendering, "Job")["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "1"}


def test_monitor_labels_and_ingress_annotations_set_as_numbers_render_as_strings():
    rendering = render_values({
        "model": HF_MODEL,
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": 2}}},
        "ingress": {"enabled": True, "host": "llm.example.com", "annotations": {"example.com/weight": 10}},
        "apiKeySecret": {"name": "llm-key"},
    })
    assert manifest(rendering, "ServiceMonitor")["metadata"]["labels"]["release"] == "2"
    assert manifest(rendering, "Ingress")["metadata"]["annotations"]["example.com/weight"] == "10"


def test_a_mapping_is_still_required_where_one_is_expected():
    found = problems({"model": HF_MODEL, "server": {"nodeSelector": ["tier"]}})
    assert found["server.nodeSelector"].startswith("Input should be a valid dictionary")


# --- a structured key set without --path --------------------------------------------------------


def test_a_nested_key_set_without_path_is_explained_with_the_commands_to_fix_it(tmp_path):
    # `pulumi config set model.volume.size 40Gi` (no --path) writes a flat top-level key. Under
    # `pulumi up` the engine hands it over as one key, and the program explains it:
    with pytest.raises(ConfigError) as raised:
        render_config({**engine_config({"model": HF_MODEL}), "vllm-serving:model.volume.size": "40Gi"}, [])
    assert (
        "  vllm-serving:model.volume.size: unknown key: a nested key set without --path (the engine passes it "
        "as one flat key). Run `pulumi config rm model.volume.size` and `pulumi config set --path "
        "model.volume.size <value>`, or write it nested under vllm-serving:model in the stack file"
    ) in str(raised.value)
    # Offline, the stack file reader says the same before the program runs.
    stack = tmp_path / "Pulumi.flat.yaml"
    stack.write_text(yaml.safe_dump({"config": {"vllm-serving:model": HF_MODEL, "vllm-serving:model.volume.size": "40Gi"}}))
    result = run_cli("render", str(stack))
    assert result.returncode == 2
    assert "pulumi config set --path model.volume.size <value>" in result.stderr


def test_json_text_where_a_mapping_is_expected_says_how_to_set_it():
    # `pulumi config set --path server.nodeSelector '{"tier": "gpu"}'` stores the JSON as a string.
    found = problems({"model": HF_MODEL, "server": {"nodeSelector": json.dumps({"tier": "gpu"})}})
    assert found["server.nodeSelector"].endswith(
        "this is JSON text, which `pulumi config set --path` stores as a string: set each item with "
        "`pulumi config set --path 'server.nodeSelector.KEY' VALUE`, or write the value as YAML in the stack file"
    )
    found = problems({"model": HF_MODEL, "server": {"extraArgs": '["--max-model-len=4096"]'}})
    assert "`pulumi config set --path 'server.extraArgs[0]' VALUE`" in found["server.extraArgs"]


def test_a_plain_string_of_the_wrong_type_gets_no_json_hint():
    found = problems({"model": HF_MODEL, "server": {"nodeSelector": "tier=gpu"}})
    assert "JSON" not in found["server.nodeSelector"]



def test_a_number_in_a_string_key_names_the_two_ways_to_write_it_as_a_string():
    """`pulumi config set --path model.git.ref 2024` stores a number (integers are numbers there)."""
    git = {"deployName": "q", "source": "git", "git": {"url": "https://example.com/q.git", "ref": 2024}}
    found = problems({"model": git})
    assert found["model.git.ref"] == (
        'expected a string, got a number 2024: quote it in the stack file (ref: "2024"), or set it with '
        "`pulumi config set --path --type string 'vllm-serving:model.git.ref' VALUE`"
    )


def test_a_boolean_in_a_string_list_item_is_shown_as_a_quoted_item():
    found = problems({"model": HF_MODEL, "server": {"extraArgs": [True]}})
    assert found["server.extraArgs[0]"].startswith('expected a string, got a boolean true: quote it in the stack file (- "true")')

# --- extraArgs clashing with a typed key --------------------------------------------------------


@pytest.mark.parametrize("argument", ["--tensor-parallel-size=2", "--tensor_parallel_size=2", "-tp=2"])
def test_tensor_parallel_in_extra_args_is_blamed_on_the_argument_and_names_the_typed_key(argument):
    found = problems({"model": HF_MODEL, "server": {"extraArgs": ["--max-num-batched-tokens=8192", argument]}})
    assert set(found) == {"server.extraArgs[1]"}
    message = found["server.extraArgs[1]"]
    # A spelling other than the flag's own is named as written, then as vLLM's parser reads it.
    assert "--tensor-parallel-size is already on the command line" in message or message.startswith(
        "-tp is already on the command line"
    )
    assert message.startswith(argument.split("=")[0]) or message.startswith(repr(argument.split("=")[0]))
    assert 'resources.limits["nvidia.com/gpu"] = 1' in message
    assert "remove it from server.extraArgs, and set engine.tensorParallelSize to choose another value" in message


def test_tensor_parallel_in_both_places_names_the_typed_key_the_user_set():
    found = problems({
        "model": HF_MODEL,
        "resources": {"limits": {"nvidia.com/gpu": 2}},
        "engine": {"tensorParallelSize": 2},
        "server": {"extraArgs": ["--tensor-parallel-size=2"]},
    })
    assert found["server.extraArgs[0]"] == (
        "--tensor-parallel-size is also set by engine.tensorParallelSize, the typed key for it; "
        "remove it from server.extraArgs and keep engine.tensorParallelSize"
    )

