"""The fit check wired into the config: server.gpuType / gpuMemory, model.architecture, fitCheck.readHub."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, parse_config
from components.config.multinode_rules import fit_report, hub_fit_problems, offline_architecture
from components.fit import UnknownArchitecture, read_architecture
from tests.conftest import problems, render_values
from tests.test_fit_hub import FILES, PREFIX, REPO, hub  # noqa: F401 - hub is the fake Hub fixture
from tests.test_multinode import example_values
from vllm_serving.stack_file import PROJECT_ROOT

LLAMA_8B = {
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
}
ONE_L4 = {
    "model": {"deployName": "llama-8b", "volume": {"size": "40Gi"}, "source": "huggingface",
              "huggingface": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "architecture": LLAMA_8B},
    "server": {"gpuType": "L4"},
}


def one_node_example() -> dict[str, Any]:
    """The 405B example on one node of eight GPUs."""
    values = example_values()
    del values["server"]["nodes"], values["server"]["network"]
    return values


def test_the_example_fits_its_sixteen_h100s_with_room_for_its_context():
    config = parse_config(example_values())
    report = fit_report(config, offline_architecture(config))
    assert report.problems() == []
    assert (report.tensor_parallel, report.pipeline_parallel) == (8, 2)
    assert report.tokens >= 32768
    # 760Gi of weights over 16 GPUs, a little more on the stage holding the embeddings.
    assert 47 <= report.weight_bytes_per_gpu / 2**30 <= 49


def test_the_example_on_one_node_is_refused_with_the_numbers_and_a_layout_that_fits():
    found = problems(one_node_example())
    message = found["engine.tensorParallelSize"]
    assert message.startswith("the weights take ")
    assert "over 8 GPUs, TP 8 x PP 1" in message and "usable on a H100-80GB" in message
    assert "engine.tensorParallelSize 8 x engine.pipelineParallelSize 2 (server.nodes 2 of 8 GPUs)" in message


def test_a_context_that_the_kv_cache_cannot_hold_names_max_model_len():
    found = problems(ONE_L4)
    assert found["engine.maxModelLen"].startswith("the KV cache holds ")
    assert "fewer than the context of 131072" in found["engine.maxModelLen"]
    config = parse_config({**ONE_L4, "engine": {"maxModelLen": 8192}})
    assert fit_report(config, offline_architecture(config)).tokens >= 8192


def test_gpu_memory_wins_over_the_type():
    values = copy.deepcopy(ONE_L4)
    values["server"]["gpuMemory"] = "80Gi"
    config = parse_config(values)
    assert fit_report(config, offline_architecture(config)).gpu.memory_bytes == 80 * 2**30


def test_an_unknown_gpu_type_is_refused_naming_the_known_ones():
    found = problems({**ONE_L4, "server": {"gpuType": "H100"}})
    assert "'H100' is not a GPU type the fit check knows (H100-80GB, H100-94GB" in found["server.gpuType"]


def test_an_unknown_architecture_or_no_gpu_skips_the_check():
    values = copy.deepcopy(ONE_L4)
    values["model"]["architecture"] = {"model_type": "gemma3", "num_hidden_layers": 26}
    config = parse_config(values)
    assert "gemma3" in fit_report(config, offline_architecture(config)).summary()
    no_gpu = copy.deepcopy(ONE_L4)
    del no_gpu["server"]
    config = parse_config(no_gpu)
    assert fit_report(config, offline_architecture(config)).skipped.startswith("GPU memory unknown")


def test_the_hub_is_read_only_when_asked():
    def never(*args: Any, **kwargs: Any):
        raise AssertionError("the Hub was read without fitCheck.readHub")

    values = copy.deepcopy(ONE_L4)
    del values["model"]["architecture"]
    assert hub_fit_problems(parse_config(values), read=never) == []

    reads = []

    def read(repo_id: str, revision: str, token: Any = None):
        reads.append((repo_id, revision))
        return read_architecture(LLAMA_8B)

    found = dict(hub_fit_problems(parse_config({**values, "fitCheck": {"readHub": True}}), read=read))
    assert reads == [("meta-llama/Llama-3.1-8B-Instruct", "main")]
    assert "fewer than the context of 131072" in found["engine.maxModelLen"]


def test_an_unreadable_hub_repository_skips_rather_than_fails():
    values = copy.deepcopy(ONE_L4)
    del values["model"]["architecture"]
    config = parse_config({**values, "fitCheck": {"readHub": True}})
    assert hub_fit_problems(config, read=lambda *_a, **_k: UnknownArchitecture("could not read it: timed out")) == []


def test_reading_the_hub_needs_a_hugging_face_source():
    values = {"model": {"deployName": "m", "volume": {"existingClaim": "models"}}, "fitCheck": {"readHub": True}}
    assert "model.source is not huggingface" in problems(values)["fitCheck.readHub"]


def test_render_refuses_a_model_that_cannot_fit_with_exit_2(tmp_path: Path):
    stack = tmp_path / "Pulumi.one-node.yaml"
    stack.write_text(yaml.safe_dump({"config": {f"vllm-serving:{k}": v for k, v in one_node_example().items()}}))
    result = subprocess.run(
        [sys.executable, "-m", "vllm_serving", "render", str(stack)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "vllm-serving:engine.tensorParallelSize: the weights take" in result.stderr



def test_the_program_reads_the_hub_when_asked_and_refuses_what_cannot_fit(hub, monkeypatch):  # noqa: F811 - the fixture
    server = hub(FILES)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    values = copy.deepcopy(ONE_L4)
    del values["model"]["architecture"]
    values["model"]["huggingface"]["id"] = REPO
    render_values(values)  # not asked: no request
    assert server.seen == []
    with pytest.raises(ConfigError) as refused:
        render_values({**values, "fitCheck": {"readHub": True}})
    assert "fewer than the context of 131072" in dict(refused.value.problems)["engine.maxModelLen"]
    assert [path for _, path, _ in server.seen] == [PREFIX + "config.json", PREFIX + "model.safetensors.index.json"]
