"""What the program creates, read off the rendered resources as a user would see them."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import DEFAULT_GIT_IMAGE, DEFAULT_S3_IMAGE, DEFAULT_VLLM_TAG
from tests.conftest import HF_MODEL, container, env_of, render_values
from vllm_serving.manifests import normalize
from vllm_serving.render import render
from vllm_serving.stack_file import STACKS_DIR
from vllm_serving.validate import validate_manifests

STACK_FILES = sorted(STACKS_DIR.glob("Pulumi.*.yaml"))


def server_args(rendering):
    return container(rendering, "Deployment", "vllm")["args"]


def test_chart_example_renders_the_charts_resources():
    rendering = render(STACKS_DIR / "Pulumi.codellama-7b.yaml")
    kinds = sorted(m["kind"] for m in rendering.manifests)
    # The download scripts' ConfigMap and the server's allow-list (components/server/surface.py).
    assert kinds == ["ConfigMap", "ConfigMap", "Deployment", "Job", "PersistentVolumeClaim", "Service"]

    pvc = normalize(rendering.one("PersistentVolumeClaim").inputs)
    # The chart's 24Gi, raised to hold the two copies of a model change (stacks/Pulumi.codellama-7b.yaml).
    assert pvc["spec"]["resources"]["requests"]["storage"] == "32Gi"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    # The chart's storageClass "" means the cluster default: the field is left out, not set empty.
    assert "storageClassName" not in pvc["spec"]

    download = env_of(container(rendering, "Job", "download"))
    assert download["SOURCE"] == "huggingface"
    assert download["HF_MODEL_ID"] == "codellama/CodeLlama-7b-Instruct-hf"
    # The chart's example proxy is only a comment in the stack: its host does not exist.
    assert "HTTP_PROXY" not in download

    deployment = normalize(rendering.one("Deployment").inputs)
    server = container(rendering, "Deployment", "vllm")
    assert deployment["spec"]["replicas"] == 1
    assert server["resources"]["limits"] == {"cpu": "4", "memory": "64Gi", "nvidia.com/gpu": "1"}
    assert "--served-model-name=codellama-7b" in server["args"]
    assert "--tensor-parallel-size=1" in server["args"]
    assert server["image"] == f"docker.io/vllm/vllm-openai:{DEFAULT_VLLM_TAG}"

    service = normalize(rendering.one("Service").inputs)
    assert service["spec"]["ports"][0]["port"] == 8000
    assert service["spec"]["type"] == "ClusterIP"


def test_outputs_give_the_endpoint_and_how_to_check_it():
    rendering = render_values({"model": HF_MODEL, "namespace": "llm"})
    outputs = rendering.outputs
    assert outputs["endpoint"] == "http://codellama-7b.llm.svc.cluster.local:8000"
    assert outputs["openaiBaseUrl"] == "http://codellama-7b.llm.svc.cluster.local:8000/v1"
    assert outputs["servedModelName"] == "codellama-7b"
    list_models, chat = outputs["verifyCommands"]
    assert list_models == "curl -sS http://codellama-7b.llm.svc.cluster.local:8000/v1/models"
    assert "/v1/chat/completions" in chat and '"model": "codellama-7b"' in chat


def test_served_model_name_is_the_deploy_name_not_a_path():
    args = server_args(render_values({"model": HF_MODEL}))
    assert "--model=/model" in args
    assert "--served-model-name=codellama-7b" in args


def test_tensor_parallel_size_follows_the_gpu_limit():
    rendering = render_values({"model": HF_MODEL, "resources": {"limits": {"nvidia.com/gpu": 4}}})
    assert "--tensor-parallel-size=4" in server_args(rendering)
    assert container(rendering, "Deployment", "vllm")["resources"]["requests"]["nvidia.com/gpu"] == "4"


def test_requests_match_limits():
    server = container(render_values({"model": HF_MODEL}), "Deployment", "vllm")
    assert server["resources"]["requests"] == server["resources"]["limits"]


def test_shared_memory_is_memory_backed():
    rendering = render_values({"model": HF_MODEL, "server": {"shmSizeLimit": "16Gi"}})
    volumes = {v["name"]: v for v in rendering.one("Deployment").inputs["spec"]["template"]["spec"]["volumes"]}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    mounts = {m["name"]: m["mountPath"] for m in container(rendering, "Deployment", "vllm")["volumeMounts"]}
    assert mounts["shm"] == "/dev/shm"


def test_startup_probe_tolerates_the_configured_load_time():
    default = normalize(container(render_values({"model": HF_MODEL}), "Deployment", "vllm"))
    probe = default["startupProbe"]
    assert probe["httpGet"]["path"] == "/health"
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 30 * 60
    longer = normalize(
        container(render_values({"model": HF_MODEL, "server": {"startupTimeoutSeconds": 3600}}), "Deployment", "vllm")
    )
    assert longer["startupProbe"]["periodSeconds"] * longer["startupProbe"]["failureThreshold"] >= 3600
    assert default["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    # Readiness is /health until the drain starts (components/server/vllm_serving_surface.py).
    assert default["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


def test_rollout_and_download_wait_longer_than_pulumi_kubernetes_defaults():
    rendering = render_values({"model": HF_MODEL, "server": {"startupTimeoutSeconds": 3600}})
    deployment_timeout = rendering.one("Deployment").options["customTimeouts"]["create"]
    assert int(deployment_timeout.rstrip("m")) > 60
    assert rendering.one("Job").options["customTimeouts"] == {"create": "240m", "update": "240m"}


def test_rollout_strategy_cannot_wait_for_a_spare_gpu():
    assert render_values({"model": HF_MODEL}).one("Deployment").inputs["spec"]["strategy"] == {"type": "Recreate"}


def test_server_starts_only_after_the_download():
    rendering = render_values({"model": HF_MODEL})
    job, deployment = rendering.one("Job"), rendering.one("Deployment")
    assert job.urn in deployment.dependencies
    fingerprint = env_of(container(rendering, "Job", "download"))["SOURCE_FINGERPRINT"]
    command = container(rendering, "Deployment", "wait-for-model")["command"]
    # The script reads each directory and its fingerprint as positional arguments, never as shell.
    assert command[:2] == ["sh", "-c"] and command[3:] == ["sh", "/model", fingerprint]
    assert '"$1/.vllm-serving-complete"' in command[2]


def test_env_reaches_server_and_download():
    env = [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}, {"name": "HF_ENDPOINT", "value": "https://mirror"}]
    rendering = render_values({"model": HF_MODEL, "env": env})
    for kind, name in (("Deployment", "vllm"), ("Job", "download")):
        values = env_of(container(rendering, kind, name))
        assert values["HTTPS_PROXY"] == "http://proxy:3128"
        assert values["HF_ENDPOINT"] == "https://mirror"


def test_env_value_from_a_secret_passes_through():
    env = [{"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "api", "key": "key"}}}]
    values = env_of(container(render_values({"model": HF_MODEL, "env": env}), "Deployment", "vllm"))
    assert values["VLLM_API_KEY"] == {"secretKeyRef": {"name": "api", "key": "key"}}


def test_huggingface_token_is_read_from_the_secret():
    model = {**HF_MODEL, "huggingface": {**HF_MODEL["huggingface"], "existingSecret": "hf-token", "files": "*.json"}}
    values = env_of(container(render_values({"model": model}), "Job", "download"))
    assert values["HF_TOKEN"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
    assert values["HF_FILES"] == "*.json"


def test_git_source():
    model = {
        "deployName": "qwen",
        "source": "git",
        "git": {"url": "https://git.example/models/qwen.git", "ref": "v1", "existingSecret": "git-token"},
    }
    rendering = render_values({"model": model})
    download = container(rendering, "Job", "download")
    values = env_of(download)
    assert download["image"] == DEFAULT_GIT_IMAGE
    assert values["GIT_URL"] == "https://git.example/models/qwen.git"
    assert values["GIT_REF"] == "v1"
    assert values["GIT_TOKEN"] == {"secretKeyRef": {"name": "git-token", "key": "token"}}
    assert "https://git.example/models/qwen.git" not in str(rendering.one("Deployment").inputs)


def test_s3_source_reads_the_charts_s3_env_secret_keys():
    model = {"deployName": "mistral", "source": "s3", "s3": {"url": "s3://models/mistral/", "existingSecret": "s3-env"}}
    download = container(render_values({"model": model}), "Job", "download")
    values = env_of(download)
    assert download["image"] == DEFAULT_S3_IMAGE
    assert values["S3_URL"] == "s3://models/mistral/"
    assert values["AWS_ACCESS_KEY_ID"]["secretKeyRef"] == {"name": "s3-env", "key": "accessKeyID"}
    assert values["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"] == {"name": "s3-env", "key": "secretAccessKey"}
    assert values["S3_ENDPOINT_URL"]["secretKeyRef"] == {"name": "s3-env", "key": "endpoint", "optional": True}


def test_existing_claim_without_source_mounts_it_and_downloads_nothing():
    model = {"deployName": "llama", "volume": {"existingClaim": "shared", "subPath": "meta/llama"}}
    rendering = render_values({"model": model})
    assert sorted(m["kind"] for m in rendering.manifests) == ["ConfigMap", "Deployment", "Service"]
    pod = rendering.one("Deployment").inputs["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "shared"
    assert "initContainers" not in pod
    mount = container(rendering, "Deployment", "vllm")["volumeMounts"][0]
    assert mount == {"name": "model", "mountPath": "/model", "subPath": "meta/llama", "readOnly": True}


def test_existing_claim_with_source_downloads_into_it():
    model = {**HF_MODEL, "volume": {"existingClaim": "shared", "subPath": "codellama"}}
    rendering = render_values({"model": model})
    assert not rendering.by_kind("PersistentVolumeClaim")
    job_pod = rendering.one("Job").inputs["spec"]["template"]["spec"]
    assert job_pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "shared"


def test_no_token_or_secret_value_is_written_into_any_manifest():
    model = {**HF_MODEL, "huggingface": {**HF_MODEL["huggingface"], "existingSecret": "hf-token"}}
    rendering = render_values({"model": model})
    assert not [m for m in rendering.manifests if m["kind"] == "Secret"]
    for manifest in rendering.manifests:
        for spec in _pod_specs(manifest):
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                for var in c.get("env", []):
                    if "TOKEN" in var["name"] or "SECRET" in var["name"]:
                        assert "value" not in var, var


def _pod_specs(manifest):
    template = manifest.get("spec", {}).get("template")
    return [template["spec"]] if template else []


def test_all_resources_carry_the_standard_labels_and_service_selects_only_this_model():
    rendering = render_values({"model": HF_MODEL})
    for manifest in rendering.manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "codellama-7b"
        assert labels["app.kubernetes.io/part-of"] == "vllm-serving"
        assert labels["app.kubernetes.io/managed-by"] == "pulumi"
    deployment = rendering.one("Deployment").inputs
    selector = rendering.one("Service").inputs["spec"]["selector"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/instance"] == "codellama-7b"
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_zero_replicas_does_not_wait_for_service_endpoints():
    rendering = render_values({"model": HF_MODEL, "replicaCount": 0})
    assert rendering.one("Deployment").inputs["spec"]["replicas"] == 0
    assert rendering.one("Service").inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert "annotations" not in render_values({"model": HF_MODEL}).one("Service").inputs["metadata"]


def test_service_type_and_scheduling_knobs():
    rendering = render_values({
        "model": HF_MODEL,
        "service": {"type": "LoadBalancer"},
        "apiKeySecret": {"name": "llm-api-key"},
        "server": {"nodeSelector": {"gpu": "a100"}, "extraArgs": ["--max-model-len=8192"]},
    })
    assert rendering.one("Service").inputs["spec"]["type"] == "LoadBalancer"
    pod = rendering.one("Deployment").inputs["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"gpu": "a100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert server_args(rendering)[-1] == "--max-model-len=8192"


def test_download_job_is_bounded_and_unprivileged():
    job = normalize(render_values({"model": HF_MODEL}).one("Job").inputs)
    assert job["spec"]["backoffLimit"] == 3
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    download = pod["containers"][0]
    assert download["securityContext"]["allowPrivilegeEscalation"] is False
    assert download["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert download["command"] == ["sh", "/scripts/job.sh"]


def test_download_scripts_ship_unchanged_in_the_config_map():
    from components.storage.download import SCRIPTS_DIR

    config_map = next(
        m.inputs for m in render_values({"model": HF_MODEL}).by_kind("ConfigMap") if "-scripts-" in m.inputs["metadata"]["name"]
    )
    shipped = {p.name: p.read_text() for p in SCRIPTS_DIR.iterdir() if p.suffix in (".sh", ".py")}
    assert config_map["data"] == shipped
    assert "download.sh" in shipped
    assert config_map["immutable"] is True


def test_job_name_changes_with_the_source_and_only_then():
    base = render_values({"model": HF_MODEL}).one("Job").inputs["metadata"]["name"]
    again = render_values({"model": HF_MODEL}).one("Job").inputs["metadata"]["name"]
    other = {**HF_MODEL, "huggingface": {"id": "codellama/CodeLlama-13b-Instruct-hf"}}
    changed = render_values({"model": other}).one("Job").inputs["metadata"]["name"]
    server_only = render_values({"model": HF_MODEL, "server": {"extraArgs": ["--max-model-len=4096"]}})
    assert base == again
    assert changed != base
    assert server_only.one("Job").inputs["metadata"]["name"] == base


def test_pre_openai_images_still_run_the_openai_server_module():
    rendering = render_values({"model": HF_MODEL, "image": {"tag": "v0.3.3"}})
    server = container(rendering, "Deployment", "vllm")
    assert server["image"] == "docker.io/vllm/vllm-openai:v0.3.3"
    assert server["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_every_example_stack_renders_schema_valid_for_every_supported_kubernetes(stack_file: Path):
    rendering = render(stack_file)
    assert rendering.manifests
    assert validate_manifests([normalize(m) for m in rendering.manifests]) == []


def test_schema_validation_catches_a_wrong_type_and_an_unknown_field():
    service = normalize(render_values({"model": HF_MODEL}).one("Service").inputs)
    wrong_type = {**service, "spec": {**service["spec"], "ports": [{"port": "eight thousand"}]}}
    unknown_field = {**service, "spec": {**service["spec"], "sessionAffinityy": "None"}}
    wrong_type_failures = validate_manifests([wrong_type])
    unknown_field_failures = validate_manifests([unknown_field])
    assert len(wrong_type_failures) == 7 and "spec.ports.0.port" in wrong_type_failures[0]
    assert len(unknown_field_failures) == 7 and "sessionAffinityy" in unknown_field_failures[0]


def test_schema_validators_are_built_once_and_judge_as_kubernetes_validate_does():
    import kubernetes_validate

    from vllm_serving import validate

    service = normalize(render_values({"model": HF_MODEL}).one("Service").inputs)
    broken = {**service, "spec": {**service["spec"], "ports": [{"port": "eight thousand"}], "typo": 1}}
    validate._validator.cache_clear()
    for _ in range(3):
        failures = validate_manifests([service, broken], ("1.29.0", "1.35.0"))
    # One validator per (version, kind), reused by every later manifest and call.
    assert validate._validator.cache_info().currsize == 2
    for version, failure in zip(("1.29.0", "1.35.0"), failures, strict=True):
        with pytest.raises(kubernetes_validate.ValidationError) as expected:
            kubernetes_validate.validate(broken, version, strict=True)
        path = ".".join(str(part) for part in expected.value.path)
        assert failure == f"Service/{service['metadata']['name']} (Kubernetes {version}): {path}: {expected.value.message}"
    assert len(failures) == 2
