"""The file-selection rule of every source ("only the bytes needed"), on real repositories' file lists.

The rule is one awk program (components/scripts/select_files.sh) that the git and S3 downloads
run under busybox awk in their alpine images and hf_download.py runs under the vLLM image's awk
(mawk, as Ubuntu ships). Every test of this table runs it under each awk this machine has, the
busybox one among them, and through hf_download.select_files, the HF path's own entry."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import FIXTURES, SCRIPTS, require_tool


def _load_hf_download():
    spec = importlib.util.spec_from_file_location("hf_download", SCRIPTS / "hf_download.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {SCRIPTS / 'hf_download.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("hf_download", module)
    spec.loader.exec_module(module)
    return module


hf = _load_hf_download()
REPOS = yaml.safe_load((FIXTURES / "hf_repos.yaml").read_text())["repos"]
AWKS = ["hf_download", "busybox", "mawk", "gawk", "original-awk"]


class Rule:
    """select_files.sh under one awk, with hf_download's signature and errors."""

    SelectionError = hf.SelectionError

    def __init__(self, awk: str, scratch: Path):
        self.awk, self.scratch = awk, scratch

    def _run(self, mode: str, paths, files: str, index_json) -> list[str]:
        listing = self.scratch / "listing"
        listing.write_text("".join(f"{p}\n" for p in paths))
        argv = ["sh", str(SCRIPTS / "select_files.sh"), mode, str(listing)]
        if index_json is not None:
            (self.scratch / "index.json").write_text(index_json)
            argv.append(str(self.scratch / "index.json"))
        env = {**os.environ, "FILES": files, "SOURCE": "huggingface", "SELECT_AWK": self.awk}
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode:
            raise hf.SelectionError(done.stderr)
        return [line for line in done.stdout.split("\n") if line]

    def select_files(self, paths, files: str = "", index_json=None) -> list[str]:
        return self._run("select", paths, files, index_json)

    def index_to_read(self, paths, files: str = ""):
        named = self._run("index", paths, files, None)
        return named[0] if named else None


@pytest.fixture(params=AWKS)
def rule(request, tmp_path):
    if request.param == "hf_download":
        return hf
    if request.param == "busybox":
        require_tool("busybox")
        wrapper = tmp_path / "busybox-awk"
        wrapper.write_text('#!/bin/sh\nexec busybox awk "$@"\n')
        wrapper.chmod(0o755)
        return Rule(str(wrapper), tmp_path)
    if shutil.which(request.param) is None:
        pytest.skip(f"{request.param} not installed")
    return Rule(request.param, tmp_path)


def index(*names: str) -> str:
    """A safetensors index as the Hub stores one, mapping tensors to `names`."""
    return json.dumps({"metadata": {"total_size": 1},
                       "weight_map": {f"layer.{n}.weight": name for n, name in enumerate(names)}}, indent=2)


def test_fixtures_cover_the_required_repositories():
    ids = {repo["id"] for repo in REPOS}
    assert len(ids) >= 5
    assert "codellama/CodeLlama-7b-Instruct-hf" in ids
    assert any(
        "llama-3" in repo["id"].lower() and any(f["path"].startswith("original/") for f in repo["files"])
        for repo in REPOS
    )


@pytest.mark.parametrize("repo", REPOS, ids=[r["id"] for r in REPOS])
def test_selection_is_what_vllm_loads(repo, rule):
    paths = [f["path"] for f in repo["files"]]
    selected = rule.select_files(paths)
    assert selected == sorted(set(repo["vllm_loads"]) | set(repo["selection_extras"]))


@pytest.mark.parametrize("repo", REPOS, ids=[r["id"] for r in REPOS])
def test_selection_extras_are_small_metadata(repo):
    sizes = {f["path"]: f["size"] for f in repo["files"]}
    for name in repo["selection_extras"]:
        assert sizes[name] is not None and sizes[name] < 64 * 1024, name


def test_original_checkpoint_is_never_selected(rule):
    paths = ["config.json", "model.safetensors", "original/consolidated.00.pth", "original/params.json",
             "original/tokenizer.model"]
    assert rule.select_files(paths) == ["config.json", "model.safetensors"]


def test_mistral_format_wins_when_consolidated_exists(rule):
    paths = ["config.json", "params.json", "consolidated.safetensors", "model-00001-of-00002.safetensors",
             "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.model.v3"]
    assert rule.select_files(paths) == ["config.json", "consolidated.safetensors", "params.json", "tokenizer.model.v3"]


def test_mistral_format_keeps_its_own_index(rule):
    paths = ["params.json", "consolidated-00001-of-00002.safetensors", "consolidated-00002-of-00002.safetensors",
             "consolidated.safetensors.index.json", "model.safetensors.index.json", "model-00001-of-00001.safetensors"]
    assert rule.index_to_read(paths) == "consolidated.safetensors.index.json"
    assert rule.select_files(paths) == [
        "consolidated-00001-of-00002.safetensors", "consolidated-00002-of-00002.safetensors",
        "consolidated.safetensors.index.json", "params.json",
    ]


def test_bin_then_pt_fallback_and_training_files_dropped(rule):
    bins = ["config.json", "pytorch_model.bin", "training_args.bin", "optimizer.pt", "model.pt"]
    assert rule.select_files(bins) == ["config.json", "pytorch_model.bin"]
    pts = ["config.json", "model.pt", "scheduler.pt", "scaler.pt"]
    assert rule.select_files(pts) == ["config.json", "model.pt"]


def test_only_top_level_weights_like_vllm_globs(rule):
    paths = ["config.json", "model.safetensors", "checkpoint-500/model.safetensors", "onnx/model.onnx"]
    assert rule.select_files(paths) == ["config.json", "model.safetensors"]


