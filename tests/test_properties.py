"""Properties of every config the program accepts, and of every config it must refuse.

Valid configs are generated over every model source and optional key, handed to the
program the way the Pulumi engine passes them, rendered, and checked for invariants
that no single example test pins down. Invalid configs break one key at a time and
must be refused by `vllm-serving render` with the key's path, never a traceback.

Reproducible by default (derandomized). For a deeper, random search:
    VLLM_SERVING_HYPOTHESIS_PROFILE=explore .venv/bin/pytest tests/test_properties.py
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from components.config import ConfigError
from policy import rules
from tests.conftest import engine_config
from vllm_serving.cli import main
from vllm_serving.manifests import normalize, to_yaml
from vllm_serving.render import Rendering, render_config
from vllm_serving.stack_file import PROJECT_ROOT
from vllm_serving.validate import SUPPORTED_KUBERNETES_VERSIONS, validate_manifests

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
_PROFILE = os.environ.get("VLLM_SERVING_HYPOTHESIS_PROFILE", "ci")
_SCALE = 10 if _PROFILE == "explore" else 1


def examples(count: int) -> settings:
    return settings(settings.get_profile(_PROFILE), max_examples=count * _SCALE)


OLDEST_AND_LATEST = (SUPPORTED_KUBERNETES_VERSIONS[0], SUPPORTED_KUBERNETES_VERSIONS[-1])
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
SINGLE_NODE = ("ReadWriteOnce", "ReadWriteOncePod")

# Planted in the deployer's environment while rendering: none may reach a manifest.
DEPLOYER_SECRETS = {
    "HF_TOKEN": "hf_" + "Zq8" * 12,
    "HUGGING_FACE_HUB_TOKEN": "hf_" + "Wx7" * 12,
    "GIT_TOKEN": "glpat-" + "Ab1" * 8,
    "GITHUB_TOKEN": "ghp_" + "Cd2" * 12,
    "AWS_ACCESS_KEY_ID": "AKIA" + "EFGHIJKLMNOP2345",
    "AWS_SECRET_ACCESS_KEY": "q" * 40,
    "VLLM_API_KEY": "sk-" + "Gh3" * 10,
}


@pytest.fixture(scope="module", autouse=True)
def schemas_read_once():
    """kubernetes-validate re-reads and re-parses its JSON schema files on every call (about 15 ms
    per manifest and version); reading each once keeps hundreds of renderings within the time
    budget. The validation itself is unchanged."""
    from kubernetes_validate import utils

    original = getattr(utils, "schema_contents", None)
    if original is None:
        yield
        return
    utils.schema_contents = functools.lru_cache(maxsize=None)(original)
    try:
        yield
    finally:
        utils.schema_contents = original


# --- generating valid configs ----------------------------------------------------------------

dns_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
deploy_names = st.one_of(
    st.from_regex(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?", fullmatch=True),
    # The edges: one letter, and the longest name allowed, which the derived names grow from.
    st.sampled_from(["m", "a" * 40, "z" + "9" * 39, "codellama-7b"]),
)
namespaces = st.one_of(dns_label, st.sampled_from(["default", "llm", "a" * 63]))
resource_names = st.one_of(
    dns_label, st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?\.[a-z0-9]{1,10}", fullmatch=True)
)
sub_paths = st.lists(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True), min_size=0, max_size=3
).flatmap(lambda parts: st.sampled_from(["/".join(parts), "/".join(parts) + "/"]) if parts else st.just(""))
hf_repo_ids = st.from_regex(
    r"[A-Za-z0-9](([A-Za-z0-9_]|[._-][A-Za-z0-9_]){0,7})/[A-Za-z0-9](([A-Za-z0-9_]|[._-][A-Za-z0-9_]){0,12})", fullmatch=True
).filter(lambda repo_id: not repo_id.endswith(".git"))
bucket_names = st.from_regex(r"[a-z0-9][-a-z0-9]{1,20}[a-z0-9]", fullmatch=True)
revisions = st.sampled_from(["", "main", "v1.0.0", "refs/pr/1", "0123456789abcdef0123456789abcdef01234567"])
quantities_cpu = st.sampled_from(["4", 8, "500m", "2.5", 16, "1"])
quantities_memory = st.sampled_from(["64Gi", "96Gi", "1536Mi", "128G", "1e11", 70000000000])  # at least 1Gi (the floor)
# Literal env values that cannot take a token's shape: no '_', '-', '@' or capitals.
plain_values = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ./:,", max_size=30),
    st.integers(-5, 100000),
    st.booleans(),
)
# HF_HOME, HOME and HF_HUB_OFFLINE are also set by the program itself, in the Job or the server.
plain_env_names = st.sampled_from([
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "VLLM_LOGGING_LEVEL", "TOKENIZERS_PARALLELISM", "NCCL_DEBUG",
    "OMP_NUM_THREADS", "HF_HOME", "HOME", "HF_HUB_OFFLINE",
])
secret_env_names = st.sampled_from(["HF_TOKEN", "VLLM_API_KEY", "HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY"])


@st.composite
def env_vars(draw) -> dict[str, Any]:
    kind = draw(st.sampled_from(["plain", "secret", "configMap", "field"]))
    if kind == "plain":
        return {"name": draw(plain_env_names), "value": draw(plain_values)}
    if kind == "secret":
        ref = {"name": draw(resource_names), "key": draw(st.sampled_from(["token", "apiKey"]))}
        if draw(st.booleans()):
            ref["optional"] = True
        return {"name": draw(secret_env_names), "valueFrom": {"secretKeyRef": ref}}
    if kind == "configMap":
        return {"name": draw(plain_env_names), "valueFrom": {"configMapKeyRef": {"name": draw(resource_names), "key": "v"}}}
    return {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}


tolerations = st.sampled_from([
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"},
    {"key": "preemptible", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"operator": "Exists"},
])
# Options every supported vLLM release has (components/engine): --swap-space is gone since before
# 0.32, and 0.32 has no --disable-log-requests (its twin is --no-enable-log-requests).
extra_args = st.sampled_from([
    "--max-num-batched-tokens=8192",
    "--no-enable-log-requests",
    "--disable-log-stats",
    "--enforce-eager",
    "--seed=0",
    "--block-size=16",
    "--uvicorn-log-level=warning",
])


def _maybe(draw, strategy) -> Any:
    """None (the key left out) or a drawn value."""
    return draw(strategy) if draw(st.booleans()) else None


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


SOURCES = ("huggingface", "git", "s3", "")


@st.composite
def valid_configs(draw, sources: tuple[str, ...] = SOURCES) -> dict[str, Any]:  # noqa: PLR0912 - a draw per key
    """A stack's `vllm-serving:` keys (without the namespace) that the program must accept."""
    source = draw(st.sampled_from(sources))
    replicas = draw(st.integers(0, 4))
    modes = draw(st.lists(st.sampled_from(ACCESS_MODES), min_size=1, max_size=4, unique=True))
    if replicas > 1 and all(mode in SINGLE_NODE for mode in modes):
        # More than one replica needs a volume that other nodes can mount too.
        modes.append(draw(st.sampled_from(["ReadOnlyMany", "ReadWriteMany"])))
    if "ReadWriteOncePod" in modes and (source or len(modes) > 1):
        # One pod only, and alone: refused beside other modes or with a download Job.
        modes = [mode for mode in modes if mode != "ReadWriteOncePod"] or ["ReadWriteOnce"]
    if source and "ReadOnlyMany" in modes and "ReadWriteMany" not in modes:
        # Read-only beside ReadWriteOnce (written on one node only) or alone (not writable at all):
        # both refused with a download, so the volume takes ReadWriteMany too.
        modes.append("ReadWriteMany")
    volume = _without_none({
        "size": draw(st.sampled_from(["24Gi", "40Gi", "100G", "1Ti", 50000000000])),
        "accessModes": modes,
        "storageClass": _maybe(draw, st.sampled_from(["", "fast-ssd", "standard.csi.example.com"])),
        "subPath": _maybe(draw, sub_paths),
        # Without a download the model must already be on a claim; with one, it may be too.
        "existingClaim": draw(resource_names) if source == "" or draw(st.booleans()) else None,
    })
    model: dict[str, Any] = {"deployName": draw(deploy_names), "volume": volume, "source": source}
    secret = _maybe(draw, resource_names)
    if source == "huggingface":
        model["huggingface"] = _without_none({
            # huggingface_hub's validate_repo_id: no '--' or '..', ends with a letter, digit or '_'.
            "id": draw(hf_repo_ids),
            "files": _maybe(draw, st.sampled_from(["", "*.safetensors,config.json,tokenizer*", "model.safetensors"])),
            "revision": _maybe(draw, revisions),
            "existingSecret": secret,
        })
    elif source == "git":
        model["git"] = _without_none({
            "url": draw(st.sampled_from(["https", "http"])) + "://git.example.internal/models/" + draw(dns_label) + ".git",
            "ref": _maybe(draw, revisions),
            "existingSecret": secret,
        })
    elif source == "s3":
        model["s3"] = {
            "url": f"s3://{draw(bucket_names)}/{draw(sub_paths)}",
            "existingSecret": draw(resource_names),
        }
    if "existingClaim" not in volume and draw(st.booleans()):
        # Up to what the new volume holds at the peak of a model change, when the new download sits
        # beside the served and kept versions; the program annotates its claim with the size and the
        # copies (the policy's size check).
        keep = draw(st.integers(0, 3))
        volume["keepPreviousVersions"] = keep
        volume_bytes = rules.parse_quantity(str(volume["size"])) / (max(keep, 1) + 1)
        model["size"] = str(int(volume_bytes * draw(st.integers(1, 10)) / 10))
    gpus = draw(st.integers(1, 8))
    values: dict[str, Any] = {
        "model": model,
        "replicaCount": replicas,
        "resources": {"limits": {"cpu": draw(quantities_cpu), "memory": draw(quantities_memory), "nvidia.com/gpu": gpus}},
    }
    optional = {
        "namespace": namespaces,
        "image": st.fixed_dictionaries(
            {},
            optional={
                "registry": st.sampled_from(["docker.io", "", "registry.example.internal:5000"]),
                "repository": st.sampled_from(["vllm/vllm-openai", "mirror/vllm-openai"]),
                # The releases with a profile, and older ones, which get the nearest profile.
                "tag": st.sampled_from(["v0.32.0", "v0.33.0", "v0.34.0", "v0.6.3.post1", "v0.10.1"]),
                "pullPolicy": st.sampled_from(["Always", "IfNotPresent", "Never"]),
            },
        ),
        "env": st.lists(env_vars(), max_size=5, unique_by=lambda var: var["name"]),
        "service": st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"]),
                "annotations": st.dictionaries(st.sampled_from(["example.com/team", "lb.example.com/internal"]), dns_label, max_size=2),
            },
        ),
        "server": st.fixed_dictionaries(
            {},
            optional={
                "extraArgs": st.lists(extra_args, max_size=3, unique=True),
                "nodeSelector": st.dictionaries(
                    st.sampled_from(["nvidia.com/gpu.product", "kubernetes.io/arch", "node.kubernetes.io/instance-type"]),
                    st.sampled_from(["NVIDIA-L40S", "amd64", "g5.xlarge"]),
                    max_size=2,
                ),
                "tolerations": st.lists(tolerations, max_size=3, unique_by=lambda t: t.get("key", "")),  # type: ignore[attr-defined]  # draws are dicts
                "startupTimeoutSeconds": st.integers(60, 7200),
                "shmSizeLimit": st.sampled_from(["", "16Gi", "1Gi"]),
                "podAnnotations": st.dictionaries(st.sampled_from(["example.com/owner"]), dns_label, max_size=1),
            },
        ),
        "download": st.fixed_dictionaries(
            {},
            optional={
                "image": st.sampled_from(["", "docker.io/library/python:3.12-slim", "registry.example.internal/tools/fetch:1.2.3"]),
                "parallelism": st.integers(1, 256),
                "backoffLimit": st.integers(0, 20),
                "ttlSecondsAfterFinished": st.integers(0, 86400),
                "timeoutMinutes": st.integers(1, 1440),
                "cpu": quantities_cpu,
                "memory": st.sampled_from(["2Gi", "512Mi", "4G"]),
            },
        ),
    }
    for key, strategy in optional.items():
        value = _maybe(draw, strategy)
        if value is not None:
            values[key] = value
    if "size" in model:
        # Enough time to load the largest model at the assumed 0.5 GB/s, so that the size check passes.
        values.setdefault("server", {})["startupTimeoutSeconds"] = 7200
    api_key = draw(st.sampled_from(["none", "apiKey", "apiKeySecret"]))
    if api_key == "none" and values.get("service", {}).get("type") in ("NodePort", "LoadBalancer"):
        # Reachable from outside the cluster without a key: only when said so.
        values["allowUnauthenticated"] = True
    if api_key == "apiKey":
        # Never starting with '[' or '{' (see test_a_string_value_starting_with_a_bracket_is_not_taken_for_json).
        values["apiKey"] = draw(st.from_regex(r"(sk-)?[A-Za-z0-9][A-Za-z0-9_.~+/=-]{15,60}", fullmatch=True))
    elif api_key == "apiKeySecret":
        values["apiKeySecret"] = _without_none({"name": draw(resource_names), "key": _maybe(draw, st.sampled_from(["apiKey", "key"]))})
    if api_key != "none" and "env" in values:
        # The server's VLLM_API_KEY then comes from the key's Secret, and config refuses a second one.
        values["env"] = [var for var in values["env"] if var["name"] != "VLLM_API_KEY"]
    return values


