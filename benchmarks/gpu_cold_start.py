"""Cold start on a real GPU: vLLM 0.24 started from this program's rendered server argv.

Two halves. This one runs here, in the project's environment:

    .venv/bin/python benchmarks/gpu_cold_start.py prepare DIR   # render the stacks, write DIR/plan.json
    .venv/bin/python benchmarks/gpu_cold_start.py report RESULTS.json [...]   # compare with the program

`prepare` renders each benchmark stack (benchmarks/gpu/stacks/) with `./vllm-serving render`, takes
the Deployment's container command, args and env, and adjusts only what the GPU machine differs in:
`--model` points at the checkpoint's directory there (the volume's subPath under MODELS), `--host`
at 127.0.0.1, and VLLM_CACHE_ROOT at the compile cache's rendered subPath under CACHES (the
directory `compile-cache/<key>` that server.compileCache mounts). Every other flag is the program's.
It copies benchmarks/gpu/device_bench.py and vllm_log.py beside the plan: DIR travels to the GPU
machine, where device_bench.py makes the checkpoints and runs the plan (docs/gpu-cold-start.md has
the calls, the figures and the raw logs).

`report` reads the results the GPU machine wrote and sets them beside what the program predicts
for the same stacks: the fit check's KV room and tokens (components/fit/) and the cold start's
load term (components/server/cold_start.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / "benchmarks" / "gpu"
STACKS = GPU / "stacks"
SURFACE_MODULE = ROOT / "components" / "server" / "vllm_serving_surface.py"
# The allow-list's env names (components/server/surface.py), spelled here: importing the program's
# modules would need Pulumi's runtime for a plain `prepare`.
POLICY_ENV = "VLLM_SERVING_SURFACE"
PYTHONPATH_ENV = "PYTHONPATH"
MODELS = "/root/models"
CACHES = "/root/vllm-cache"
# The allow-list on this machine: the rendered PYTHONPATH names the ConfigMap's mount, which the GPU
# machine has not; device_bench.py puts its own folder there (prepare copies the module beside it) in
# front of the PYTHONPATH that holds the carried vLLM. The drain's markers go to a folder of its own.
BENCH_DIR = "{bench_dir}"
DRAIN_DIR = "/root/drain"
# The key a keyed stack's Secret would hold (benchmark only): the server's env gets it as VLLM_API_KEY,
# and the benchmark's requests send it.
BENCH_KEY = "gpu-bench-key"

# The config.json keys that the fixture (tests/fixtures/model_architectures.yaml) leaves out because the
# fit check does not read them, from the same published config.json files; vLLM needs them to build
# the model (none changes a tensor's shape). bos/eos are the benchmark tokenizer's ids.
CONFIG_EXTRAS: dict[str, dict[str, Any]] = {
    "meta-llama/Llama-3.1-8B-Instruct": {"rope_theta": 500000.0, "rms_norm_eps": 1e-05, "hidden_act": "silu",
                                         "attention_bias": False, "mlp_bias": False, "head_dim": 128},
    "Qwen/Qwen2.5-7B-Instruct": {"rope_theta": 1000000.0, "rms_norm_eps": 1e-06, "hidden_act": "silu",
                                 "max_window_layers": 28},
}

# What the GPU machine adds to the rendered env. Its vLLM is the 0.24.0 wheel without the large
# packages the image also ships (flashinfer's kernels and cubins, tilelang, cutlass-dsl: see
# ../shared/gpu/vllm-0.24-on-device-requirements.txt); 0.24's sampler imports flashinfer unless told
# not to (vllm/v1/sample/ops/topk_topp_sampler.py, flashinfer_sampler_supported), so it samples with
# PyTorch's top-k/top-p here. That touches sampling only: loading, compilation, graphs and KV sizing
# are the image's.
DEVICE_ENV = {"VLLM_USE_FLASHINFER_SAMPLER": "0"}

# The stack each checkpoint is served by, and the fixture model it has the shapes of.
CHECKPOINTS = {
    "Llama-3.1-8B": ("Pulumi.bench-llama-3-1-8b.yaml", "meta-llama/Llama-3.1-8B-Instruct"),
    "Qwen2.5-7B": ("Pulumi.bench-qwen2-5-7b.yaml", "Qwen/Qwen2.5-7B-Instruct"),
}

# The runs, in order. `overrides` is merged into the stack's config before rendering, so a variant's
# argv is still the program's rendering (an explicit utilization is engine.gpuMemoryUtilization).
# drop_page_cache: the load reads the disk, as on a node that never read the weights (every run
# here: the load rate is the disk's, not memory's). fresh_compile_cache: the
# cache directory is emptied first. Every run starts with no compile artefact outside
# VLLM_CACHE_ROOT, as a new pod (device_bench._fresh_pod_caches).
RUNS: list[dict[str, Any]] = [
    {"name": "llama-cold", "checkpoint": "Llama-3.1-8B", "drop_page_cache": True, "fresh_compile_cache": True,
     "disk_probe": True, "budget_s": 200, "notes": "empty compile cache; release default utilization"},
    {"name": "llama-cache", "checkpoint": "Llama-3.1-8B", "drop_page_cache": True, "budget_s": 130,
     "notes": "the same compile cache directory again, as llama-cold left it"},
    {"name": "qwen-cold", "checkpoint": "Qwen2.5-7B", "drop_page_cache": True, "fresh_compile_cache": True,
     "budget_s": 200, "notes": "second architecture: another model, so another cache key (an empty directory)"},
    {"name": "llama-util80", "checkpoint": "Llama-3.1-8B", "overrides": {"engine": {"gpuMemoryUtilization": 0.8}},
     "drop_page_cache": True, "budget_s": 110, "notes": "explicit engine.gpuMemoryUtilization 0.8 (the same cache key)"},
    {"name": "qwen-util80", "checkpoint": "Qwen2.5-7B", "overrides": {"engine": {"gpuMemoryUtilization": 0.8}},
     "drop_page_cache": True, "budget_s": 110, "notes": "explicit engine.gpuMemoryUtilization 0.8 (the same cache key)"},
    # fastsafetensors is one of vLLM 0.24's own requirements (its METADATA's Requires-Dist, no extra),
    # so the image that installs vLLM ships it; runai_streamer and instanttensor are extras.
    {"name": "llama-fastsafetensors", "checkpoint": "Llama-3.1-8B",
     "overrides": {"server": {"extraArgs": ["--max-model-len=16384", "--load-format=fastsafetensors"]}},
     "drop_page_cache": True, "budget_s": 110, "notes": "--load-format=fastsafetensors (server.extraArgs), the same cache key"},
    # Issue 27, 2: one pod of two GPUs, tensor parallel 2 (the GPUs of the pod) and pipeline parallel 2
    # (engine.pipelineParallelSize), for the per-GPU KV cache against the fit check. device_bench
    # skips a run that needs more GPUs than the machine has.
    {"name": "llama-tp2", "checkpoint": "Llama-3.1-8B", "gpus": 2, "fresh_compile_cache": True,
     "overrides": {"resources": {"limits": {"nvidia.com/gpu": 2}}},
     "drop_page_cache": True, "budget_s": 200, "notes": "two GPUs of one pod: tensor parallel 2"},
    {"name": "llama-pp2", "checkpoint": "Llama-3.1-8B", "gpus": 2, "fresh_compile_cache": True,
     "overrides": {"resources": {"limits": {"nvidia.com/gpu": 2}}, "engine": {"pipelineParallelSize": 2}},
     "drop_page_cache": True, "budget_s": 200, "notes": "two GPUs of one pod: pipeline parallel 2"},
]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def stack_config(stack_file: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stack file's config, with `overrides` (keys without the project prefix) merged in."""
    document = yaml.safe_load((STACKS / stack_file).read_text())
    prefixed = {f"vllm-serving:{key}": value for key, value in (overrides or {}).items()}
    return _merge(document, {"config": prefixed})


