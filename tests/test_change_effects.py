"""What a change does is what the README's Day-2 table says: an image tag bump and the download
Job, and values set with `pulumi config set --secret` staying secrets into every resource."""

from __future__ import annotations

import pytest

from tests.conftest import (
    HF_MODEL,
    assert_schema_valid,
    container,
    engine_config,
    env_of,
    manifest,
    problems,
    render_values,
)
from vllm_serving.manifests import normalize, to_yaml
from vllm_serving.render import Rendering, render_config

GIT = {"deployName": "m", "source": "git", "git": {"url": "https://git.example/m.git", "ref": "v1"}}


def job_with_tag(model: dict, tag: str) -> dict:
    return manifest(render_values({"model": model, "image": {"tag": tag}}), "Job")


def test_a_tag_bump_leaves_a_git_download_job_alone():
    before, after = job_with_tag(GIT, "v0.33.0"), job_with_tag(GIT, "v0.34.0")
    # The pod template is immutable: any change to it would replace the Job and download again.
    assert after["spec"] == before["spec"]
    assert after["metadata"]["name"] == before["metadata"]["name"]
    # Only the Job's own (mutable) version label follows the tag, updated in place.
    assert after["metadata"]["labels"]["app.kubernetes.io/version"] == "v0.34.0"


def test_a_tag_bump_gives_a_hugging_face_download_a_new_job_since_it_runs_the_server_image():
    before, after = job_with_tag(HF_MODEL, "v0.33.0"), job_with_tag(HF_MODEL, "v0.34.0")
    assert after["metadata"]["name"] != before["metadata"]["name"]
    assert after["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v0.34.0")


ENV = [{"name": "HTTP_PROXY", "value": "http://user:hunter2@proxy:3128"}, {"name": "PLAIN", "value": "x"}]


def secret_env(env: list[dict]) -> Rendering:
    return render_config(engine_config({"model": HF_MODEL, "env": env}), ["vllm-serving:env"])


def test_a_secret_env_value_is_kept_in_a_secret_the_server_and_the_job_read_it_from():
    rendering = secret_env(ENV)
    secret = rendering.one("Secret")
    assert secret.inputs["metadata"]["name"] == "codellama-7b-env"
    # The engine says only that `env` is secret, not which entry: every value goes there.
    assert normalize(secret.inputs)["stringData"] == {"HTTP_PROXY": "[secret]", "PLAIN": "[secret]"}
    assert secret.inputs["stringData"]["value"]["HTTP_PROXY"] == "http://user:hunter2@proxy:3128"
    reference = {"secretKeyRef": {"name": "codellama-7b-env", "key": "HTTP_PROXY"}}
    for kind, name in (("Deployment", "vllm"), ("Job", "download")):
        assert env_of(container(rendering, kind, name))["HTTP_PROXY"] == reference
    # Nothing of the value in any manifest but the Secret's masked one; the pod specs stay readable.
    assert "hunter2" not in to_yaml([normalize(m) for m in rendering.manifests])
    assert manifest(rendering, "Deployment")["spec"]["replicas"] == 1
    assert_schema_valid(rendering)


def test_a_changed_secret_env_value_rolls_the_server_and_reruns_the_job():
    one, two = secret_env([{"name": "T", "value": "a"}]), secret_env([{"name": "T", "value": "b"}])
    annotation = "vllm-serving/env-checksum"
    checksums = [manifest(r, "Deployment")["spec"]["template"]["metadata"]["annotations"][annotation] for r in (one, two)]
    assert checksums[0] != checksums[1]
    assert manifest(one, "Job")["metadata"]["name"] != manifest(two, "Job")["metadata"]["name"]


def test_a_plain_env_stays_plain():
    env = container(render_values({"model": HF_MODEL, "env": ENV}), "Deployment", "vllm")["env"]
    assert {"name": "PLAIN", "value": "x"} in env


@pytest.mark.parametrize(("key", "value"), [("model", HF_MODEL), ("service", {"annotations": {"a": "b"}})])
def test_a_secret_the_program_cannot_keep_secret_is_refused(key, value):
    raw = {"model": HF_MODEL, key: value}
    found = problems(raw, {key})
    assert found[key].startswith("is a Pulumi secret, but its values would be written into the resources in plain text")
