"""The server's settings beyond the chart: engine settings, LoRA adapters, API key, scheduling knobs."""

from __future__ import annotations

import pytest

from components.config import parse_config
from tests.conftest import HF_MODEL, container, engine_config, env_of, problems, render_values
from vllm_serving.manifests import normalize, to_yaml
from vllm_serving.render import render_config
from vllm_serving.stack_file import STACKS_DIR
from vllm_serving.validate import validate_manifests


def args_of(rendering):
    return container(rendering, "Deployment", "vllm")["args"]


def test_engine_settings_become_vllm_flags():
    engine = {
        "maxModelLen": 8192,
        "gpuMemoryUtilization": 0.9,
        "dtype": "bfloat16",
        "quantization": "awq",
        "kvCacheDtype": "fp8",
        "enablePrefixCaching": True,
        "enableChunkedPrefill": False,
        "maxNumSeqs": 128,
        "trustRemoteCode": True,
    }
    args = args_of(render_values({"model": HF_MODEL, "engine": engine}))
    for flag in (
        "--max-model-len=8192",
        "--gpu-memory-utilization=0.9",
        "--dtype=bfloat16",
        "--quantization=awq",
        "--kv-cache-dtype=fp8",
        "--enable-prefix-caching",
        "--no-enable-chunked-prefill",
        "--max-num-seqs=128",
        "--trust-remote-code",
    ):
        assert flag in args


def test_unset_engine_settings_add_no_flags():
    args = args_of(render_values({"model": HF_MODEL}))
    assert args == [
        "--model=/model",
        "--served-model-name=codellama-7b",
        "--host=0.0.0.0",
        "--port=8000",
        "--tensor-parallel-size=1",
        # Not an engine setting: the drain (server.shutdownTimeoutSeconds), on by default.
        "--shutdown-timeout=300",
        # Nor this: the allow-list in front of every route (components/server/surface.py).
        "--middleware=vllm_serving_surface.SurfaceGuard",
    ]


@pytest.mark.parametrize("value", [0, 1.5, -0.1])
def test_gpu_memory_utilization_must_be_a_share(value):
    found = problems({"model": HF_MODEL, "engine": {"gpuMemoryUtilization": value}})
    assert "engine.gpuMemoryUtilization" in found


def test_pipeline_parallel_splits_the_gpus():
    rendering = render_values({
        "model": HF_MODEL,
        "resources": {"limits": {"nvidia.com/gpu": 4}},
        "engine": {"pipelineParallelSize": 2},
    })
    args = args_of(rendering)
    assert "--tensor-parallel-size=2" in args and "--pipeline-parallel-size=2" in args


def test_tensor_times_pipeline_must_equal_the_gpus():
    raw = {"model": HF_MODEL, "resources": {"limits": {"nvidia.com/gpu": 4}}, "engine": {"tensorParallelSize": 2}}
    found = problems(raw)
    assert found["engine.tensorParallelSize"].startswith("tensor parallel 2 × pipeline parallel 1 = 2, but each pod gets 4 GPUs")


def test_a_flag_both_typed_and_in_extra_args_names_both_keys():
    raw = {"model": HF_MODEL, "engine": {"maxModelLen": 4096}, "server": {"extraArgs": ["--max-model-len=8192"]}}
    found = problems(raw)
    assert found["server.extraArgs[0]"] == (
        "--max-model-len is also set by engine.maxModelLen, the typed key for it; "
        "remove it from server.extraArgs and keep engine.maxModelLen"
    )


def test_an_untyped_flag_in_extra_args_alone_is_fine():
    config = parse_config({"model": HF_MODEL, "server": {"extraArgs": ["--max-model-len=8192"]}})
    assert config.server.extraArgs == ["--max-model-len=8192"]


def test_api_key_on_the_command_line_is_refused():
    found = problems({"model": HF_MODEL, "server": {"extraArgs": ["--api-key=abc"]}})
    assert "apiKey" in found["server.extraArgs[0]"]


LORA = {
    "adapters": [
        {"name": "sql", "source": "huggingface", "huggingface": {"id": "org/sql-lora"}},
        {"name": "chat", "source": "s3", "s3": {"url": "s3://adapters/chat/", "existingSecret": "s3-env"}},
    ],
    "maxLoraRank": 64,
}


def test_lora_adapters_are_downloaded_mounted_and_served_under_their_names():
    rendering = render_values({"model": HF_MODEL, "lora": LORA})
    jobs = rendering.by_kind("Job")
    assert len(jobs) == 3
    args = args_of(rendering)
    assert args[args.index("--lora-modules") + 1 : args.index("--lora-modules") + 3] == ["sql=/adapters/sql", "chat=/adapters/chat"]
    assert "--enable-lora" in args and "--max-lora-rank=64" in args
    deployment = rendering.one("Deployment")
    assert {job.urn for job in jobs} <= set(deployment.dependencies)
    mounts = {m["mountPath"]: m["subPath"] for m in container(rendering, "Deployment", "vllm")["volumeMounts"] if m["name"] == "model"}
    sql_job = next(j for j in jobs if env_of(j.inputs["spec"]["template"]["spec"]["containers"][0]).get("HF_MODEL_ID") == "org/sql-lora")
    sql_env = env_of(sql_job.inputs["spec"]["template"]["spec"]["containers"][0])
    assert sql_env["MODEL_DIR"] == f"/volume/{mounts['/adapters/sql']}"
    assert mounts["/adapters/sql"].startswith("CodeLlama-7b-Instruct-hf/lora/sql/")
    # The directories and fingerprints the guard waits for are its positional arguments.
    awaited = container(rendering, "Deployment", "wait-for-model")["command"][4:]
    assert awaited[0::2] == ["/model", "/adapters/sql", "/adapters/chat"]
    assert awaited[3] == sql_env["SOURCE_FINGERPRINT"]
    assert all(len(job.inputs["metadata"]["name"]) <= 63 for job in jobs)
    assert validate_manifests([normalize(m) for m in rendering.manifests]) == []


