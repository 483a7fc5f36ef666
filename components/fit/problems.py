"""The messages of the fit check: what will not load, with the numbers and what to change."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .architecture import Architecture
from .gpus import gib

if TYPE_CHECKING:
    from .check import FitReport

KEY_TP = "engine.tensorParallelSize"
KEY_PP = "engine.pipelineParallelSize"
KEY_LEN = "engine.maxModelLen"
KEY_QUANT = "engine.quantization"
KEY_UTIL = "engine.gpuMemoryUtilization"
KEY_GPU = "server.gpuType"
GPUS_PER_NODE = 8  # the usual node; the layout suggestion splits past it into nodes


@dataclass(frozen=True)
class FitProblem:
    """A reason the model will not load, naming the config key to change."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def gpus_needed(total_bytes: float, usable_per_gpu: int) -> int:
    """The smallest power of two of GPUs whose usable memory holds `total_bytes` of weights."""
    if usable_per_gpu <= 0:
        return 0
    return 1 << max(0, math.ceil(math.log2(max(1.0, total_bytes / usable_per_gpu))))


def layout(gpus: int) -> str:
    """A TP x PP layout for `gpus` GPUs: TP within a node, PP across nodes."""
    if gpus <= GPUS_PER_NODE:
        return f"{KEY_TP} {gpus}"
    nodes = math.ceil(gpus / GPUS_PER_NODE)
    return f"{KEY_TP} {GPUS_PER_NODE} x {KEY_PP} {nodes} (server.nodes {nodes} of {GPUS_PER_NODE} GPUs)"


def parallel_problems(arch: Architecture, tp: int, pp: int) -> tuple[list[FitProblem], list[str]]:
    """Attention heads and KV heads against TP (vLLM's checks), layers against PP."""
    problems, notes = [], []
    heads, kv = arch.num_attention_heads, arch.num_kv_heads
    if heads % tp:
        fits = [d for d in range(1, heads + 1) if heads % d == 0 and d <= max(tp, GPUS_PER_NODE)]
        problems.append(FitProblem(KEY_TP, (
            f"the model has {heads} attention heads, which do not divide by tensor-parallel size {tp} "
            f"(vLLM: 'Total number of attention heads ({heads}) must be divisible by tensor parallel "
            f"size ({tp})'); use one of {', '.join(map(str, fits))}, and pipeline parallelism for more GPUs")))
    if arch.uses_mla:
        notes.append("MLA: the latent KV cache is not split by tensor parallelism; every TP rank holds it whole")
    elif kv >= tp and kv % tp:
        problems.append(FitProblem(KEY_TP, (
            f"the model has {kv} KV heads, which do not divide by tensor-parallel size {tp}; "
            f"use a size that divides {kv} or a multiple of it")))
    elif kv < tp and tp % kv:
        problems.append(FitProblem(KEY_TP, (
            f"tensor-parallel size {tp} exceeds the model's {kv} KV heads and is not a multiple of them; "
            f"vLLM replicates KV heads only by a whole factor (QKVParallelLinear divides {tp} by {kv})")))
    elif kv < tp:
        notes.append(f"{kv} KV heads on {tp} TP ranks: vLLM replicates each KV head on {tp // kv} GPUs, "
                     "so the KV cache per GPU does not shrink past TP = KV heads")
    if pp > arch.num_layers:
        problems.append(FitProblem(KEY_PP, (
            f"pipeline-parallel size {pp} exceeds the model's {arch.num_layers} layers; "
            f"use at most {arch.num_layers}")))
    return problems, notes


def quantization_problem(arch: Architecture, quantization: str | None) -> FitProblem | None:
    """An online method vLLM cannot apply to this checkpoint."""
    if quantization is None or quantization == arch.checkpoint_quantization:
        return None
    if arch.checkpoint_quantization:
        return FitProblem(KEY_QUANT, (
            f"the checkpoint is already quantized with {arch.checkpoint_quantization}; "
            f"{quantization!r} does not apply to it: leave {KEY_QUANT} unset"))
    if quantization == "fp8":
        return None
    return FitProblem(KEY_QUANT, (
        f"{quantization!r} needs a checkpoint quantized with it, and this one is {arch.dtype}; "
        f"use a {quantization} checkpoint, or fp8, which vLLM applies online to a 16-bit checkpoint"))