def render_kind(stack: dict[str, Any], kind: str) -> dict[str, Any]:
    """The stack's one object of `kind`, as `vllm-serving render --kind` writes it."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "Pulumi.bench.yaml"
        path.write_text(yaml.safe_dump(stack))
        rendered = subprocess.run([str(ROOT / "vllm-serving"), "render", str(path), "--kind", kind],
                                  capture_output=True, text=True, cwd=ROOT)
    if rendered.returncode != 0:
        sys.exit(f"render failed:\n{rendered.stderr[-3000:]}")
    return yaml.safe_load(rendered.stdout)


def render_container(stack: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server container and the pod spec of the stack's Deployment, as `render` writes them."""
    pod = render_kind(stack, "Deployment")["spec"]["template"]["spec"]
    return pod["containers"][0], pod


def device_argv(container: dict[str, Any], model_dir: str) -> list[str]:
    """The rendered command and args, with the model's directory and the host this machine uses."""
    def adjusted(arg: str) -> str:
        if arg.startswith("--model="):
            return f"--model={model_dir}"
        if arg.startswith("--host="):
            return "--host=127.0.0.1"
        return arg

    return [*container["command"], *map(adjusted, container["args"])]


def device_env(container: dict[str, Any]) -> dict[str, str]:
    """The rendered env, with what differs on this machine: VLLM_CACHE_ROOT at the cache volume's
    subPath there, the allow-list's module folder (PYTHONPATH) and drain folder there, and the API
    key's Secret reference replaced by the benchmark's key."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif item["name"] == "VLLM_API_KEY" and item.get("valueFrom", {}).get("secretKeyRef"):
            env["VLLM_API_KEY"] = BENCH_KEY
        else:
            raise ValueError(f"the benchmark does not know how to stand in for {item}")
    mounts = {mount["mountPath"]: mount for mount in container.get("volumeMounts", [])}
    if "VLLM_CACHE_ROOT" in env:
        mount = mounts[env["VLLM_CACHE_ROOT"]]
        env["VLLM_CACHE_ROOT"] = f"{CACHES}/{mount['subPath']}"
    if PYTHONPATH_ENV in env:
        env[PYTHONPATH_ENV] = BENCH_DIR
    if POLICY_ENV in env:
        env[POLICY_ENV] = json.dumps({**json.loads(env[POLICY_ENV]), "drainDir": DRAIN_DIR}, sort_keys=True)
    return env


# ---------------------------------------------------------------------------------------------
# The allow-list's cost on the GPU (benchmarks/surface_latency.py is the CPU version): the Llama
# stack with an API key (apiKeySecret, as a stack exposed outside the cluster has), started
# alternately as rendered (guarded) and with the allow-list's --middleware and env removed (plain).
SURFACE_STACK = "Pulumi.bench-llama-3-1-8b.yaml"
SURFACE_OVERRIDES: dict[str, Any] = {"apiKeySecret": {"name": "bench-key"}, "checkSecrets": False}


def surface_variants(argv: list[str], env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The guarded server (as rendered) and the plain one: no --middleware, no allow-list env;
    nothing else changed (vLLM's own key check runs in both)."""
    plain_argv = [arg for arg in argv if not arg.startswith("--middleware=")]
    plain_env = {name: value for name, value in env.items() if name not in (POLICY_ENV, PYTHONPATH_ENV)}
    if plain_argv == argv or plain_env == env:
        raise ValueError("the rendered server has no allow-list to remove")
    return {"guarded": {"argv": argv, "env": env}, "plain": {"argv": plain_argv, "env": plain_env}}


