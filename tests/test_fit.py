"""The fit check's figures against published ones, its divisibility checks and its messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.fit import (
    GIB,
    GPU_TABLE,
    Architecture,
    UnknownArchitecture,
    WeightBytes,
    check_fit,
    gpu_spec,
    read_architecture,
    stage_layer_counts,
)

FIXTURES = yaml.safe_load((Path(__file__).parent / "fixtures" / "model_architectures.yaml").read_text())["models"]
MODELS = {model["id"]: model for model in FIXTURES}
H100 = gpu_spec("H100-80GB")


def arch(model_id: str, with_index: bool = True) -> Architecture:
    model = MODELS[model_id]
    weights = WeightBytes.declared(model["weight_total_size"], "index") if with_index and "weight_total_size" in model else None
    result = read_architecture(model["config"], weights)
    assert isinstance(result, Architecture), result
    return result


def test_fixtures_name_their_source_and_cover_dense_and_moe():
    assert len(FIXTURES) >= 6
    assert all(model["source"].startswith("https://huggingface.co/" + model["id"]) for model in FIXTURES)
    kinds = {arch(model["id"], with_index=False).num_experts > 0 for model in FIXTURES}
    assert kinds == {True, False}


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_counted_parameters_match_the_published_count(model_id):
    # Each fixture's `reference.params` names its source (model card, Meta's params.json).
    published = MODELS[model_id]["reference"]["params"]
    assert arch(model_id).loaded_params == pytest.approx(published, rel=0.01)


def test_deepseek_checkpoint_counts_the_mtp_module_vllm_does_not_load():
    # deepseek-ai/DeepSeek-V3 README: 685B on the Hub = 671B main model + 14B MTP (of which
    # 11.5B unique: the MTP module shares the embedding and output head).
    v3 = arch("deepseek-ai/DeepSeek-V3")
    assert v3.unloaded_params == pytest.approx(11.5e9, rel=0.02)


@pytest.mark.parametrize(
    ("model_id", "published_bytes"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", 16060522496),  # safetensors index total_size
        ("meta-llama/Llama-3.1-70B-Instruct", 141125877760),  # 70,562,938,880 params x 2 (Meta params.json)
        ("meta-llama/Llama-3.1-405B-Instruct", 810e9),  # 405B x 2 bytes (Meta model card)
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 93.4e9),  # 46.7B x 2 bytes (Mistral AI)
        ("Qwen/Qwen2.5-7B-Instruct", 15231233024),  # safetensors index total_size
        ("deepseek-ai/DeepSeek-V3", 671e9 + 2 * 0.93e9),  # fp8 main model, bf16 embedding + head
    ],
)
def test_weights_on_one_gpu_match_the_published_size(model_id, published_bytes):
    report = check_fit(arch(model_id, with_index=False), gpu_spec(memory_bytes=4096 * GIB), 1, 1, gpu_memory_utilization=0.9)
    assert report.weight_bytes_per_gpu == pytest.approx(published_bytes, rel=0.02)


def test_declared_bytes_are_split_exactly():
    report = check_fit(arch("meta-llama/Llama-3.1-8B-Instruct"), H100, 1, 1, gpu_memory_utilization=0.9)
    assert abs(report.weight_bytes_per_gpu - 16060522496) < 1024
    assert "index" in report.weights_source


def test_kv_bytes_per_token_standard_attention():
    # 2 (K and V) x 32 layers x 8 KV heads x 128 head_dim x 2 bytes = 128 KiB, as vLLM's
    # FullAttentionSpec page size per token (vllm/v1/kv_cache_interface.py).
    llama8 = arch("meta-llama/Llama-3.1-8B-Instruct")
    assert check_fit(llama8, H100, 1, 1).kv_bytes_per_token_per_gpu == 128 * 1024
    assert check_fit(llama8, H100, 2, 1).kv_bytes_per_token_per_gpu == 64 * 1024
    assert check_fit(llama8, H100, 1, 1, kv_cache_dtype="fp8").kv_bytes_per_token_per_gpu == 64 * 1024
    # Llama-3.1-70B: 2 x 80 x 8 x 128 x 2 = 320 KiB per token on one GPU.
    assert check_fit(arch("meta-llama/Llama-3.1-70B-Instruct"), H100, 1, 1).kv_bytes_per_token_per_gpu == 320 * 1024


def test_kv_bytes_per_token_mla_is_not_split_by_tp():
    # MLAAttentionSpec: one latent of kv_lora_rank + qk_rope_head_dim = 576 values per layer.
    v3 = arch("deepseek-ai/DeepSeek-V3")
    one = check_fit(v3, H100, 8, 2).stages
    assert [stage.layers for stage in one] == [31, 30]
    assert [stage.kv_bytes_per_token for stage in one] == [31 * 576 * 2, 30 * 576 * 2]
    assert check_fit(v3, H100, 1, 2).stages[0].kv_bytes_per_token == 31 * 576 * 2


def test_kv_heads_fewer_than_tp_are_replicated():
    qwen3 = arch("Qwen/Qwen3-235B-A22B")  # 4 KV heads
    report = check_fit(qwen3, H100, 8, 1)
    assert report.kv_bytes_per_token_per_gpu == 2 * 94 * 1 * 128 * 2
    assert report.problems() == []
    assert any("replicates each KV head on 2 GPUs" in note for note in report.notes)


def test_pipeline_stages_follow_vllm_partition():
    assert stage_layer_counts(61, 2) == [31, 30]
    assert stage_layer_counts(22, 4) == [5, 6, 6, 5]
    assert stage_layer_counts(126, 2) == [63, 63]


def test_embeddings_on_first_stage_lm_head_on_last():
    llama = arch("meta-llama/Llama-3.1-405B-Instruct")
    stages = check_fit(llama, H100, 8, 2).stages
    layer = (llama.layers[0].sharded / 8 + llama.layers[0].replicated) * 2
    embedding = llama.embedding_params / 8 * 2
    assert stages[0].weight_bytes == pytest.approx(63 * layer + embedding, abs=64)
    assert stages[1].weight_bytes == pytest.approx(63 * layer + embedding + 2 * llama.hidden_size, abs=64)
    single = check_fit(llama, gpu_spec(memory_bytes=2048 * GIB), 1, 1).stages[0]
    whole_layer = (llama.layers[0].sharded + llama.layers[0].replicated) * 2
    assert single.weight_bytes == pytest.approx(126 * whole_layer + 2 * embedding * 8, abs=64 * 1024)


def test_405b_fits_two_nodes_of_eight_h100_and_not_one():
    llama = arch("meta-llama/Llama-3.1-405B-Instruct")
    assert check_fit(llama, H100, 8, 2, gpu_memory_utilization=0.9, max_model_len=131072).problems() == []
    one_node = check_fit(llama, H100, 8, 1, gpu_memory_utilization=0.9, max_model_len=131072).problems()
    assert len(one_node) == 1 and one_node[0].key == "engine.tensorParallelSize"
    message = one_node[0].message
    assert "94.5 GiB per GPU" in message and "69.0 GiB usable" in message
    assert "engine.tensorParallelSize 8 x engine.pipelineParallelSize 2 (server.nodes 2 of 8 GPUs)" in message
    assert "engine.quantization fp8" in message


def test_fp8_quantization_halves_the_linear_weights():
    llama = arch("meta-llama/Llama-3.1-405B-Instruct")
    report = check_fit(llama, H100, 8, 1, gpu_memory_utilization=0.9, max_model_len=16384, quantization="fp8")
    assert report.weight_bytes_per_gpu == pytest.approx(405.85e9 / 8 + llama.embedding_params / 8, rel=0.01)
    assert report.problems() == []


def test_context_that_does_not_fit_suggests_lower_len_fp8_kv_and_more_gpus():
    report = check_fit(arch("meta-llama/Llama-3.1-8B-Instruct"), gpu_spec("L4"), 1, 1, gpu_memory_utilization=0.9, max_model_len=None)
    assert report.context_length == 131072 and "maxModelLen unset" in report.context_source
    (problem,) = report.problems()
    assert problem.key == "engine.maxModelLen"
    tokens = report.tokens
    assert 20000 < tokens < 40000
    assert f"holds {tokens} tokens, fewer than the context of 131072" in problem.message
    assert f"lower engine.maxModelLen to {tokens // 1024 * 1024} or less" in problem.message
    assert "engine.kvCacheDtype fp8" in problem.message and "more GPUs" in problem.message
    assert check_fit(arch("meta-llama/Llama-3.1-8B-Instruct"), gpu_spec("L4"), 1, 1, gpu_memory_utilization=0.9, max_model_len=16384).problems() == []


def test_heads_not_divisible_by_tp():
    (problem,) = check_fit(arch("Qwen/Qwen2.5-7B-Instruct"), H100, 8, 1).problems()
    assert problem.key == "engine.tensorParallelSize"
    assert "28 attention heads, which do not divide by tensor-parallel size 8" in problem.message
    assert "use one of 1, 2, 4, 7" in problem.message


def test_kv_heads_not_divisible_by_tp():
    config = dict(MODELS["meta-llama/Llama-3.1-8B-Instruct"]["config"], num_attention_heads=48, num_key_value_heads=6,
                  head_dim=128)
    problems = check_fit(read_architecture(config), H100, 4, 1).problems()
    assert [p.message for p in problems if "KV heads" in p.message] == [
        "the model has 6 KV heads, which do not divide by tensor-parallel size 4; use a size that divides 6 or a multiple of it"]
    problems = check_fit(read_architecture(config), H100, 16, 1).problems()
    assert any("exceeds the model's 6 KV heads and is not a multiple of them" in p.message for p in problems)


def test_pipeline_larger_than_layers():
    problems = check_fit(arch("Qwen/Qwen2.5-7B-Instruct"), H100, 1, 32).problems()
    assert [p.key for p in problems] == ["engine.pipelineParallelSize"]
    assert "exceeds the model's 28 layers" in problems[0].message


def test_max_model_len_beyond_the_model():
    problems = check_fit(arch("Qwen/Qwen3-235B-A22B"), H100, 8, 1, gpu_memory_utilization=0.9, max_model_len=65536).problems()
    assert any(p.key == "engine.maxModelLen" and "exceeds the model's maximum context of 40960" in p.message
               for p in problems)
    # yarn rope scaling: DeepSeek-V3's maximum is 4096 x 40.
    assert arch("deepseek-ai/DeepSeek-V3").max_context == 163840


def test_quantization_that_needs_a_quantized_checkpoint():
    problems = check_fit(arch("Qwen/Qwen2.5-7B-Instruct"), H100, 1, 1, quantization="awq").problems()
    assert [p.key for p in problems] == ["engine.quantization"]
    assert "needs a checkpoint quantized with it" in problems[0].message
    problems = check_fit(arch("deepseek-ai/DeepSeek-V3"), H100, 8, 2, quantization="fp8").problems()
    assert [p.key for p in problems] == []  # fp8 is the checkpoint's own method


def test_unknown_architecture_is_skipped_not_guessed():
    unknown = read_architecture({"model_type": "gemma3", "num_hidden_layers": 62})
    assert isinstance(unknown, UnknownArchitecture) and "'gemma3'" in unknown.reason
    report = check_fit(unknown, H100, 8, 1)
    assert report.skipped is not None and report.skipped.startswith("architecture unknown offline: model_type 'gemma3'")
    assert report.problems() == [] and report.summary().startswith("fit check skipped:")
    missing = read_architecture({"model_type": "llama", "hidden_size": 4096})
    assert missing == UnknownArchitecture("config.json lacks num_hidden_layers, num_attention_heads, vocab_size")
    odd_dtype = dict(MODELS["Qwen/Qwen2.5-7B-Instruct"]["config"], torch_dtype="float8_e4m3fn")
    odd = read_architecture(odd_dtype)
    assert isinstance(odd, UnknownArchitecture) and odd.reason.startswith("torch_dtype 'float8_e4m3fn' is not one")
    compressed = dict(MODELS["Qwen/Qwen2.5-7B-Instruct"]["config"], quantization_config={"quant_method": "compressed-tensors"})
    assert isinstance(read_architecture(compressed), UnknownArchitecture)
    assert isinstance(read_architecture(compressed, WeightBytes.declared(8 * 10**9)), Architecture)


def test_no_gpu_is_skipped():
    report = check_fit(arch("Qwen/Qwen2.5-7B-Instruct"), gpu_spec(None, None), 1, 1)
    assert report.skipped == "GPU memory unknown: set server.gpuType or server.gpuMemory"


def test_gpu_table_names_sources_and_refuses_unknown_types():
    for name in ("H100-80GB", "A100-80GB", "A100-40GB", "H200", "L40S", "L4", "A10G", "B200", "MI300X"):
        assert GPU_TABLE[name].source and GPU_TABLE[name].memory_bytes > 16 * GIB
    h200, measured = gpu_spec("H200"), gpu_spec("H100-80GB", memory_bytes=81559 * 2**20)
    assert h200 is not None and h200.memory_bytes == 141 * GIB
    assert measured is not None and measured.memory_bytes == 81559 * 2**20
    with pytest.raises(ValueError, match="unknown GPU type 'H100'; known types: H100-80GB"):
        gpu_spec("H100")


def test_weight_bytes_from_index_and_file_list():
    assert WeightBytes.from_safetensors_index({"metadata": {"total_size": 5}}).total == 5
    with pytest.raises(ValueError, match=r"no integer metadata\.total_size"):
        WeightBytes.from_safetensors_index({"weight_map": {}})
    # Mistral-7B-Instruct-v0.3's layout (hf-repo-file-lists.yaml): consolidated + sharded copies.
    files = [
        {"path": "consolidated.safetensors", "size": 14496078512},
        {"path": "model-00001-of-00003.safetensors", "size": 4949453792},
        {"path": "model-00002-of-00003.safetensors", "size": 4999819336},
        {"path": "model-00003-of-00003.safetensors", "size": 4546807800},
        {"path": "original/consolidated.00.pth", "size": 16060617592},
        {"path": "tokenizer.json", "size": 1961548},
    ]
    from_list = WeightBytes.from_file_list(files)
    assert from_list is not None
    from_files = from_list.total
    assert from_files == 4949453792 + 4999819336 + 4546807800
    assert from_files == pytest.approx(14496047104, rel=1e-5)  # its index total_size: headers aside
    only_bin = WeightBytes.from_file_list([{"path": "pytorch_model.bin", "size": 250540281}])
    assert only_bin is not None and only_bin.total == 250540281
    assert WeightBytes.from_file_list([{"path": "model.safetensors", "size": "2.2 GB"}]) is None


def test_tied_embeddings_are_held_once_on_one_stage_and_on_both_ends_with_pp():
    config = dict(MODELS["Qwen/Qwen2.5-7B-Instruct"]["config"], tie_word_embeddings=True)
    tied = read_architecture(config)
    assert isinstance(tied, Architecture)
    embedding = tied.embedding_params * 2
    one = check_fit(tied, H100, 1, 1).stages[0]
    untied = check_fit(arch("Qwen/Qwen2.5-7B-Instruct", with_index=False), H100, 1, 1).stages[0]
    assert untied.weight_bytes - one.weight_bytes == embedding
    first, last = check_fit(tied, H100, 1, 2).stages
    assert first.weight_bytes == pytest.approx(last.weight_bytes, abs=2 * tied.hidden_size)
    assert first.weight_bytes > embedding and last.weight_bytes > embedding


def test_sliding_window_is_counted_as_full_attention_and_said():
    config = dict(MODELS["Qwen/Qwen2.5-7B-Instruct"]["config"], use_sliding_window=True, sliding_window=4096)
    report = check_fit(read_architecture(config), H100, 1, 1)
    assert report.kv_bytes_per_token_per_gpu == 2 * 28 * 4 * 128 * 2
    assert any("sliding window of 4096 tokens counted as full attention" in note for note in report.notes)
    assert not any("sliding" in note for note in check_fit(arch("Qwen/Qwen2.5-7B-Instruct"), H100, 1, 1).notes)


def test_low_utilization_is_offered_as_a_fix():
    report = check_fit(arch("meta-llama/Llama-3.1-8B-Instruct"), gpu_spec("L4"), 1, 1, gpu_memory_utilization=0.8, max_model_len=32768)
    (problem,) = report.problems()
    assert "raise engine.gpuMemoryUtilization from 0.8" in problem.message
    (problem,) = check_fit(arch("meta-llama/Llama-3.1-8B-Instruct"), gpu_spec("L4"), 1, 1, gpu_memory_utilization=0.95, max_model_len=131072).problems()
    assert "gpuMemoryUtilization from" not in problem.message


def test_kv_room_is_utilization_times_memory_less_weights_and_reserve():
    report = check_fit(arch("meta-llama/Llama-3.1-70B-Instruct"), H100, 4, 1, gpu_memory_utilization=0.9, max_model_len=8192)
    usable = int(0.9 * 80 * GIB) - 3 * GIB
    assert report.kv_room_bytes_per_gpu == usable - report.weight_bytes_per_gpu
    assert report.tokens == report.kv_room_bytes_per_gpu // (2 * 80 * 2 * 128 * 2)
    reserved = check_fit(arch("meta-llama/Llama-3.1-70B-Instruct"), H100, 4, 1, gpu_memory_utilization=0.9, max_model_len=8192, runtime_reserve_bytes=GIB)
    assert reserved.kv_room_bytes_per_gpu - report.kv_room_bytes_per_gpu == 2 * GIB


# SGLang's DeepSeek V3/V3.1/R1 usage page (docs.sglang.ai, basic_usage/deepseek_v3) lists the
# hardware each precision runs on; vLLM's DeepSeek-V3 recipe (docs.vllm.ai/projects/recipes)
# likewise serves the FP8 checkpoint on 8 x H200 with --tensor-parallel-size 8.
@pytest.mark.parametrize(("gpu", "tp", "pp"), [("H200", 8, 1), ("B200", 8, 1), ("MI300X", 8, 1), ("H100-80GB", 8, 2)])
def test_deepseek_v3_fp8_fits_the_published_hardware(gpu, tp, pp):
    assert check_fit(arch("deepseek-ai/DeepSeek-V3"), gpu_spec(gpu), tp, pp, gpu_memory_utilization=0.9).problems() == []


@pytest.mark.parametrize(("gpu", "tp", "pp"), [("H200", 8, 2), ("MI300X", 8, 2), ("H100-80GB", 8, 4), ("A100-80GB", 8, 4)])
def test_deepseek_v3_bf16_fits_the_published_hardware(gpu, tp, pp):
    bf16 = {k: v for k, v in MODELS["deepseek-ai/DeepSeek-V3"]["config"].items() if k != "quantization_config"}
    assert check_fit(read_architecture(bf16), gpu_spec(gpu), tp, pp, gpu_memory_utilization=0.9).problems() == []


@pytest.mark.parametrize(("precision", "gpu", "tp", "pp"), [("fp8", "H100-80GB", 8, 1), ("bf16", "H200", 8, 1), ("bf16", "H100-80GB", 8, 2)])
def test_deepseek_v3_is_refused_one_step_below_the_published_hardware(precision, gpu, tp, pp):
    config = dict(MODELS["deepseek-ai/DeepSeek-V3"]["config"])
    if precision == "bf16":
        del config["quantization_config"]
    (problem,) = check_fit(read_architecture(config), gpu_spec(gpu), tp, pp, gpu_memory_utilization=0.9).problems()
    assert problem.key == "engine.tensorParallelSize" and "for the weights alone" in problem.message


def test_a_split_that_still_does_not_fit_suggests_more_than_it_has():
    # 8 GPUs hold 756 GiB / 8 = 94.5 GiB each; A100-80GB at 0.9 leaves 69 GiB: 16 needed.
    (problem,) = check_fit(arch("meta-llama/Llama-3.1-405B-Instruct"), gpu_spec("A100-80GB"), 8, 1).problems()
    assert "at least 16 GPUs" in problem.message
    # DeepSeek-V3 on 16 GPUs of 40 GiB: 626.7 GiB would fit 16 by the total, but stage 0 holds
    # 31 of the 61 layers (40.8 GiB per GPU): the suggestion is the next step up, 32.
    report = check_fit(arch("deepseek-ai/DeepSeek-V3"), gpu_spec(memory_bytes=40 * GIB), 8, 2, gpu_memory_utilization=1.0, runtime_reserve_bytes=0)
    (problem,) = report.problems()
    assert report.total_weight_bytes < 16 * 40 * GIB < report.weight_bytes_per_gpu * 16
    assert "at least 32 GPUs" in problem.message and "engine.pipelineParallelSize 4 (server.nodes 4" in problem.message
