"""Cold start: the image pre-pull DaemonSet, the compile cache volume and the predicted cold start."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from components.config import parse_config
from components.server.cold_start import cold_start_line, predict_cold_start
from tests.conftest import HF_MODEL, assert_schema_valid, container, env_of, manifest, problems, render_values
from vllm_serving.stack_file import PROJECT_ROOT

GPU_NODES = {"nvidia.com/gpu.present": "true"}
GIT_MODEL = {
    "deployName": "qwen", "size": "15Gi", "volume": {"size": "40Gi"},
    "source": "git", "git": {"url": "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct"},
}


# --- the image pre-pull DaemonSet ------------------------------------------------------------


def test_pre_pull_is_off_by_default():
    assert render_values({"model": HF_MODEL}).by_kind("DaemonSet") == []


def test_pre_pull_pulls_the_server_image_on_the_server_nodes_beside_the_download():
    tolerations = [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
    ]}}}
    rendering = render_values({
        "model": HF_MODEL, "imagePullSecrets": ["regcred"],
        "server": {"prePullImage": True, "nodeSelector": GPU_NODES, "tolerations": tolerations, "affinity": affinity},
    })
    daemon_set = rendering.one("DaemonSet")
    spec = manifest(rendering, "DaemonSet")["spec"]["template"]["spec"]
    server = manifest(rendering, "Deployment")["spec"]["template"]["spec"]
    assert manifest(rendering, "DaemonSet")["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    (pull,) = spec["initContainers"]
    assert (pull["image"], pull["command"]) == (container(rendering, "Deployment", "vllm")["image"], ["true"])
    assert [c["image"] for c in spec["containers"]] == ["registry.k8s.io/pause:3.10"]
    assert all(c["resources"]["requests"] == {"cpu": "1m", "memory": "8Mi"} for c in [pull, *spec["containers"]])
    assert (spec["nodeSelector"], spec["tolerations"], spec["imagePullSecrets"]) == (
        server["nodeSelector"], server["tolerations"], [{"name": "regcred"}]
    )
    # The user's affinity, not the claim's pod affinity: these pods never mount the volume.
    assert spec["affinity"] == affinity and "podAffinity" in server["affinity"]
    assert "vllm-serving/claim" not in manifest(rendering, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    # Created in parallel with the download: it waits for nothing, and the server still waits for the Job.
    assert daemon_set.dependencies == []
    assert rendering.one("Job").urn in rendering.one("Deployment").dependencies
    assert_schema_valid(rendering)


# --- the compile cache -----------------------------------------------------------------------


def cache_rendering(cache: dict[str, Any], **values: Any):
    server = {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"}, "compileCache": {"enabled": True, **cache}}
    return render_values({"model": HF_MODEL, "server": server, **values})


def cache_mount(rendering) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    spec = manifest(rendering, "Deployment")["spec"]["template"]["spec"]
    vllm = next(c for c in spec["containers"] if c["name"] == "vllm")
    (mount,) = [m for m in vllm["volumeMounts"] if m["name"] == "compile-cache"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "compile-cache"]
    return mount, volume, env_of(vllm)


def test_no_compile_cache_by_default():
    spec = manifest(render_values({"model": HF_MODEL}), "Deployment")["spec"]["template"]["spec"]
    # The allow-list's module and its drain markers (components/server/surface.py), no cache.
    assert [v["name"] for v in spec["volumes"]] == ["model", "shm", "surface", "drain"]


def test_the_compile_cache_is_a_writable_keyed_directory_of_the_model_volume_at_vllm_cache_root():
    rendering = cache_rendering({})
    mount, volume, env = cache_mount(rendering)
    assert env["VLLM_CACHE_ROOT"] == mount["mountPath"] == "/vllm-cache"
    assert mount["subPath"].startswith("compile-cache/") and "readOnly" not in mount
    model_volume = next(v for v in manifest(rendering, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "model")
    assert volume["persistentVolumeClaim"] == {"claimName": model_volume["persistentVolumeClaim"]["claimName"]}
    assert model_volume["persistentVolumeClaim"]["readOnly"] is True
    assert_schema_valid(rendering)


@pytest.mark.parametrize("change", [
    {"image": {"tag": "v0.32.0"}},
    {"model": {**HF_MODEL, "huggingface": {"id": "codellama/CodeLlama-7b-hf"}}},
    {"engine": {"pipelineParallelSize": 1, "tensorParallelSize": 1}, "resources": {"limits": {"nvidia.com/gpu": 1}}},
    {"gpu": "NVIDIA-A100-SXM4-80GB"},
])
def test_the_cache_key_changes_with_what_invalidates_the_cache(change):
    base = cache_mount(cache_rendering({}, resources={"limits": {"nvidia.com/gpu": 2}}))[0]["subPath"]
    gpu = change.pop("gpu", None)
    values = {"resources": {"limits": {"nvidia.com/gpu": 2}}, **change}
    changed = cache_mount(cache_rendering({"gpuType": gpu} if gpu else {}, **values))[0]["subPath"]
    assert changed != base
    # And only with that: the same config renders the same key.
    assert cache_mount(cache_rendering({}, resources={"limits": {"nvidia.com/gpu": 2}}))[0]["subPath"] == base


def test_a_cache_claim_of_its_own():
    _, volume, _ = cache_mount(cache_rendering({"existingClaim": "vllm-cache"}))
    assert volume["persistentVolumeClaim"] == {"claimName": "vllm-cache"}


def test_the_cache_needs_a_gpu_type_and_a_writable_volume():
    found = problems({"model": {**HF_MODEL, "volume": {"size": "24Gi", "accessModes": ["ReadOnlyMany"]}},
                      "server": {"compileCache": {"enabled": True}}})
    assert "server.compileCache.gpuType" in found
    assert "ReadOnlyMany" in found["server.compileCache.existingClaim"]


# --- the predicted cold start ----------------------------------------------------------------


def config(model: dict[str, Any], **values: Any):
    return parse_config({"model": model, **values})


def test_a_download_in_the_server_image_pulls_it_first():
    # 32Gi: the two copies of a model change must fit (model.volume.keepPreviousVersions).
    model = {**HF_MODEL, "size": "14Gi", "volume": {**HF_MODEL["volume"], "size": "32Gi"}}
    predicted = predict_cold_start(config(model, download={"assumedBandwidthGBps": 1}))
    weights = 14 * 2**30 / 1e9
    assert predicted is not None and predicted.pull_order == "first"
    assert predicted.seconds == pytest.approx(weights / 1 + 12.0 / 1 + weights / 0.5 + 120)


def test_pre_pull_overlaps_the_pull_with_another_image_s_download():
    weights = 15 * 2**30 / 1e9
    after = predict_cold_start(config(GIT_MODEL))
    overlapped = predict_cold_start(config(GIT_MODEL, server={"prePullImage": True, "imageSizeGB": 20}))
    assert after is not None and overlapped is not None
    assert after.seconds == pytest.approx(weights / 0.5 + 12.0 / 0.5 + weights / 0.5 + 120)
    assert overlapped.seconds == pytest.approx(max(weights / 0.5, 20 / 0.5) + weights / 0.5 + 120)


def test_without_a_size_there_is_no_prediction():
    assert cold_start_line(config(HF_MODEL)) == "predicted cold start: unknown (set model.size to predict it)"


def test_render_prints_the_prediction_on_stderr(tmp_path):
    stack = tmp_path / "Pulumi.git.yaml"
    stack.write_text(
        "config:\n  vllm-serving:model:\n    deployName: qwen\n    size: 15Gi\n    volume: {size: 40Gi}\n"
        "    source: git\n    git: {url: 'https://huggingface.co/Qwen/Qwen2.5-7B-Instruct'}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "vllm_serving", "render", str(stack)], cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("predicted cold start: ")]
    assert line.startswith("predicted cold start: 3.5 min = download 0.5 min, image pull 0.4 min (after the download")