def surface_plan() -> dict[str, Any]:
    stack = stack_config(SURFACE_STACK, SURFACE_OVERRIDES)
    container, _ = render_container(stack)
    variants = surface_variants(device_argv(container, model_dir(container)), device_env(container) | DEVICE_ENV)
    return {"stack": SURFACE_STACK, "overrides": SURFACE_OVERRIDES, "api_key": BENCH_KEY, "variants": variants}


def model_dir(container: dict[str, Any]) -> str:
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/model")
    return f"{MODELS}/{mount['subPath']}"


def fixture_config(model_id: str) -> dict[str, Any]:
    fixtures = yaml.safe_load((ROOT / "tests" / "fixtures" / "model_architectures.yaml").read_text())
    entry = next(m for m in fixtures["models"] if m["id"] == model_id)
    config: dict[str, Any] = {**entry["config"], **CONFIG_EXTRAS[model_id], "bos_token_id": 1, "eos_token_id": 2}
    return config


# Issue 27: the multi-node example's shape on one host of two GPUs. LWS puts LWS_LEADER_ADDRESS and
# LWS_WORKER_INDEX in every container and Kubernetes expands $(NAME) in args from them; here the
# leader is 127.0.0.1 and each process gets its index and one GPU. NCCL and Gloo talk over the
# loopback interface; NVLink multicast stays off, as the GPU machine's notes require.
GROUP_STACK = "Pulumi.bench-llama-3-1-8b-two-nodes.yaml"
GROUP_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1",
             "NCCL_SOCKET_IFNAME": "lo", "GLOO_SOCKET_IFNAME": "lo"}


