"""Engine profiles: image.tag (or server.engineVersion) picks the vLLM release whose parser,
defaults, routes and entry point the stack is checked and rendered against (components/engine)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pulumi
import pytest

from components.config import ConfigError, parse_config
from components.config.engine_rules import engine_warnings
from components.config.multinode_rules import fit_report, offline_architecture
from components.engine import choose, engine_profile, load_profile, supported_versions
from tests.conftest import HF_MODEL, container, render_values

VALID = {"model": {"deployName": "m", "source": "huggingface", "huggingface": {"id": "org/m"}}}
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "vllm_options.py"


def stack(tag: str = "", extra_args: list[str] | None = None, **server) -> dict:
    raw = copy.deepcopy(VALID)
    if tag:
        raw["image"] = {"tag": tag}
    raw["server"] = {"extraArgs": extra_args or [], **server}
    return raw


def refused(raw: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return dict(caught.value.problems)


def test_every_supported_release_has_a_profile_and_the_default_is_the_newest():
    assert supported_versions() == ("0.32.0", "0.33.0", "0.34.0")
    assert engine_profile(parse_config(VALID)).version == "0.34.0"


def test_an_option_only_0_34_has_is_refused_for_0_32_naming_the_release():
    found = refused(stack("v0.32.0", ["--checkpoint-prepare-on-startup"]))
    message = found["server.extraArgs[0]"]
    assert "is not an option of vLLM 0.32.0 (image.tag 'v0.32.0')" in message
    assert "vLLM 0.34.0 has it: set image.tag to v0.34.0" in message
    parse_config(stack("v0.34.0", ["--checkpoint-prepare-on-startup"]))


def test_an_unknown_option_is_refused_with_a_did_you_mean():
    found = refused(stack("", ["--max-num-seqz=8"]))
    assert "'--max-num-seqz' is not an option of vLLM 0.34.0" in found["server.extraArgs[0]"]
    assert "did you mean --max-num-seqs?" in found["server.extraArgs[0]"]


def test_the_disable_forms_exist_only_where_the_release_registers_them():
    # EnableDisableAction (vllm/utils/argparse_utils.py) pairs --enable-x with --disable-x from 0.33 on.
    parse_config(stack("v0.33.0", ["--disable-log-requests", "--enable-log-requests"]))
    assert "server.extraArgs[1]" in refused(stack("v0.32.0", ["--no-enable-log-requests", "--disable-log-requests"]))


@pytest.mark.parametrize(
    ("argument", "why"),
    [
        ("--block-size=x", "the value of --block-size is not one vLLM 0.34.0 (image.tag 'v0.34.0') accepts: it takes an integer"),
        ("--max-num-batched-tokens=8.5K", "takes an integer (k/m/g/t multiply by 1000, K/M/G/T by 1024)"),
        ("--chat-template-content-format=xml", "it takes one of auto, openai, string"),
        ("--max-lora-rank=12", "it takes one of 1, 8, 16, 32, 64, 128, 256, 320, 512"),
        ("--enforce-eager=true", "--enforce-eager is a switch in vLLM 0.34.0"),
        ("--max-num-batched-tokens", "needs a value in the same item"),
        ("--enable-chunked", "is ambiguous to the parser of vLLM 0.34.0"),
    ],
)
def test_a_value_the_option_cannot_take_is_refused(argument, why):
    assert why in refused(stack("", [argument]))["server.extraArgs[0]"]


@pytest.mark.parametrize("argument", [
    "--max-num-batched-tokens=8k", "--max-num-batched-tokens=8K", "--max-model-len=auto", "--max-model-len=-1",
    "--seed=7", "--enforce-eager", "--no-enforce-eager",
    "--kv-cache-memory-bytes=8G", "--block-size=32", "--cpu-offload-gb=1.5", "--scheduling-policy=priority",
    "--num-gpu-blocks-override=None", "--tool-call-parser=hermes", "--dtype=bfloat16",
])
def test_values_the_parser_converts_are_accepted(argument):
    parse_config(stack("", [argument]))


def test_a_typed_key_whose_flag_the_release_refuses_is_refused_at_the_key():
    adapters = [{"name": "a", "source": "huggingface", "huggingface": {"id": "org/a"}}]
    raw = {**stack(), "lora": {"maxLoraRank": 12, "adapters": adapters}}
    assert refused(raw)["lora.maxLoraRank"] == (
        "renders --max-lora-rank, and the value of --max-lora-rank is not one vLLM 0.34.0 (image.tag 'v0.34.0') "
        "accepts: it takes one of 1, 8, 16, 32, 64, 128, 256, 320, 512"
    )
    parse_config({**stack(), "lora": {"maxLoraRank": 16, "adapters": adapters}})


def test_a_custom_tag_warns_naming_the_nearest_profile_and_refuses_nothing():
    config = parse_config(stack("my-build-2026-11", ["--max-num-seqz=8"]))
    first, finding = engine_warnings(config)
    assert "image.tag 'my-build-2026-11' names no vLLM release this program has a profile of (0.32, 0.33, 0.34)" in first
    assert "the nearest, vLLM 0.34.0" in first and "Set server.engineVersion" in first
    assert finding.startswith("server.extraArgs.0: '--max-num-seqz' is not an option of vLLM 0.34.0")
    # A release newer than every profile gets the newest; an older one the oldest.
    assert choose("v0.40.1").profile.version == "0.34.0" and not choose("v0.40.1").exact
    assert choose("v0.3.3").profile.version == "0.32.0"
    assert choose("v0.33.2-cu128").exact and choose("v0.33.2-cu128").profile.version == "0.33.0"


def test_the_warning_reaches_pulumi_when_the_server_is_rendered(monkeypatch):
    warned = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_, **__: warned.append(message))
    render_values({"model": HF_MODEL, "image": {"tag": "nightly-20261130"}})
    assert any("image.tag 'nightly-20261130' names no vLLM release" in message for message in warned)


def test_engine_version_states_the_release_behind_a_custom_tag():
    config = parse_config(stack("my-build", [], engineVersion="0.32.0"))
    assert engine_profile(config).version == "0.32.0" and engine_warnings(config) == []
    assert "server.extraArgs[0]" in refused(stack("my-build", ["--checkpoint-prepare-on-startup"], engineVersion="0.32"))
    assert "is not a vLLM release" in refused(stack("", [], engineVersion="newest"))["server.engineVersion"]


@pytest.mark.parametrize(("tag", "command"), [
    ("v0.32.0", ["python3", "-m", "vllm.entrypoints.openai.api_server"]),
    ("v0.33.0", ["python3", "-m", "vllm.entrypoints.openai.api_server"]),
    ("v0.34.0", ["vllm", "serve"]),
])
def test_the_entry_point_is_the_releases(tag, command):
    server = container(render_values({"model": HF_MODEL, "image": {"tag": tag}}), "Deployment", "vllm")
    assert server["command"] == command
    assert "--shutdown-timeout=300" in server["args"]


# Llama 3.1 8B on an L4 (24 GiB): the KV room moves with the release's utilization default.
LLAMA_8B = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
    "torch_dtype": "bfloat16", "tie_word_embeddings": False,
}


@pytest.mark.parametrize(("tag", "extra", "utilization"), [
    ("v0.32.0", [], 0.92),
    ("v0.33.0", [], 0.92),
    ("v0.34.0", [], 1.0),
    # The extensible KV cache off: 0.34's unset utilization resolves to 0.92 (config/cache.py).
    ("v0.34.0", ["--disable-extensible-kv-cache"], 0.92),
    ("v0.34.0", ["--kv-cache-memory-bytes=8G"], 0.92),
])
def test_the_fit_check_uses_the_releases_utilization_default(tag, extra, utilization):
    raw = stack(tag, extra, gpuType="L4")
    raw["model"]["architecture"] = LLAMA_8B
    raw["engine"] = {"maxModelLen": 8192}
    config = parse_config(raw)
    report = fit_report(config, offline_architecture(config))
    assert report.skipped is None and report.gpu_memory_utilization == utilization
    raw["engine"]["gpuMemoryUtilization"] = 0.95  # set: the typed key wins over any default
    config = parse_config(raw)
    assert fit_report(config, offline_architecture(config)).gpu_memory_utilization == 0.95


def test_the_routes_and_the_key_follow_the_release():
    """0.34 mounts /checkpoint/* with --enable-sleep-mode, outside what --api-key guards."""
    old, new = load_profile("0.33.0"), load_profile("0.34.0")
    assert new.guarded_prefixes == old.guarded_prefixes == ("/v1", "/v2", "/inference", "/cohere")
    checkpoint = {(r.method, r.path): r for r in new.routes if r.path.startswith("/checkpoint/")}
    assert set(checkpoint) == {("POST", "/checkpoint/prepare"), ("POST", "/checkpoint/restore"), ("GET", "/checkpoint/status")}
    assert all(not r.guarded and any("enable_sleep_mode" in w for w in r.when) for r in checkpoint.values())
    assert not any(r.path.startswith("/checkpoint/") for r in old.routes)
    unguarded = {r.path for r in new.unguarded_routes()}
    assert {"/invocations", "/tokenize", "/health", "/metrics"} <= unguarded
    assert "/v1/chat/completions" not in unguarded


def _script():
    spec = importlib.util.spec_from_file_location("vllm_options_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_next_release_routine_shows_what_changed():
    import json

    script = _script()
    old, new = (json.loads((SCRIPT.parent.parent / "components/engine" / f"vllm-{v}.json").read_text()) for v in ("0.33.0", "0.34.0"))
    report = "\n".join(script.changes(old, new))
    assert "options: 485 -> 496 option strings" in report
    assert "  + --checkpoint-prepare-on-startup" in report and "  + --enable-extensible-kv-cache" in report
    assert "default gpuMemoryUtilization: 0.92 -> null" in report
    assert "entry point: python3 -m vllm.entrypoints.openai.api_server -> vllm serve" in report
    assert "new route: POST /checkpoint/prepare when" in report and "(NOT guarded by --api-key)" in report
    assert "  ~ --all2all-backend: choices +mori" in report  # a changed value rule, as its difference
    assert "route gone: POST /fault_tolerance/apply" in report and "new route: POST /v1/fault_tolerance/apply" in report


def test_the_profiles_are_the_generators_layout():
    """Each profile is what dump() writes (one option or route a line), so a regenerated one diffs cleanly."""
    import json

    script = _script()
    for version in supported_versions():
        text = (SCRIPT.parent.parent / "components/engine" / f"vllm-{version}.json").read_text()
        assert script.dump(json.loads(text)) == text
