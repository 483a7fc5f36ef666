"""A model.deployName change, which names every resource: refused before anything is registered,
with the two-step way to do it (under the mocks, fed the stack's last outputs as the engine's
readStackOutputs would answer them). The offline diff of a rename is in test_diff.py."""

from __future__ import annotations

import pytest

from components.config import ConfigError
from tests.conftest import HF_MODEL, container, engine_config, env_of, render_values
from vllm_serving.render import render_config, render_until_failure

RENAMED = {**HF_MODEL, "deployName": "codellama-instruct"}


def render_after(previous_outputs, model=HF_MODEL):
    return render_config(engine_config({"model": model}), [], "test", previous_outputs=previous_outputs)


def test_a_new_or_destroyed_stack_accepts_any_name():
    # No outputs: the stack was never deployed, or `pulumi destroy` removed everything.
    assert render_after({}, RENAMED).one("Deployment").inputs["metadata"]["name"] == "codellama-instruct"


def test_the_same_name_as_deployed_renders_as_before():
    before = render_values({"model": HF_MODEL})
    again = render_after(before.outputs)
    assert [r.urn for r in again.resources] == [r.urn for r in before.resources]


def test_a_rename_is_refused_before_any_resource_is_registered():
    previous = {"servedModelName": "codellama-7b", "endpoint": "http://codellama-7b.default.svc:8000"}
    rendering, error = render_until_failure(engine_config({"model": RENAMED}), [], "test", previous_outputs=previous)
    # No claim, Job or Deployment reaches the engine, with or without a preview (--skip-preview).
    assert rendering.resources == []
    assert isinstance(error, ConfigError)
    ((key, message),) = error.problems
    assert key == "model.deployName"
    assert message.startswith("'codellama-instruct' renames the model this stack deployed as 'codellama-7b'")
    assert "create a second volume, download and server beside the old ones" in message
    assert "Set it back to 'codellama-7b', or rename in two steps: `pulumi destroy`" in message
    assert "the claim codellama-7b-model and its weights stay" in message
    assert "model.volume.existingClaim: codellama-7b-model (same subPath) to reuse the weights" in message


def test_a_rename_on_an_existing_claim_names_that_claim():
    model = {**RENAMED, "volume": {"existingClaim": "shared", "subPath": "codellama"}}
    with pytest.raises(ConfigError) as caught:
        render_after({"servedModelName": "codellama-7b"}, model)
    message = caught.value.problems[0][1]
    assert "a second download and server" in message and "the existing claim shared is left as it is" in message


def test_the_two_step_rename_reuses_the_retained_claim_and_its_download():
    before = render_values({"model": HF_MODEL})
    # After `pulumi destroy` the stack has no outputs; the new name points at the retained claim.
    model = {**RENAMED, "volume": {**HF_MODEL["volume"], "existingClaim": "codellama-7b-model"}}
    after = render_after({}, model)
    assert after.by_kind("PersistentVolumeClaim") == []
    def job_env(rendering):
        return env_of(container(rendering, "Job", "download"))

    # The same directory and fingerprint: the Job finds the completion marker and downloads nothing.
    for name in ("MODEL_DIR", "SOURCE_FINGERPRINT"):
        assert job_env(after)[name] == job_env(before)[name]