def test_lora_adapter_rules():
    lora = {"adapters": [
        {"name": "sql", "source": "huggingface"},
        {"name": "sql", "source": "s3", "s3": {"url": "s3://bucket/p"}},
        {"name": "codellama-7b", "source": "git", "git": {"url": "https://g/x.git"}},
    ]}
    found = problems({"model": HF_MODEL, "lora": lora})
    assert found["lora.adapters[0].huggingface.id"] == 'required when source is "huggingface"'
    assert "used twice" in found["lora.adapters[1].name"]
    assert found["lora.adapters[1].s3.existingSecret"] == 'required when source is "s3"'
    assert "adapter and model names must differ" in found["lora.adapters[2].name"]


def test_lora_adapter_name_must_be_short_and_dns_safe():
    lora = {"adapters": [{"name": "Bad_Name", "source": "git", "git": {"url": "https://g/x.git"}}]}
    found = problems({"model": HF_MODEL, "lora": lora})
    assert "not a valid adapter name" in found["lora.adapters[0].name"]


def test_api_key_from_a_pulumi_secret_is_stored_in_a_secret_never_in_plain_text():
    rendering = render_config(engine_config({"model": HF_MODEL, "apiKey": "sk-very-secret"}), ["vllm-serving:apiKey"])
    secret = rendering.one("Secret")
    assert secret.inputs["metadata"]["name"] == "codellama-7b-api-key"
    assert normalize(secret.inputs)["stringData"] == {"apiKey": "[secret]"}
    assert "sk-very-secret" not in to_yaml(rendering.manifests)
    assert "sk-very-secret" not in str(rendering.outputs)
    server_env = env_of(container(rendering, "Deployment", "vllm"))
    assert server_env["VLLM_API_KEY"] == {"secretKeyRef": {"name": "codellama-7b-api-key", "key": "apiKey"}}
    commands = rendering.outputs["verifyCommands"]
    assert commands[0].startswith("export VLLM_API_KEY=") and "kubectl get secret codellama-7b-api-key" in commands[0]
    assert all('-H "Authorization: Bearer $VLLM_API_KEY"' in command for command in commands[1:])
    # Probes stay on /health, which vLLM leaves open: the key never locks out health checks.
    assert container(rendering, "Deployment", "vllm")["startupProbe"]["httpGet"]["path"] == "/health"


def test_a_plain_api_key_is_refused():
    found = problems({"model": HF_MODEL, "apiKey": "sk-plain"}, secret_keys=set())
    assert "pulumi config set --secret apiKey" in found["apiKey"]


def test_api_key_from_an_existing_secret():
    rendering = render_values({"model": HF_MODEL, "apiKeySecret": {"name": "team-keys", "key": "vllm"}})
    assert not rendering.by_kind("Secret")
    assert env_of(container(rendering, "Deployment", "vllm"))["VLLM_API_KEY"] == {"secretKeyRef": {"name": "team-keys", "key": "vllm"}}


def test_api_key_and_its_secret_together_are_refused():
    found = problems({"model": HF_MODEL, "apiKey": "k", "apiKeySecret": {"name": "s"}}, secret_keys={"apiKey"})
    assert found["apiKeySecret.name"] == "set either apiKey or apiKeySecret, not both"


def test_scheduling_knobs_reach_the_pod():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["h100"]}]}]}}}
    rendering = render_values({
        "model": HF_MODEL,
        "imagePullSecrets": ["registry-cred"],
        "server": {
            "affinity": affinity,
            "runtimeClassName": "nvidia",
            "priorityClassName": "inference-high",
            "serviceAccountName": "vllm",
            "podSecurityContext": {"fsGroup": 2000},
            "securityContext": {"allowPrivilegeEscalation": False},
        },
    })
    pod = normalize(rendering.one("Deployment").inputs["spec"]["template"]["spec"])
    # Beside it, the claim's pod affinity of a ReadWriteOnce volume (tests/test_placement.py).
    assert pod["affinity"]["nodeAffinity"] == affinity["nodeAffinity"]
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["priorityClassName"] == "inference-high"
    assert pod["serviceAccountName"] == "vllm"
    assert pod["securityContext"] == {"fsGroup": 2000}
    assert pod["imagePullSecrets"] == [{"name": "registry-cred"}]
    assert pod["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False}
    job_pod = rendering.one("Job").inputs["spec"]["template"]["spec"]
    assert job_pod["imagePullSecrets"] == [{"name": "registry-cred"}]
    assert validate_manifests([normalize(m) for m in rendering.manifests]) == []


def test_the_chart_example_renders_nothing_new():
    from vllm_serving.render import render

    rendering = render(STACKS_DIR / "Pulumi.codellama-7b.yaml")
    # Two ConfigMaps: the download scripts, and the server's allow-list (components/server/surface.py).
    assert sorted(m["kind"] for m in rendering.manifests) == [
        "ConfigMap", "ConfigMap", "Deployment", "Job", "PersistentVolumeClaim", "Service"
    ]
    pod = rendering.one("Deployment").inputs["spec"]["template"]["spec"]
    for absent in ("runtimeClassName", "priorityClassName", "serviceAccountName", "securityContext", "imagePullSecrets"):
        assert absent not in pod
    # Only the ReadWriteOnce volume's pod affinity (components/storage/placement.py), nothing the user must know of.
    assert list(pod["affinity"]) == ["podAffinity"]
    assert "VLLM_API_KEY" not in env_of(container(rendering, "Deployment", "vllm"))