def render_group(stack: dict[str, Any]) -> list[dict[str, Any]]:
    """The leader's and the worker's server containers of the stack's LeaderWorkerSet."""
    template = render_kind(stack, "LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]
    return [template["leaderTemplate"]["spec"]["containers"][0], template["workerTemplate"]["spec"]["containers"][0]]


def group_process(container: dict[str, Any], index: int) -> dict[str, Any]:
    """One pod of the group as a process: LWS's variables filled in, the model and host adjusted."""
    lws = {"$(LWS_LEADER_ADDRESS)": "127.0.0.1", "$(LWS_WORKER_INDEX)": str(index)}
    filled = {**container, "args": [_fill(arg, lws) for arg in container["args"]]}
    env = device_env(container) | DEVICE_ENV | GROUP_ENV | {"CUDA_VISIBLE_DEVICES": str(index)}
    return {"index": index, "argv": device_argv(filled, model_dir(container)), "env": env}


def _fill(arg: str, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        arg = arg.replace(name, value)
    return arg


def plan() -> dict[str, Any]:
    models, runs = [], []
    for name, (stack_file, model_id) in CHECKPOINTS.items():
        container, _ = render_container(stack_config(stack_file))
        models.append({"name": name, "path": model_dir(container), "config": fixture_config(model_id)})
    for spec in RUNS:
        stack_file, _ = CHECKPOINTS[spec["checkpoint"]]
        container, _ = render_container(stack_config(stack_file, spec.get("overrides")))
        directory = model_dir(container)
        run = {key: value for key, value in spec.items() if key not in ("overrides", "disk_probe")}
        run |= {"stack": stack_file, "overrides": spec.get("overrides", {}),
                "argv": device_argv(container, directory), "env": device_env(container) | DEVICE_ENV}
        if spec.get("disk_probe"):
            run["disk_probe"] = f"{directory}/model-00001.safetensors"
        runs.append(run)
    leader, worker = render_group(stack_config(GROUP_STACK))
    groups = [{"name": "llama-pp2-two-nodes", "stack": GROUP_STACK,
               "processes": [group_process(leader, 0), group_process(worker, 1)]}]
    return {"models": models, "runs": runs, "groups": groups, "surface": surface_plan()}


def prepare(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("device_bench.py", "vllm_log.py"):
        shutil.copy2(GPU / name, out / name)
    shutil.copy2(SURFACE_MODULE, out / SURFACE_MODULE.name)  # on the servers' PYTHONPATH there
    (out / "plan.json").write_text(json.dumps(plan(), indent=1))
    print(f"wrote {out}/plan.json and the device scripts ({sum(p.stat().st_size for p in out.iterdir())} bytes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="render the stacks and write the plan the GPU machine runs")
    prep.add_argument("out", type=Path)
    rep = sub.add_parser("report", help="compare the GPU machine's results with the program's predictions")
    rep.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.out)
    else:
        sys.path.insert(0, str(GPU))
        from compare import report  # the program's modules: imported for the report only

        print(report([json.loads(path.read_text()) for path in args.results]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