def test_index_drops_shards_it_does_not_list(rule):
    paths = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
             "model-old.safetensors", "model.safetensors.index.json"]
    assert rule.index_to_read(paths) == "model.safetensors.index.json"
    listed = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
    assert rule.select_files(paths, index_json=index(*sorted(listed))) == [
        "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]


def test_index_is_not_needed_for_a_single_weight_file(rule):
    assert rule.index_to_read(["model.safetensors", "model.safetensors.index.json"]) is None


def test_shards_in_a_subdirectory_named_by_the_index(rule):
    paths = ["config.json", "model.safetensors.index.json", "weights/a.safetensors", "weights/b.safetensors"]
    assert rule.index_to_read(paths) == "model.safetensors.index.json"
    selected = rule.select_files(paths, index_json=index("weights/a.safetensors", "weights/b.safetensors"))
    assert selected == ["config.json", "model.safetensors.index.json", "weights/a.safetensors", "weights/b.safetensors"]


def test_trust_remote_code_and_tokenizer_files_are_kept(rule):
    paths = ["config.json", "model.safetensors", "modeling_custom.py", "configuration_custom.py", "qwen.tiktoken",
             "chat_template.jinja", "tokenizer.model", "vocab.txt", "merges.txt", "preprocessor_config.json",
             "README.md", "LICENSE", ".gitattributes", "flax_model.msgpack", "tf_model.h5", "model.gguf"]
    assert rule.select_files(paths) == [
        "chat_template.jinja", "config.json", "configuration_custom.py", "merges.txt", "model.safetensors",
        "modeling_custom.py", "preprocessor_config.json", "qwen.tiktoken", "tokenizer.model", "vocab.txt",
    ]


def test_no_weights_is_an_error_that_points_at_files(rule):
    with pytest.raises(rule.SelectionError, match=r"model\.huggingface\.files"):
        rule.select_files(["config.json", "model.gguf", "README.md"])


def test_files_override_the_rule_entirely(rule):
    paths = ["config.json", "model.safetensors", "model.Q4_K_M.gguf", "model.Q8_0.gguf", "original/params.json"]
    assert rule.select_files(paths, " model.Q4_K_M.gguf , config.json,") == ["config.json", "model.Q4_K_M.gguf"]
    assert rule.select_files(paths, "*.gguf") == ["model.Q4_K_M.gguf", "model.Q8_0.gguf"]
    assert rule.select_files(paths, "original/*") == ["original/params.json"]
    assert rule.index_to_read(["a.safetensors", "b.safetensors", "model.safetensors.index.json"], "*.safetensors") is None


def test_a_files_entry_matching_nothing_is_an_error(rule):
    with pytest.raises(rule.SelectionError, match=r"'missing\.bin' matches no file"):
        rule.select_files(["config.json", "model.safetensors"], "config.json,missing.bin")


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


def test_lora_adapter_repository(rule):
    """LoRA adapters are downloaded with the same rule: the adapter weights and their config."""
    paths = ["README.md", "adapter_config.json", "adapter_model.safetensors", "training_args.bin",
             "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
    assert rule.select_files(paths) == ["adapter_config.json", "adapter_model.safetensors", "special_tokens_map.json",
                                      "tokenizer.json", "tokenizer_config.json"]
    assert rule.select_files(["adapter_config.json", "adapter_model.bin", "training_args.bin"]) == [
        "adapter_config.json", "adapter_model.bin"]


@pytest.mark.parametrize("path", ["../../name.json", "/etc/passwd.json", "a//b.json", "a/../../b.json", "./config.json",
                                  "sub/./x.json", "sub/", "back\\slash.json", "tab\there.json", ".."])
def test_a_listing_with_an_unsafe_path_is_refused_whole(rule, path):
    """A hostile or corrupt listing fails the selection (the download), even under FILES and even
    when the path would not be selected: nothing of it is downloaded."""
    for files in ("", "config.json"):
        with pytest.raises(rule.SelectionError, match="unsafe path"):
            rule.select_files(["config.json", "model.safetensors", path], files)


def test_dotted_names_that_stay_inside_are_fine(rule):
    paths = ["config.json", "model.safetensors", ".gitattributes", "..hidden.json", "a..b.json", "dir.d/x..json"]
    assert rule.select_files(paths) == ["..hidden.json", "a..b.json", "config.json", "dir.d/x..json", "model.safetensors"]


def test_glob_classes_and_regex_characters_in_files(rule):
    paths = ["config.json", "model-1.safetensors", "model-2.safetensors", "model-x.safetensors", "a+b(1).json"]
    assert rule.select_files(paths, "model-[0-9].safetensors") == ["model-1.safetensors", "model-2.safetensors"]
    assert rule.select_files(paths, "model-[!0-9].safetensors") == ["model-x.safetensors"]
    assert rule.select_files(paths, "a+b(1).json") == ["a+b(1).json"]
    assert rule.select_files(paths, "model-?.safetensors,config.json") == [
        "config.json", "model-1.safetensors", "model-2.safetensors", "model-x.safetensors"]
    assert rule.select_files(["sub/a.json", "a.json"], "*.json") == ["a.json", "sub/a.json"]


def test_an_index_in_the_hubs_layout_is_read_whatever_its_formatting(rule):
    paths = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
             "model-stale.safetensors", "model.safetensors.index.json"]
    compact = json.dumps({"metadata": {"total_size": 2}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}, separators=(",", ":"))
    for text in (compact, index("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")):
        assert "model-stale.safetensors" not in rule.select_files(paths, index_json=text)