def render_values(values: dict[str, Any]) -> Rendering:
    # An API key is only accepted as a Pulumi secret, as `pulumi config set --secret apiKey` stores it.
    secret_keys = ["vllm-serving:apiKey"] if "apiKey" in values else []
    with mock.patch.dict(os.environ, DEPLOYER_SECRETS):
        return render_config(engine_config(values), secret_keys, "property")


# --- reading a rendering ---------------------------------------------------------------------


def kubernetes(rendering: Rendering) -> list[tuple[str, dict[str, Any], Any]]:
    return [(r.type, normalize(r.inputs), r) for r in rendering.resources if r.is_kubernetes]


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["template"]["spec"]


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in items if item["name"] == name)


def mount(container: dict[str, Any], volume: str) -> dict[str, Any]:
    return named(container["volumeMounts"], volume)


def env_value(container: dict[str, Any], name: str) -> Any:
    return named(container["env"], name).get("value")


def effective_flag(args: list[str], names: set[str]) -> str | None:
    """The value vLLM's argument parser ends up with: '_' read as '-', the last occurrence wins."""
    value, index = None, 0
    while index < len(args):
        key, equals, given_value = args[index].partition("=")
        if key.startswith("--"):
            key = "--" + key[2:].replace("_", "-")
        if key in names:
            if equals:
                value = given_value
            elif index + 1 < len(args):
                value, index = args[index + 1], index + 1
        index += 1
    return value