def weight_problem(arch: Architecture, report: FitReport, quantization: str | None) -> FitProblem | None:
    usable = report.usable_bytes_per_gpu
    per_gpu = report.weight_bytes_per_gpu
    if per_gpu <= usable:
        return None
    total_gpus = report.tensor_parallel * report.pipeline_parallel
    needed = gpus_needed(report.total_weight_bytes, usable)
    if needed and needed <= total_gpus:  # the split is uneven (replicated tensors, a heavy stage)
        needed = 2 * total_gpus
    more = f"at least {needed} GPUs of this type for the weights alone, e.g. {layout(needed)}" if needed else (
        "a GPU with more memory")
    fp8 = ""
    if quantization is None and not arch.checkpoint_quantization:
        fp8 = f"; or {KEY_QUANT} fp8, which about halves the weights (to roughly {gib(per_gpu / 2)} per GPU)"
    return FitProblem(KEY_TP, (
        f"the weights take {gib(per_gpu)} per GPU ({gib(report.total_weight_bytes)} over {total_gpus} GPUs, "
        f"TP {report.tensor_parallel} x PP {report.pipeline_parallel}), more than the {gib(usable)} usable on a "
        f"{report.measured_gpu.name} ({gib(report.measured_gpu.memory_bytes)} x gpuMemoryUtilization "
        f"{report.gpu_memory_utilization} - {gib(report.runtime_reserve_bytes)} runtime reserve); "
        f"use {more}{fp8}"))


def context_problem(report: FitReport) -> FitProblem | None:
    """The KV cache must hold one sequence of the context length, or vLLM refuses to start."""
    context, tokens = report.context_length, report.tokens
    if context is None or tokens >= context:
        return None
    per_token = report.kv_bytes_per_token_per_gpu
    lower = (tokens // 1024) * 1024
    options = [f"lower {KEY_LEN} to {lower} or less" if lower else "use a GPU with more memory"]
    if report.gpu_memory_utilization < 0.95:
        options.append(f"raise {KEY_UTIL} from {report.gpu_memory_utilization} (up to 0.95 on a dedicated GPU)")
    if report.kv_cache_dtype_bytes > 1:
        options.append(f"set engine.kvCacheDtype fp8, which holds about {tokens * report.kv_cache_dtype_bytes} tokens")
    options.append(f"use more GPUs ({KEY_TP} or {KEY_PP} x2 roughly doubles the room and halves the bytes per token)")
    return FitProblem(KEY_LEN, (
        f"the KV cache holds {tokens} tokens, fewer than the context of {context} ({report.context_source}), "
        f"which needs {gib(context * per_token)} per GPU at {per_token} bytes per token per GPU; "
        f"the room is {gib(max(0, report.kv_room_bytes_per_gpu))} per GPU after {gib(report.weight_bytes_per_gpu)} "
        f"of weights; vLLM refuses to start. To fix: " + ", or ".join(options)))


def find_problems(
    arch: Architecture, report: FitReport, quantization: str | None, max_model_len: int | None
) -> tuple[list[FitProblem], list[str]]:
    """Every problem of `report`, in the order a user would fix them, and explanatory notes."""
    problems, notes = parallel_problems(arch, report.tensor_parallel, report.pipeline_parallel)
    quant = quantization_problem(arch, quantization)
    if quant:
        problems.append(quant)
    if max_model_len is not None and arch.max_context is not None and max_model_len > arch.max_context:
        problems.append(FitProblem(KEY_LEN, (
            f"{max_model_len} exceeds the model's maximum context of {arch.max_context} (config.json); "
            f"vLLM refuses it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1; use {arch.max_context} or less")))
    weights = weight_problem(arch, report, quantization)
    if weights:
        problems.append(weights)
    else:
        context = context_problem(report)
        if context:
            problems.append(context)
    if arch.sliding_window:
        notes.append(f"sliding window of {arch.sliding_window} tokens counted as full attention "
                     "(an over-estimate of its KV cache)")
    return problems, notes
