"""The GPU machine's measurements beside the program's predictions for the same stacks.

For each run of benchmarks/gpu_cold_start.py: the fit check (components/fit/) on the stack's config,
once as the program computes it (the GPU table's memory, its default utilization) and once with the
GPU memory the driver reported on the machine and the utilization vLLM used; the runtime reserve
those figures imply (utilization x memory - weights - vLLM's available KV memory); and the cold
start's load term (components/server/cold_start.py) against the seconds to /health.
"""

from __future__ import annotations

from typing import Any

from gpu_cold_start import CHECKPOINTS, stack_config  # benchmarks/ on sys.path, as when gpu_cold_start.py runs

from components.config import parse_config
from components.config.multinode_rules import fit_report, offline_architecture
from components.fit import GpuSpec, check_fit
from components.fit.architecture import Architecture
from components.fit.gpus import GIB
from components.server.cold_start import predict_cold_start

# vLLM 0.24.0's default --gpu-memory-utilization (vllm/config/cache.py, CacheConfig.gpu_memory_utilization).
VLLM_024_DEFAULT_UTILIZATION = 0.92


def _stack_file(run: dict[str, Any]) -> str:
    """The run's stack; a record written before runs carried it is matched by the served model name."""
    if run.get("stack"):
        return str(run["stack"])
    served = next(a.split("=", 1)[1] for a in run["argv"] if a.startswith("--served-model-name="))
    for stack_file, _ in CHECKPOINTS.values():
        if stack_config(stack_file)["config"]["vllm-serving:model"]["deployName"] == served:
            return stack_file
    raise ValueError(f"no benchmark stack serves {served!r}")


def stack_of(run: dict[str, Any]) -> Any:
    stack = stack_config(_stack_file(run), run.get("overrides"))
    raw = {key.split(":", 1)[1]: value for key, value in stack["config"].items()}
    return parse_config(raw)


def utilization_used(run: dict[str, Any]) -> float:
    explicit = next((a.split("=", 1)[1] for a in run["argv"] if a.startswith("--gpu-memory-utilization=")), None)
    return float(explicit) if explicit else VLLM_024_DEFAULT_UTILIZATION


def implied_reserve_bytes(run: dict[str, Any], total_bytes: int) -> float | None:
    """What vLLM kept besides weights and KV cache: u x memory - weights - available KV memory.

    vLLM logs both GiB figures rounded to 0.01 GiB, so this is good to about 0.01 GiB.
    """
    figures = run["log_figures"]
    if figures.get("kv_available_gib") is None or figures.get("model_load_gib") is None:
        return None
    return (utilization_used(run) * total_bytes - figures["model_load_gib"] * GIB
            - figures["kv_available_gib"] * GIB)


def compare_run(run: dict[str, Any], total_bytes: int) -> dict[str, Any]:
    config = stack_of(run)
    architecture = offline_architecture(config)
    assert isinstance(architecture, Architecture), "the benchmark stacks carry model.architecture"
    figures = run["log_figures"]
    program = fit_report(config, architecture)
    measured_gpu = GpuSpec("measured", total_bytes, "torch.cuda.mem_get_info on the GPU machine")
    utilization = utilization_used(run)
    same_inputs = check_fit(architecture, measured_gpu, gpu_memory_utilization=utilization,
                            max_model_len=config.engine.maxModelLen or _max_len(run))
    cold = predict_cold_start(config)
    return {
        "name": run["name"],
        "utilization": utilization,
        "engine_kv_gib": figures.get("kv_available_gib"),
        "engine_tokens": figures.get("kv_tokens"),
        "engine_weights_gib": figures.get("model_load_gib"),
        "program_kv_gib": round(program.kv_room_bytes_per_gpu / GIB, 2),
        "program_tokens": program.tokens,
        "program_utilization": program.gpu_memory_utilization,
        "same_inputs_kv_gib": round(same_inputs.kv_room_bytes_per_gpu / GIB, 2),
        "same_inputs_tokens": same_inputs.tokens,
        "program_weights_gib": round(program.weight_bytes_per_gpu / GIB, 2),
        "implied_reserve_gib": None if (r := implied_reserve_bytes(run, total_bytes)) is None else round(r / GIB, 2),
        "health_s": run.get("health_s"),
        "weights_load_s": figures.get("weights_load_s"),
        "predicted_load_s": None if cold is None else round(cold.load_seconds, 1),
    }


def _max_len(run: dict[str, Any]) -> int | None:
    explicit = next((a.split("=", 1)[1] for a in run["argv"] if a.startswith("--max-model-len=")), None)
    return int(explicit) if explicit else None


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    for result in results:
        total = int(result["gpu"]["total_bytes"])
        lines.append(f"GPU: {result['gpu'].get('name')} {total} bytes ({total / GIB:.2f} GiB) total per the driver")
        header = ("run", "u", "engine KV GiB", "engine tokens", "program KV GiB", "program tokens", "same-input KV GiB",
                  "same-input tokens", "implied reserve GiB", "weights GiB (engine/program)", "health s",
                  "weights load s", "predicted L s (load + 120 s start-up)")
        lines.append(" | ".join(header))
        for run in result["runs"]:
            c = compare_run(run, total)
            lines.append(" | ".join(str(v) for v in (
                c["name"], c["utilization"], c["engine_kv_gib"], c["engine_tokens"], c["program_kv_gib"],
                c["program_tokens"], c["same_inputs_kv_gib"], c["same_inputs_tokens"], c["implied_reserve_gib"],
                f"{c['engine_weights_gib']}/{c['program_weights_gib']}", c["health_s"], c["weights_load_s"],
                c["predicted_load_s"])))
    return "\n".join(lines)