def tensor_parallel_size(server: dict[str, Any]) -> str | None:
    return effective_flag(server.get("command", []) + server.get("args", []), {"--tensor-parallel-size", "-tp"})


# How Pulumi's wire format marks a secret: state encrypts it, and renderings print it masked.
_SECRET_SIGNATURE = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def _is_pulumi_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SECRET_SIGNATURE[0]) == _SECRET_SIGNATURE[1]


def strings(value: Any, *, inside_secrets: bool = True) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        if _is_pulumi_secret(value) and not inside_secrets:
            return
        for key, item in value.items():
            yield str(key)
            yield from strings(item, inside_secrets=inside_secrets)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item, inside_secrets=inside_secrets)


_DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


# --- the invariants --------------------------------------------------------------------------


def check_names(manifests: list[dict[str, Any]]) -> None:
    for manifest in manifests:
        name, kind = manifest["metadata"]["name"], manifest["kind"]
        pattern = _DNS_1035_LABEL if kind == "Service" else _DNS_1123_LABEL
        assert len(name) <= 63 and pattern.fullmatch(name), (kind, name)
        labelled = [manifest["metadata"]] + ([manifest["spec"]["template"]["metadata"]] if "template" in manifest.get("spec", {}) else [])
        for metadata in labelled:
            for key, value in metadata.get("labels", {}).items():
                assert len(value) <= 63 and _LABEL_VALUE.fullmatch(value), (kind, key, value)
        for container in _containers(manifest):
            names = [var["name"] for var in container.get("env", [])]
            # A repeated name is resolved by "last one wins": config env would silently replace the
            # program's own variables (HF_HOME of the download Job, say).
            assert len(names) == len(set(names)), (kind, container["name"], names)


