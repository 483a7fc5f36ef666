"""`render` output as a Helm user expects it: filters, a reading order, a summary from --validate,
and the command that follows the current download."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import HF_MODEL, render_values
from tests.test_cli import run_cli
from vllm_serving.manifests import READING_ORDER, SelectionError, in_reading_order, select
from vllm_serving.validate import validation_summary


def kinds_printed(*args: str) -> list[str]:
    result = run_cli("render", *args)
    assert result.returncode == 0, result.stderr
    return [document["kind"] for document in yaml.safe_load_all(result.stdout)]


def test_kind_filters_repeat_and_ignore_case():
    assert kinds_printed("codellama-7b", "--kind", "deployment", "--kind", "SERVICE") == ["Deployment", "Service"]


def test_name_filters_select_every_kind_of_that_name_and_combine_with_kind():
    assert kinds_printed("codellama-7b", "--name", "codellama-7b") == ["Deployment", "Service"]
    assert kinds_printed("codellama-7b", "--name", "codellama-7b", "--kind", "Service") == ["Service"]
    assert kinds_printed("codellama-7b", "--name", "codellama-7b-model", "--name", "codellama-7b") == [
        "Deployment", "Service", "PersistentVolumeClaim",
    ]


def test_a_filter_matching_nothing_is_refused_with_what_there_is():
    result = run_cli("render", "codellama-7b", "--kind", "Deploymnet")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().endswith(
        "error: no manifest with kind Deploymnet; kinds here: ConfigMap, Deployment, Job, PersistentVolumeClaim, Service"
    )


def test_the_scripts_config_map_comes_after_everything_people_read():
    # The production example has every optional kind; the order is READING_ORDER's, whatever it creates.
    kinds = kinds_printed("llama-3-70b-production")
    assert kinds == sorted(kinds, key=READING_ORDER.index)
    assert kinds[0] == "Deployment" and kinds[-1] == "ConfigMap"


def test_kinds_outside_the_reading_order_come_just_before_the_config_maps():
    manifests = [{"kind": "ConfigMap"}, {"kind": "Widget"}, {"kind": "Service"}, {"kind": "Deployment"}]
    assert [m["kind"] for m in in_reading_order(manifests)] == ["Deployment", "Service", "Widget", "ConfigMap"]


def test_select_without_filters_keeps_everything_and_refuses_an_unknown_name():
    manifests = [{"kind": "Service", "metadata": {"name": "a"}}]
    assert select(manifests) == manifests
    with pytest.raises(SelectionError, match="no manifest with name b; names here: a"):
        select(manifests, names=["b"])


def test_validate_prints_one_summary_line_on_stderr_and_checks_what_the_filters_hide():
    result = run_cli("render", "llama-3-70b-production", "--validate", "--kind", "Deployment")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "validated 11 manifests: 9 against the Kubernetes 1.29–1.35 schemas, "
        "2 against the CRD schemas of ScaledObject, ServiceMonitor: all valid"
    )
    assert [d["kind"] for d in yaml.safe_load_all(result.stdout)] == ["Deployment"]


def test_the_summary_without_custom_resources():
    manifests = [{"apiVersion": "v1", "kind": "Service"}, {"apiVersion": "apps/v1", "kind": "Deployment"}]
    assert validation_summary(manifests) == "validated 2 manifests against the Kubernetes 1.29–1.35 schemas: all valid"


def test_download_logs_command_follows_the_current_jobs_logs():
    rendering = render_values({"model": HF_MODEL, "namespace": "llm"})
    job = rendering.one("Job").inputs["metadata"]["name"]
    assert job.startswith("codellama-7b-download-")
    assert rendering.outputs["downloadLogsCommand"] == f"kubectl logs -n llm -f job/{job}"


def test_download_logs_command_follows_a_new_job_when_the_source_changes():
    before = render_values({"model": HF_MODEL}).outputs["downloadLogsCommand"]
    after = render_values({"model": {**HF_MODEL, "huggingface": {"id": HF_MODEL["huggingface"]["id"], "revision": "v2"}}})
    assert after.outputs["downloadLogsCommand"] != before
    assert after.outputs["downloadLogsCommand"].endswith(after.one("Job").inputs["metadata"]["name"])


def test_download_logs_command_is_empty_without_a_download():
    model = {"deployName": "served", "source": "", "volume": {"existingClaim": "weights"}}
    assert render_values({"model": model}).outputs["downloadLogsCommand"] == ""
