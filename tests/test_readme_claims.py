"""Each README (and docs/) claim that can be checked offline, checked against what the program does."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from components.config import ConfigError, parse_config
from components.config.fields import GATEWAY_DURATION, PROMETHEUS_DURATION
from tests.conftest import HF_MODEL, container, manifest, render_values
from tests.examples import EXAMPLE_STACK_FILES
from tests.test_cli import run_cli
from vllm_serving.config_reference import SECTIONS, section_rows
from vllm_serving.crd_schemas import SCHEMA_DIR
from vllm_serving.import_values.chart_fields import CHART_DEFAULT_TAG
from vllm_serving.render import render
from vllm_serving.stack_file import PROJECT_ROOT, STACKS_DIR, stack_path
from vllm_serving.validate import validation_summary

README = (PROJECT_ROOT / "README.md").read_text()
DOCS = PROJECT_ROOT / "docs"


def section(title: str, text: str = README) -> str:
    """The text under a `#`-heading up to the next heading of any level."""
    body = text.split(f" {title}\n", 1)[1]
    return re.split(r"^#{1,6} ", body, maxsplit=1, flags=re.MULTILINE)[0]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def table_rows(text: str) -> dict[str, str]:
    """First column (without backticks) -> second column, for every row of the tables in text but their headers."""
    rows = {}
    lines = text.splitlines()
    for line, following in zip(lines, [*lines[1:], ""], strict=False):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        is_header = following.startswith("| ---")
        if line.startswith("|") and len(cells) >= 2 and not set(cells[0]) <= {"-", " "} and not is_header:
            rows[cells[0].strip("`")] = cells[1]
    return rows


@pytest.fixture(scope="module")
def codellama():
    return render(stack_path("codellama-7b"))


# --- Quick start --------------------------------------------------------------------------------


def test_the_quick_start_description_of_the_example_is_what_render_prints(codellama):
    described = section("Quick start (no cluster, no Pulumi CLI needed)")
    assert (
        "one-GPU Deployment serving `codellama-7b`, a Service on port 8000, a 32Gi ReadWriteOnce PVC (the\n"
        "chart's 24Gi holds one copy of the weights; a model change needs two: see [Day 2](#day-2)), a\n"
        "Hugging Face download Job, a ConfigMap with the download scripts and one with the server's\n"
        "allow-list"
    ) in described
    result = run_cli("render", "codellama-7b")
    kinds = [document["kind"] for document in yaml.safe_load_all(result.stdout)]
    assert kinds == ["Deployment", "Service", "PersistentVolumeClaim", "Job", "ConfigMap", "ConfigMap"]
    claim = manifest(codellama, "PersistentVolumeClaim")["spec"]
    assert claim["resources"]["requests"]["storage"] == "32Gi" and claim["accessModes"] == ["ReadWriteOnce"]
    server = container(codellama, "Deployment", "vllm")
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "--served-model-name=codellama-7b" in server["args"]
    assert manifest(codellama, "Service")["spec"]["ports"][0]["port"] == 8000
    assert codellama.one("Job").inputs["spec"]["template"]["spec"]["containers"][0]["env"][0] == {
        "name": "SOURCE", "value": "huggingface",
    }


def test_the_reading_order_the_readme_gives_is_the_one_render_uses():
    from vllm_serving.manifests import READING_ORDER

    described = section("Quick start (no cluster, no Pulumi CLI needed)").replace("\n", " ")
    listed = re.search(r"that reading order, whatever the stack: (.*?) last\.", described).group(1)
    words = [word.removesuffix("s") if word.endswith("Maps") else word for word in re.findall(r"[A-Z][A-Za-z]+", listed)]
    named = [word for word in words if word in READING_ORDER]
    assert named == list(READING_ORDER)


def test_the_invalid_config_example_is_what_render_prints(tmp_path):
    block = next(b for b in code_blocks(README, "text") if b.startswith("error: invalid stack config"))
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text(yaml.safe_dump({"config": {
        "vllm-serving:replicaCount": 2,
        "vllm-serving:model": {**HF_MODEL, "volume": {"size": "24GB"}},
    }}))
    result = run_cli("render", str(stack))
    assert result.returncode == 2
    assert result.stderr == block


def test_the_validate_summary_shown_is_what_validate_prints_for_the_production_example():
    block = next(b for b in code_blocks(README, "text") if b.startswith("validated "))
    rendering = render(stack_path("llama-3-70b-production"))
    from vllm_serving.manifests import normalize

    assert block == validation_summary([normalize(m) for m in rendering.manifests]) + "\n"


def test_the_example_stacks_config_dir_is_stacks():
    assert "`stackConfigDir: stacks` in `Pulumi.yaml`" in README
    assert yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())["stackConfigDir"] == "stacks"


# --- Outputs ------------------------------------------------------------------------------------


def test_the_outputs_table_lists_every_output_with_its_value_for_the_example(codellama):
    rows = table_rows(section("Outputs"))
    assert sorted(rows) == sorted(codellama.outputs)
    for name in ("endpoint", "openaiBaseUrl", "servedModelName"):
        assert rows[name] == f"`{codellama.outputs[name]}`"
    # The Job's name ends in a hash of its inputs, which every change to the scripts moves: the
    # README shows it as <hash>, and the rest must be exactly what the output holds.
    command = codellama.outputs["downloadLogsCommand"]
    assert re.fullmatch(r"kubectl logs -n default -f job/codellama-7b-download-[0-9a-f]{8}", command)
    assert rows["downloadLogsCommand"].startswith(f"`{command[:-8]}<hash>`:")
    assert rows["externalBaseUrl"].startswith('`""`') and codellama.outputs["externalBaseUrl"] == ""


def test_verify_commands_are_the_two_curl_commands_shown_and_three_lines_with_an_api_key(codellama):
    shown = code_blocks(section("Checking the endpoint"), "sh")[0].replace(" \\\n  ", " ").strip().splitlines()
    assert codellama.outputs["verifyCommands"] == shown
    with_key = render_values({"model": HF_MODEL, "apiKeySecret": {"name": "llm-key"}}).outputs["verifyCommands"]
    assert len(with_key) == 3
    assert with_key[0].startswith('export VLLM_API_KEY="$(kubectl get secret llm-key ')
    assert all('-H "Authorization: Bearer $VLLM_API_KEY"' in line for line in with_key[1:])


# --- the chart's fields -------------------------------------------------------------------------


# The chart's field table and defaults (its README, "Fields"; /work/shared/reference/vllm-chart-README.en.md
# where this was written), as the README's config reference spells keys and defaults.
CHART_DEFAULTS = {
    "replicaCount": "1", "image.registry": "docker.io", "image.repository": "vllm/vllm-openai",
    "image.tag": CHART_DEFAULT_TAG, "image.pullPolicy": "IfNotPresent", "resources.limits.cpu": "4",
    "resources.limits.memory": "64Gi", 'resources.limits."nvidia.com/gpu"': "1", "model.deployName": "",
    "model.volume.storageClass": "", "model.volume.size": "32Gi", "model.volume.accessModes": "ReadWriteOnce",
    "model.volume.existingClaim": "", "model.volume.subPath": "", "model.source": "", "model.huggingface.id": "",
    "model.huggingface.files": "", "model.huggingface.existingSecret": "", "model.git.url": "", "model.git.ref": "",
    "model.git.existingSecret": "", "model.s3.url": "", "model.s3.existingSecret": "", "env": "",
}


def _chart_defaults() -> dict[str, str]:
    return CHART_DEFAULTS


def _our_defaults() -> dict[str, str]:
    rows = [row for name in SECTIONS for row in section_rows(name)]
    return {row.key: row.default.strip("`").strip('"') for row in rows}


def test_every_chart_field_exists_and_each_default_that_differs_is_listed_as_an_exception():
    chart, ours = _chart_defaults(), _our_defaults()
    assert set(chart) - set(ours) == set()
    intro = README.split("## Quick start", 1)[0]
    exceptions = set(re.findall(r"^- .*", intro, re.MULTILINE))
    named = {key for line in exceptions for key in re.findall(r"`([a-zA-Z0-9.]+(?:\.\*)?)`", line)}
    differing = {key for key in chart if chart[key].strip("[]") != ours[key].strip("[]") and ours[key] != "(required)"}
    assert differing == {"image.tag"}
    assert differing <= named
    required = {key for key in chart if ours[key] == "(required)"}
    assert required == {"model.deployName"} and required <= named
    assert {"model.s3.existingSecret", "model.huggingface.files", "resources.limits.*"} <= named


def test_s3_existing_secret_is_required_and_requests_equal_limits():
    raw = {"model": {"deployName": "m", "source": "s3", "s3": {"url": "s3://b/p"}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert dict(caught.value.problems)["model.s3.existingSecret"] == 'required when model.source is "s3"'
    server = container(render_values({"model": HF_MODEL}), "Deployment", "vllm")
    assert server["resources"]["requests"] == server["resources"]["limits"]


# --- docs that were false -----------------------------------------------------------------------


def test_no_example_stack_sets_an_active_proxy_that_does_not_exist():
    for path in EXAMPLE_STACK_FILES:
        config = yaml.safe_load(path.read_text())["config"]
        values = [var.get("value", "") for var in config.get("vllm-serving:env", [])]
        assert not [value for value in values if ".example." in str(value)], path.name
    # Kept as a commented example where the chart had it.
    assert "#   - name: HTTP_PROXY" in (STACKS_DIR / "Pulumi.codellama-7b.yaml").read_text()


@pytest.mark.parametrize("stale", [
    "the node pulls the image anyway",  # the Job shares the image cache only beside the server
    "about a minute",  # set-up time depends on the machine; the set-up benchmark measures it
    "meaning and default (see",  # the chart's fields differ in the listed exceptions
])
def test_statements_found_false_are_gone(stale):
    assert stale not in README


def test_a_failed_download_s_log_reaches_the_pod_status_as_docs_downloads_says():
    assert "`terminationMessagePolicy: FallbackToLogsOnError`" in (DOCS / "downloads.md").read_text()
    rendering = render_values({"model": HF_MODEL})
    assert container(rendering, "Job", "download")["terminationMessagePolicy"] == "FallbackToLogsOnError"


def _crd_pattern(file: str, field: str) -> str:
    text = (SCHEMA_DIR / file).read_text()
    patterns = set(re.findall(rf'"{field}": \{{[^{{}}]*?"pattern": "([^"]+)"', text))
    assert len(patterns) == 1, patterns
    return json.loads(f'"{patterns.pop()}"')


def test_the_duration_rules_are_the_crd_patterns():
    assert f"^{GATEWAY_DURATION.pattern}$" == _crd_pattern("gateway.networking.k8s.io_v1_HTTPRoute.json", "request")
    assert f"^({PROMETHEUS_DURATION.pattern})$" == _crd_pattern("monitoring.coreos.com_v1_ServiceMonitor.json", "interval")
    assert f"^({PROMETHEUS_DURATION.pattern})$" == _crd_pattern("monitoring.coreos.com_v1_PodMonitor.json", "interval")


@pytest.mark.parametrize(("key", "accepted", "refused"), [
    ("httpRoute.requestTimeout", ["1h30m", "3600s", "0s", "500ms"], ["1.5h", "1d", "an hour", ""]),
    ("metrics.serviceMonitor.interval", ["1m30s", "30s", "1d"], ["1.5m", "30", "often", ""]),
])
def test_docs_production_duration_rules_hold_and_render_refuses_what_validate_would(key, accepted, refused):
    production = (DOCS / "production.md").read_text()
    assert "(`1h30m`, not `1.5h`)" in production and "(`1m30s`, not `1.5m`)" in production
    parent, leaf = key.rsplit(".", 1)

    def raw(value: str) -> dict:
        nested: dict[str, Any] = {leaf: value}
        for part in reversed(parent.split(".")):
            nested = {part: nested}
        return {"model": HF_MODEL, **nested}

    for value in accepted:
        parse_config(raw(value))
    for value in refused:
        with pytest.raises(ConfigError) as caught:
            parse_config(raw(value))
        assert key in dict(caught.value.problems), value


def test_the_server_command_line_is_the_one_the_readme_gives(codellama):
    server = container(codellama, "Deployment", "vllm")
    assert server["command"] == ["vllm", "serve"]  # the default release, 0.34
    assert server["args"][:5] == [
        "--model=/model", "--served-model-name=codellama-7b", "--host=0.0.0.0", "--port=8000", "--tensor-parallel-size=1",
    ]
    assert (
        "`vllm serve --model=/model\n--served-model-name=<deployName> "
        "--host=0.0.0.0 --port=8000 --tensor-parallel-size=<GPUs>\n<server.extraArgs>` with vLLM 0.34 (the default)"
    ) in README
    older = container(render_values({"model": HF_MODEL, "image": {"tag": "v0.33.0"}}), "Deployment", "vllm")
    assert older["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert "with 0.33, 0.32 and older tags,\n`python3 -m vllm.entrypoints.openai.api_server` and the same arguments" in README


# --- the code map -------------------------------------------------------------------------------


def _code_map() -> dict[str, str]:
    """Each entry of the code map (a path) -> its description, continuation lines included."""
    block = README.split("## How the code is laid out", 1)[1].split("```")[1]
    entries: dict[str, str] = {}
    last = ""
    for line in block.strip().splitlines():
        if line.startswith(" "):
            entries[last] += " " + line.strip()
        else:
            last, _, description = line.partition(" ")
            entries[last] = description.strip()
    return entries


def test_the_code_map_names_every_module_of_vllm_serving():
    entries = _code_map()
    package = PROJECT_ROOT / "vllm_serving"
    unlisted = []
    for path in sorted(package.rglob("*.py")):
        relative = str(path.relative_to(PROJECT_ROOT))
        if path.name == "__init__.py" and path.parent != package:
            if f"{path.parent.relative_to(PROJECT_ROOT)}/" not in entries:
                unlisted.append(relative)
            continue
        if path.name == "__init__.py" or relative in entries:
            continue
        directory = f"{path.parent.relative_to(PROJECT_ROOT)}/"
        if not re.search(rf"\b{path.stem}\b", entries.get(directory, "")):
            unlisted.append(relative)
    assert unlisted == []


def test_the_code_map_names_the_secret_check_component():
    assert "SecretCheck" in _code_map()["components/storage/secret_check.py"]


def test_the_claims_await_is_the_providers_fixed_five_minutes():
    # pulumi-kubernetes provider/pkg/await/awaiters.go, untilCoreV1PersistentVolumeClaimReady:
    # WatchUntil(pvcReady, 5*time.Minute); the program sets no timeout that could suggest otherwise.
    row = next(line for line in README.splitlines() if line.startswith("| PersistentVolumeClaim |"))
    assert "5 minutes, fixed in the provider" in row and "provider default" not in row
    claim = next(r for r in render_values({"model": HF_MODEL}).resources if r.type == "kubernetes:core/v1:PersistentVolumeClaim")
    assert claim.options["customTimeouts"] == {}


def test_the_docs_say_what_a_failed_download_job_carries():
    job = render_values({"model": HF_MODEL}).one("Job").inputs
    failures = (DOCS / "failures.md").read_text()
    assert job["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}
    assert '`pulumi.com/replaceUnready: "true"`' in failures
    # The scheduler functions the README cites are those of current Kubernetes.
    for name in ("nodeTopologyMatchesAffinity", "nodePodsSatisfyAffinity", "satisfiesSelfAffinityCheck"):
        assert f"`{name}`" in README
