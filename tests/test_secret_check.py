"""The Secrets a stack refers to, read (never written) at preview: missing keys are refused
before the download Job or the server runs."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_config
from components.storage.secret_check import grouped_needs
from tests.conftest import HF_MODEL, container, engine_config, render_values
from vllm_serving.render import render_config, render_until_failure

GATED = {**HF_MODEL, "huggingface": {**HF_MODEL["huggingface"], "existingSecret": "hf-token"}}


READ = "urn:pulumi:test::vllm-serving::vllm-serving:index:SecretCheck$kubernetes:core/v1:Secret::codellama-7b-secrets-{}"


def test_referenced_secrets_are_read_before_the_job_and_the_server():
    rendering = render_config(engine_config({"model": GATED}), [], existing_secrets={"hf-token": ["token"]})
    job = rendering.one("Job")
    # The Job reads the Secret (an input of its pod's env), the server waits for the Job.
    assert READ.format("hf-token") in job.dependencies
    assert job.urn in rendering.one("Deployment").dependencies
    assert container(rendering, "Job", "download")["env"][-1]["valueFrom"]["secretKeyRef"]["name"] == "hf-token"
    # A read, never a write: no Secret is created.
    assert not rendering.by_kind("Secret")


def test_a_missing_key_registers_nothing_that_reads_the_secret_nor_the_server():
    # What `pulumi up --skip-preview` runs: the check must fail the registration of its readers
    # (not merely come first), or the Job would sit in CreateContainerConfigError until its deadline.
    rendering, error = render_until_failure(engine_config({"model": GATED}), [], existing_secrets={"hf-token": ["hf_token"]})
    assert isinstance(error, ConfigError)
    assert error.problems[0][0] == "model.huggingface.existingSecret"
    assert not rendering.by_kind("Job") and not rendering.by_kind("Deployment") and not rendering.by_kind("Service")


def test_a_missing_api_key_secret_key_registers_no_server():
    values = {"model": HF_MODEL, "apiKeySecret": {"name": "llm-keys", "key": "key"}}
    rendering, error = render_until_failure(engine_config(values), [], existing_secrets={"llm-keys": ["apiKey"]})
    assert isinstance(error, ConfigError)
    assert error.problems == [("apiKeySecret.name", "the Secret default/llm-keys has no key key (it has: apiKey)")]
    assert not rendering.by_kind("Deployment") and not rendering.by_kind("Service")
    # The public model's download reads no Secret: it may go ahead.
    assert rendering.by_kind("Job")
    passing = render_config(engine_config(values), [], existing_secrets={"llm-keys": ["key"]})
    assert READ.format("llm-keys") in passing.one("Deployment").dependencies


def test_a_secret_without_the_key_the_source_needs_is_refused_naming_it():
    with pytest.raises(ConfigError) as caught:
        render_config(engine_config({"model": GATED}), [], existing_secrets={"hf-token": ["hf_token"]})
    assert caught.value.problems == [
        ("model.huggingface.existingSecret", "the Secret default/hf-token has no key token (it has: hf_token)")
    ]


def test_an_s3_secret_needs_both_credential_keys():
    model = {"deployName": "m", "source": "s3", "s3": {"url": "s3://b/p", "existingSecret": "s3-env"}}
    with pytest.raises(ConfigError) as caught:
        render_config(engine_config({"model": model}), [], existing_secrets={"s3-env": ["accessKeyID", "endpoint"]})
    assert "has no key secretAccessKey" in caught.value.problems[0][1]


def test_a_missing_secret_fails_like_the_provider_does():
    with pytest.raises(Exception, match="resource 'default/hf-token' does not exist"):
        render_config(engine_config({"model": GATED}), [], existing_secrets={})


def test_the_check_can_be_switched_off_for_a_preview_without_cluster_access():
    rendering = render_config(engine_config({"model": GATED, "checkSecrets": False}), [], existing_secrets={})
    assert not any("SecretCheck" in urn for urn in rendering.one("Job").dependencies)


GIT = {"deployName": "m", "source": "git", "git": {"url": "https://git.example/m.git", "existingSecret": "git-token"}}
S3 = {"deployName": "m", "source": "s3", "s3": {"url": "s3://b/p", "existingSecret": "s3-env"}}


def test_a_git_token_secret_needs_the_token_key():
    with pytest.raises(ConfigError) as caught:
        render_config(engine_config({"model": GIT}), [], existing_secrets={"git-token": ["password"]})
    assert caught.value.problems == [
        ("model.git.existingSecret", "the Secret default/git-token has no key token (it has: password)")
    ]


@pytest.mark.parametrize("model", [GATED, GIT, S3], ids=["huggingface", "git", "s3"])
def test_the_check_requires_exactly_the_keys_the_download_pod_must_read(model):
    # One fact: the Secret keys the Job reads without `optional` are the ones the check requires.
    secret = model[model["source"]]["existingSecret"]
    job = container(render_values({"model": model}), "Job", "download")
    read = {
        var["valueFrom"]["secretKeyRef"]["key"]
        for var in job["env"]
        if "valueFrom" in var and not var["valueFrom"]["secretKeyRef"].get("optional")
    }
    [need] = [need for need in grouped_needs(parse_config({"model": model})) if need.secret == secret]
    assert set(need.keys) == read and read
    # With every required key present (and the optional ones absent), the render passes.
    render_config(engine_config({"model": model}), [], existing_secrets={secret: sorted(read)})


def test_an_adapter_secret_is_checked_like_the_model_one():
    adapter = {"name": "sql", "source": "git", "git": GIT["git"]}
    values = {"model": HF_MODEL, "lora": {"adapters": [adapter]}}
    with pytest.raises(ConfigError) as caught:
        render_config(engine_config(values), [], existing_secrets={"git-token": []})
    assert caught.value.problems[0][0] == "lora.adapters[0].git.existingSecret"
