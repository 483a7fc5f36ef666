"""`files` overrides the selection rule for every source alike, and joins the fingerprint only when set."""

from __future__ import annotations

from tests.conftest import container, env_of, render_values

GIT_MODEL = {
    "deployName": "qwen",
    "volume": {"size": "40Gi"},
    "source": "git",
    "git": {"url": "https://git.example/models/qwen.git", "ref": "v1"},
}
S3_MODEL = {
    "deployName": "mistral",
    "volume": {"size": "40Gi"},
    "source": "s3",
    "s3": {"url": "s3://models/mistral", "existingSecret": "s3-models"},
}


def _download_env(model: dict) -> dict:
    return env_of(container(render_values({"model": model}), "Job", "download"))


def _model_dir(model: dict) -> str:
    return _download_env(model)["MODEL_DIR"]


def test_git_files_reach_the_script_and_make_a_new_version():
    chosen = {**GIT_MODEL, "git": {**GIT_MODEL["git"], "files": "*.safetensors,config.json"}}
    assert _download_env(chosen)["GIT_FILES"] == "*.safetensors,config.json"
    assert "GIT_FILES" not in _download_env(GIT_MODEL)
    assert _model_dir(chosen) != _model_dir(GIT_MODEL)


def test_s3_files_reach_the_script_and_make_a_new_version():
    chosen = {**S3_MODEL, "s3": {**S3_MODEL["s3"], "files": "model-*.safetensors"}}
    assert _download_env(chosen)["S3_FILES"] == "model-*.safetensors"
    assert "S3_FILES" not in _download_env(S3_MODEL)
    assert _model_dir(chosen) != _model_dir(S3_MODEL)


def test_an_unset_files_key_keeps_the_fingerprint_existing_stacks_downloaded_under():
    # The fingerprint of {"source": "git", "url": ..., "ref": ...}, as before the key existed.
    import hashlib
    import json

    spec = {"source": "git", "url": GIT_MODEL["git"]["url"], "ref": "v1"}
    expected = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]
    assert _model_dir(GIT_MODEL).endswith("/" + expected)