def _containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    spec = manifest.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("initContainers", []) + spec.get("containers", [])


def check_selectors(by_kind: dict[str, list[dict[str, Any]]]) -> None:
    (deployment,) = by_kind["Deployment"]
    (service,) = by_kind["Service"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    match_labels = deployment["spec"]["selector"]["matchLabels"]
    assert match_labels and match_labels.items() <= pod_labels.items()
    selector = service["spec"]["selector"]
    assert selector and selector.items() <= pod_labels.items()
    # The Service must not send requests to download pods, which never listen on the port.
    for job in by_kind.get("Job", []):
        assert not selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()


def check_tensor_parallel(values: dict[str, Any], deployment: dict[str, Any]) -> None:
    server = named(pod_spec(deployment)["containers"], "vllm")
    gpus = server["resources"]["limits"]["nvidia.com/gpu"]
    assert str(gpus) == str(values["resources"]["limits"]["nvidia.com/gpu"])
    assert tensor_parallel_size(server) == str(gpus)


def check_model_before_server(values: dict[str, Any], rendering: Rendering, by_kind, resources) -> None:
    (deployment,) = by_kind["Deployment"]
    spec = pod_spec(deployment)
    server = named(spec["containers"], "vllm")
    claim = named(spec["volumes"], "model")["persistentVolumeClaim"]["claimName"]
    existing = values["model"].get("volume", {}).get("existingClaim")
    if existing:
        assert claim == existing and "PersistentVolumeClaim" not in by_kind
    else:
        (pvc,) = by_kind["PersistentVolumeClaim"]
        assert claim == pvc["metadata"]["name"]
        # What the policy pack's model-volume-fits-model compares the claim's size with.
        annotations = pvc["metadata"].get("annotations", {})
        if values["model"].get("size"):
            assert int(annotations[rules.MODEL_BYTES_ANNOTATION]) == int(values["model"]["size"])
            keep = values["model"]["volume"]["keepPreviousVersions"]
            assert int(annotations[rules.MODEL_COPIES_ANNOTATION]) == max(keep, 1) + 1
        else:
            assert rules.MODEL_BYTES_ANNOTATION not in annotations
    deployment_resource = next(r for t, _, r in resources if t == "kubernetes:apps/v1:Deployment")
    jobs = [(m, r) for t, m, r in resources if t == "kubernetes:batch/v1:Job"]

    if not values["model"]["source"]:
        assert jobs == [] and "initContainers" not in spec
        return
    (job, job_resource), = jobs
    # Pulumi creates the Deployment only once the Job has completed ...
    assert job_resource.urn in deployment_resource.dependencies
    download = named(pod_spec(job)["containers"], "download")
    fingerprint = env_value(download, "SOURCE_FINGERPRINT")
    assert re.fullmatch(r"[0-9a-f]{12}", fingerprint)
    # ... and each pod waits for the marker of exactly this source, in the directory the server reads.
    (wait,) = spec["initContainers"]
    # The script takes each directory and its fingerprint as arguments, so no value is read as shell.
    assert wait["command"][3:6] == ["sh", mount(wait, "model")["mountPath"], fingerprint]
    assert '"$1/.vllm-serving-complete"' in wait["command"][2]
    assert mount(wait, "model").get("subPath") == mount(server, "model").get("subPath")
    job_mount = mount(download, "model")
    server_dir = mount(server, "model").get("subPath")
    written = job_mount["mountPath"] + (f"/{job_mount['subPath']}" if job_mount.get("subPath") else "")
    assert env_value(download, "MODEL_DIR") == (f"{written}/{server_dir}" if server_dir else written)
    assert named(pod_spec(job)["volumes"], "model")["persistentVolumeClaim"]["claimName"] == claim


def check_secrets(values: dict[str, Any], rendering: Rendering, by_kind) -> None:
    raw = rendering.manifests
    everything = [text for manifest in raw for text in strings(manifest)]
    for planted in DEPLOYER_SECRETS.values():
        assert not any(planted in text for text in everything)
    plain = [text for manifest in raw for text in strings(manifest, inside_secrets=False)]
    for text in plain:
        assert rules.find_tokens(text) == [], text

    server = named(pod_spec(by_kind["Deployment"][0])["containers"], "vllm")
    references = {
        var["valueFrom"]["secretKeyRef"]["name"]
        for var in server.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    }
    api_key = values.get("apiKey")
    if api_key:
        assert not any(api_key in text for text in plain)
        assert api_key not in to_yaml(raw)
        (secret,) = [m for m in raw if m["kind"] == "Secret"]
        assert any(api_key in text for text in strings(secret)), "the Secret does not hold the key"
        assert secret["metadata"]["name"] in references
    else:
        assert "Secret" not in by_kind
    if values.get("apiKeySecret"):
        assert values["apiKeySecret"]["name"] in references

    model = values["model"]
    secret_name = model.get(model["source"], {}).get("existingSecret") if model["source"] else None
    for job in by_kind.get("Job", []):
        env = {var["name"]: var for var in named(pod_spec(job)["containers"], "download")["env"]}
        credentials = {
            "huggingface": ["HF_TOKEN"], "git": ["GIT_TOKEN"], "s3": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        }[model["source"]]
        for name in credentials:
            if secret_name:
                assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret_name and "value" not in env[name]
            elif name in env:
                # Only config env can bring it in then, and only by reference.
                assert "valueFrom" in env[name] and "value" not in env[name]


def check_policies(resources) -> None:
    for resource_type, manifest, _ in resources:
        assert rules.violations(resource_type, manifest) == {}, manifest["metadata"]["name"]


def check_invariants(values: dict[str, Any], rendering: Rendering, versions: tuple[str, ...]) -> None:
    resources = kubernetes(rendering)
    manifests = [manifest for _, manifest, _ in resources]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for manifest in manifests:
        by_kind.setdefault(manifest["kind"], []).append(manifest)

    assert validate_manifests(manifests, versions) == []
    check_names(manifests)
    check_selectors(by_kind)
    check_tensor_parallel(values, by_kind["Deployment"][0])
    check_model_before_server(values, rendering, by_kind, resources)
    check_secrets(values, rendering, by_kind)
    check_policies(resources)


# One run per source, so that each gets its share of examples rather than what the search favours.
@pytest.mark.parametrize("source", SOURCES, ids=lambda source: source or "existing-claim")
@examples(50)
@given(data=st.data())
def test_every_valid_config_renders_sound_manifests(source, data):
    values = data.draw(valid_configs((source,)), label="values")
    event(f"replicas={values['replicaCount']}")
    check_invariants(values, render_values(values), OLDEST_AND_LATEST)


@examples(30)
@given(valid_configs())
def test_valid_configs_render_manifests_every_supported_kubernetes_accepts(values):
    check_invariants(values, render_values(values), SUPPORTED_KUBERNETES_VERSIONS)


# --- invalid configs -------------------------------------------------------------------------


def _set(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _delete(values: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    node = values
    for part in parents:
        node = node.get(part, {})
    node.pop(last, None)


def _source(values: dict[str, Any], source: str, **fields: Any) -> None:
    values["model"]["source"] = source
    values["model"][source] = {**values["model"].get(source, {}), **fields}


def _bad_source(draw, values):
    _set(values, "model.source", draw(st.sampled_from(["hf", "HuggingFace", "http", "none", "S3", "local", 1])))
    return "model.source"


def _missing_hf_id(draw, values):
    _source(values, "huggingface", id=draw(st.sampled_from(["", "   "])))
    if draw(st.booleans()):
        del values["model"]["huggingface"]["id"]
    return "model.huggingface.id"


def _missing_git_url(draw, values):
    _source(values, "git", url="")
    if draw(st.booleans()):
        del values["model"]["git"]["url"]
    return "model.git.url"


def _bad_git_url(draw, values):
    _source(values, "git", url=draw(st.sampled_from(["git@github.com:org/model.git", "ssh://git.example/m.git", "file:///m"])))
    return "model.git.url"


def _bad_s3_url(draw, values):
    _source(values, "s3", url=draw(st.sampled_from(["", "https://bucket/prefix", "bucket/prefix", "s3://"])), existingSecret="s3-models")
    return "model.s3.url"


def _missing_s3_secret(draw, values):
    _source(values, "s3", url="s3://models/m/", existingSecret="")
    return "model.s3.existingSecret"


def _bad_quantity(draw, values):
    path = draw(st.sampled_from([
        "model.volume.size", "resources.limits.memory", "resources.limits.cpu", "download.memory", "server.shmSizeLimit",
    ]))
    value = draw(st.sampled_from(["24GB", "24 Gi", "lots", "-1Gi", "24gi", "1.5.0Gi", "64 GB", "2TB", "1,5Gi"]))
    _set(values, path, value)
    return path


def _bad_deploy_name(draw, values):
    name = draw(st.one_of(
        st.sampled_from(["CodeLlama", "7b-model", "my_model", "model-", "-model", "a.b", "", "a" * 41, "llama 3"]),
        st.from_regex(r"[a-z][a-z0-9]{40,60}", fullmatch=True),
    ))
    values["model"]["deployName"] = name
    return "model.deployName"


def _missing_deploy_name(draw, values):
    del values["model"]["deployName"]
    return "model.deployName"


def _bad_access_mode(draw, values):
    values["model"]["volume"]["accessModes"] = draw(st.sampled_from([
        ["ReadWriteSometimes"], ["rwo"], [], ["ReadWriteOnce", "ReadOnlyOnce"], "ReadWriteOnce",
    ]))
    values["replicaCount"] = 1
    return "model.volume.accessModes"


def _negative_replicas(draw, values):
    values["replicaCount"] = draw(st.one_of(st.integers(-100, -1), st.sampled_from(["two", 1.5])))
    return "replicaCount"


def _replicas_on_single_node_volume(draw, values):
    values["replicaCount"] = draw(st.integers(2, 10))
    values["model"]["volume"]["accessModes"] = draw(
        st.lists(st.sampled_from(SINGLE_NODE), min_size=1, max_size=2, unique=True)
    )
    return "replicaCount"


def _bad_gpu_count(draw, values):
    values["resources"]["limits"]["nvidia.com/gpu"] = draw(st.sampled_from([0, -1, "0.5", "one", 1.5]))
    return 'resources.limits["nvidia.com/gpu"]'


def _unpinned_tag(draw, values):
    _set(values, "image.tag", draw(st.sampled_from(["latest", "", "   "])))
    return "image.tag"


def _bad_enum(draw, values):
    path, value = draw(st.sampled_from([
        ("image.pullPolicy", "always"),
        ("service.type", "Ingress"),
        ("service.type", "ExternalName"),
    ]))
    _set(values, path, value)
    return path


def _bad_namespace(draw, values):
    values["namespace"] = draw(st.sampled_from(["LLM", "my_ns", "-ns", "a" * 64, "", "llm.prod"]))
    return "namespace"


def _bad_sub_path(draw, values):
    values["model"]["volume"]["subPath"] = draw(st.sampled_from(["/models/x", "../up", "a/../../b", ".."]))
    return "model.volume.subPath"


def _bad_claim(draw, values):
    values["model"]["volume"]["existingClaim"] = draw(st.sampled_from(["Shared_Models", "-claim", "a" * 254, "claim/x"]))
    return "model.volume.existingClaim"


def _no_source_no_claim(draw, values):
    values["model"]["source"] = ""
    values["model"]["volume"].pop("existingClaim", None)
    return "model.volume.existingClaim"


def _bad_env(draw, values):
    env = values.setdefault("env", [])
    index = len(env)
    kind = draw(st.sampled_from(["name", "both", "neither"]))
    if kind == "name":
        env.append({"name": draw(st.sampled_from(["1X", "A B", "", "X=Y"])), "value": "1"})
        return f"env[{index}].name"
    if kind == "both":
        env.append({"name": "X_BOTH", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})
    else:
        env.append({"name": "X_NEITHER"})
    return f"env[{index}]"


def _out_of_range(draw, values):
    path, value = draw(st.sampled_from([
        ("download.parallelism", 0),
        ("download.parallelism", 257),
        ("download.backoffLimit", 21),
        ("download.backoffLimit", -1),
        ("download.timeoutMinutes", 0),
        ("server.startupTimeoutSeconds", 59),
    ]))
    _set(values, path, value)
    return path


def _bad_toleration(draw, values):
    _set(values, "server.tolerations", [{"key": "x", "operator": draw(st.sampled_from(["Sometimes", "exists"]))}])
    return "server.tolerations[0].operator"


def _extra_args_override(draw, values):
    # Flags the program derives from typed keys, in every spelling vLLM's parser accepts.
    override = draw(st.sampled_from([
        ["--tensor-parallel-size=2"], ["--tensor_parallel_size=2"], ["--tensor-parallel-size", "2"], ["-tp=2"],
        ["--port=9000"], ["--served_model_name=other"], ["--model=/elsewhere"], ["--host=127.0.0.1"],
        ["--api-key=abc"], ["--api_key", "abc"],
    ]))
    extra = values.setdefault("server", {}).setdefault("extraArgs", [])
    index = draw(st.integers(0, len(extra)))
    extra[index:index] = override
    return f"server.extraArgs[{index}]"


def _plain_api_key(draw, values):
    # In the stack file as plain text rather than `secure:`: it would sit unencrypted in git and state.
    values.pop("apiKeySecret", None)
    values["apiKey"] = "sk-" + "k" * 24
    return "apiKey"


def _unknown_key(draw, values):
    path = draw(st.sampled_from([
        "replicas", "model.volume.sizee", "model.huggingface.token", "image.tags", "server.extraArg",
        "download.retries", "resources.limit", "model.deploy_name",
    ]))
    _set(values, path, "x")
    return path


BREAKAGES = {
    function.__name__.lstrip("_"): function
    for function in (
        _bad_source, _missing_hf_id, _missing_git_url, _bad_git_url, _bad_s3_url, _missing_s3_secret, _bad_quantity,
        _bad_deploy_name, _missing_deploy_name, _bad_access_mode, _negative_replicas, _replicas_on_single_node_volume,
        _bad_gpu_count, _unpinned_tag, _bad_enum, _bad_namespace, _bad_sub_path, _bad_claim, _no_source_no_claim,
        _bad_env, _out_of_range, _bad_toleration, _extra_args_override, _plain_api_key, _unknown_key,
    )
}


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stacks") / "Pulumi.broken.yaml"


def write_stack(path: Path, values: dict[str, Any]) -> None:
    config = {f"vllm-serving:{key}": value for key, value in values.items()}
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))


def run_cli(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(list(argv))
    return code, stdout.getvalue(), stderr.getvalue()


# One run per kind of breakage, so that each is tried on as many valid configs as the others.
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
@examples(18)
@given(data=st.data())
def test_a_broken_key_is_refused_by_name_without_a_traceback(stack_file, breakage, data):
    values = copy.deepcopy(data.draw(valid_configs(), label="valid config"))
    path = BREAKAGES[breakage](data.draw, values)
    note(f"broken: {path}")
    write_stack(stack_file, values)
    code, stdout, stderr = run_cli("render", str(stack_file))
    assert code == 2, stderr
    assert f"vllm-serving:{path}:" in stderr, stderr
    assert "Traceback" not in stderr + stdout
    assert stdout == ""


def test_a_key_without_its_namespace_is_refused_by_name(tmp_path):
    path = tmp_path / "Pulumi.bare.yaml"
    path.write_text(yaml.safe_dump({"config": {"replicaCount": 2, "vllm-serving:model": {"deployName": "m"}}}))
    code, stdout, stderr = run_cli("render", str(path))
    assert code == 2 and "'replicaCount'" in stderr and "vllm-serving:replicaCount" in stderr
    assert "Traceback" not in stderr and stdout == ""


def test_the_installed_command_refuses_a_broken_stack_without_a_traceback(tmp_path):
    # In a real process, where an uncaught exception would print its traceback.
    path = tmp_path / "Pulumi.broken.yaml"
    write_stack(path, {"model": {"deployName": "CodeLlama", "volume": {"size": "24GB"}, "source": "hf"}})
    result = subprocess.run(
        [sys.executable, "-m", "vllm_serving", "render", str(path)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    for key in ("model.deployName", "model.volume.size", "model.source"):
        assert f"vllm-serving:{key}:" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


# --- regressions: reproducers of bugs these properties found -------------------------------------


def test_every_name_fits_63_characters_at_the_longest_deploy_name():
    # The scripts ConfigMap was once <deployName>-download-scripts-<hash>: 66 characters.
    values = {"model": {"deployName": "a" * 40, "source": "huggingface", "huggingface": {"id": "org/m"}}}
    names = {m["kind"]: m["metadata"]["name"] for m in render_values(values).manifests}
    assert all(len(name) <= 63 for name in names.values()), names


def test_extra_args_cannot_change_the_tensor_parallel_size_by_another_spelling():
    # vLLM's parser reads --tensor_parallel_size as --tensor-parallel-size, and the last one wins.
    values = {
        "model": {"deployName": "m", "source": "huggingface", "huggingface": {"id": "org/m"}},
        "resources": {"limits": {"nvidia.com/gpu": 1}},
        "server": {"extraArgs": ["--tensor_parallel_size=2"]},
    }
    try:
        rendering = render_values(values)
    except ConfigError as error:
        assert "server.extraArgs[0]" in str(error)  # noqa: PT017 - a refusal is one of two allowed outcomes
        return
    server = named(pod_spec(rendering.one("Deployment").inputs)["containers"], "vllm")
    assert tensor_parallel_size(server) == "1"


def test_user_env_cannot_override_the_jobs_own_variables():
    values = {
        "model": {"deployName": "m", "source": "huggingface", "huggingface": {"id": "org/m"}},
        # Pointing the server's Hugging Face cache somewhere is common; the Job runs with a
        # read-only root filesystem and needs its own HF_HOME under /tmp.
        "env": [{"name": "HF_HOME", "value": "/data/hf-cache"}],
    }
    download = named(pod_spec(render_values(values).one("Job").inputs)["containers"], "download")
    assert [var["value"] for var in download["env"] if var["name"] == "HF_HOME"] == ["/tmp/hf-home"]


def test_a_stack_with_an_encrypted_api_key_renders_offline(tmp_path):
    path = tmp_path / "Pulumi.secure.yaml"
    path.write_text(yaml.safe_dump({"config": {
        "vllm-serving:model": {"deployName": "m", "source": "huggingface", "huggingface": {"id": "org/m"}},
        # What `pulumi config set --secret apiKey ...` writes.
        "vllm-serving:apiKey": {"secure": "v1:c2FsdA==:Y2lwaGVydGV4dA=="},
    }}))
    code, stdout, stderr = run_cli("render", str(path))
    assert code == 0 and "kind: Secret" in stdout, stderr


@pytest.mark.parametrize(("key", "value"), [("namespace", "[llm"), ("apiKey", "{not-json")])
def test_a_string_value_starting_with_a_bracket_is_not_taken_for_json(key, value):
    # Refused with a message naming the key, or accepted: never a JSONDecodeError.
    values = {"model": {"deployName": "m", "source": "huggingface", "huggingface": {"id": "org/m"}}, key: value}
    try:
        render_values(values)
    except ConfigError as error:
        assert f"vllm-serving:{key}:" in str(error)  # noqa: PT017 - a refusal is one of two allowed outcomes
