"""The Hugging Face file-selection rule ("only the bytes needed"), on real repositories' file lists."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import yaml

from .conftest import FIXTURES, SCRIPTS


def _load_hf_download():
    spec = importlib.util.spec_from_file_location("hf_download", SCRIPTS / "hf_download.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("hf_download", module)
    spec.loader.exec_module(module)
    return module


hf = _load_hf_download()
REPOS = yaml.safe_load((FIXTURES / "hf_repos.yaml").read_text())["repos"]


def test_fixtures_cover_the_required_repositories():
    ids = {repo["id"] for repo in REPOS}
    assert len(ids) >= 5
    assert "codellama/CodeLlama-7b-Instruct-hf" in ids
    assert any(
        "llama-3" in repo["id"].lower() and any(f["path"].startswith("original/") for f in repo["files"])
        for repo in REPOS
    )


@pytest.mark.parametrize("repo", REPOS, ids=[r["id"] for r in REPOS])
def test_selection_is_what_vllm_loads(repo):
    paths = [f["path"] for f in repo["files"]]
    selected = hf.select_files(paths)
    assert selected == sorted(set(repo["vllm_loads"]) | set(repo["selection_extras"]))


@pytest.mark.parametrize("repo", REPOS, ids=[r["id"] for r in REPOS])
def test_selection_extras_are_small_metadata(repo):
    sizes = {f["path"]: f["size"] for f in repo["files"]}
    for name in repo["selection_extras"]:
        assert sizes[name] is not None and sizes[name] < 64 * 1024, name


def test_original_checkpoint_is_never_selected():
    paths = ["config.json", "model.safetensors", "original/consolidated.00.pth", "original/params.json",
             "original/tokenizer.model"]
    assert hf.select_files(paths) == ["config.json", "model.safetensors"]


def test_mistral_format_wins_when_consolidated_exists():
    paths = ["config.json", "params.json", "consolidated.safetensors", "model-00001-of-00002.safetensors",
             "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.model.v3"]
    assert hf.select_files(paths) == ["config.json", "consolidated.safetensors", "params.json", "tokenizer.model.v3"]


def test_mistral_format_keeps_its_own_index():
    paths = ["params.json", "consolidated-00001-of-00002.safetensors", "consolidated-00002-of-00002.safetensors",
             "consolidated.safetensors.index.json", "model.safetensors.index.json", "model-00001-of-00001.safetensors"]
    assert hf.index_to_read(paths) == "consolidated.safetensors.index.json"
    assert hf.select_files(paths) == [
        "consolidated-00001-of-00002.safetensors", "consolidated-00002-of-00002.safetensors",
        "consolidated.safetensors.index.json", "params.json",
    ]


def test_bin_then_pt_fallback_and_training_files_dropped():
    bins = ["config.json", "pytorch_model.bin", "training_args.bin", "optimizer.pt", "model.pt"]
    assert hf.select_files(bins) == ["config.json", "pytorch_model.bin"]
    pts = ["config.json", "model.pt", "scheduler.pt", "scaler.pt"]
    assert hf.select_files(pts) == ["config.json", "model.pt"]


def test_only_top_level_weights_like_vllm_globs():
    paths = ["config.json", "model.safetensors", "checkpoint-500/model.safetensors", "onnx/model.onnx"]
    assert hf.select_files(paths) == ["config.json", "model.safetensors"]


def test_index_drops_shards_it_does_not_list():
    paths = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
             "model-old.safetensors", "model.safetensors.index.json"]
    assert hf.index_to_read(paths) == "model.safetensors.index.json"
    listed = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
    assert hf.select_files(paths, index_weight_map=listed) == [
        "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]


def test_index_is_not_needed_for_a_single_weight_file():
    assert hf.index_to_read(["model.safetensors", "model.safetensors.index.json"]) is None


def test_shards_in_a_subdirectory_named_by_the_index():
    paths = ["config.json", "model.safetensors.index.json", "weights/a.safetensors", "weights/b.safetensors"]
    assert hf.index_to_read(paths) == "model.safetensors.index.json"
    selected = hf.select_files(paths, index_weight_map={"weights/a.safetensors", "weights/b.safetensors"})
    assert selected == ["config.json", "model.safetensors.index.json", "weights/a.safetensors", "weights/b.safetensors"]


def test_trust_remote_code_and_tokenizer_files_are_kept():
    paths = ["config.json", "model.safetensors", "modeling_custom.py", "configuration_custom.py", "qwen.tiktoken",
             "chat_template.jinja", "tokenizer.model", "vocab.txt", "merges.txt", "preprocessor_config.json",
             "README.md", "LICENSE", ".gitattributes", "flax_model.msgpack", "tf_model.h5", "model.gguf"]
    assert hf.select_files(paths) == [
        "chat_template.jinja", "config.json", "configuration_custom.py", "merges.txt", "model.safetensors",
        "modeling_custom.py", "preprocessor_config.json", "qwen.tiktoken", "tokenizer.model", "vocab.txt",
    ]


def test_no_weights_is_an_error_that_points_at_files():
    with pytest.raises(hf.SelectionError, match="model.huggingface.files"):
        hf.select_files(["config.json", "model.gguf", "README.md"])


def test_files_override_the_rule_entirely():
    paths = ["config.json", "model.safetensors", "model.Q4_K_M.gguf", "model.Q8_0.gguf", "original/params.json"]
    assert hf.select_files(paths, " model.Q4_K_M.gguf , config.json,") == ["config.json", "model.Q4_K_M.gguf"]
    assert hf.select_files(paths, "*.gguf") == ["model.Q4_K_M.gguf", "model.Q8_0.gguf"]
    assert hf.select_files(paths, "original/*") == ["original/params.json"]
    assert hf.index_to_read(["a.safetensors", "b.safetensors", "model.safetensors.index.json"], "*.safetensors") is None


def test_a_files_entry_matching_nothing_is_an_error():
    with pytest.raises(hf.SelectionError, match="'missing.bin'"):
        hf.select_files(["config.json", "model.safetensors"], "config.json,missing.bin")


def test_literal_patterns_match_only_their_own_name():
    import fnmatch

    for name in ["model[1].safetensors", "we?ird*.json", "plain.json"]:
        pattern = hf._fnmatch_literal(name)
        assert fnmatch.fnmatch(name, pattern)
        assert not fnmatch.fnmatch(name + "x", pattern)
    assert not fnmatch.fnmatch("model1.safetensors", hf._fnmatch_literal("model[1].safetensors"))


def test_selection_module_imports_without_huggingface_hub():
    # The selection rule must stay importable by benchmarks and tests without the client.
    source = (SCRIPTS / "hf_download.py").read_text()
    header = source.split("def main()", 1)[0]
    assert "import huggingface_hub" not in header and "from huggingface_hub" not in header


def test_lora_adapter_repository():
    """LoRA adapters are downloaded with the same rule: the adapter weights and their config."""
    paths = ["README.md", "adapter_config.json", "adapter_model.safetensors", "training_args.bin",
             "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
    assert hf.select_files(paths) == ["adapter_config.json", "adapter_model.safetensors", "special_tokens_map.json",
                                      "tokenizer.json", "tokenizer_config.json"]
    assert hf.select_files(["adapter_config.json", "adapter_model.bin", "training_args.bin"]) == [
        "adapter_config.json", "adapter_model.bin"]
