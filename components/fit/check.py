"""Does a model fit its GPUs? The figures vLLM will meet at startup, computed before anything runs.

For tensor-parallel size T and pipeline-parallel size P (see docs/fit-check.md for the same):

- Layers per stage follow vLLM's `get_pp_indices`: L // P each, the remainder added one by one
  from the second-to-last stage backwards. Stage 0 holds the input embeddings, the last stage
  the lm_head (both, with tied embeddings and P > 1; once, shared, with P = 1).
- Weight bytes per GPU of a stage = (sharded params of its layers + embeddings it holds) / T
  x bytes per param + replicated params of its layers x bytes per param. Embedding and lm_head
  are vocab-parallel (split by T). Bytes per param: the checkpoint's dtype (or `--dtype`); 1 for
  linear layers under `--quantization fp8`; a pre-quantized checkpoint's own. When the
  checkpoint's bytes are known (safetensors index, model.size, file list) the counted split is
  scaled so that the whole checkpoint matches them.
- KV room per GPU = gpu_memory_utilization x GPU memory - weight bytes per GPU - a runtime
  reserve (activations of the profile run, CUDA graphs, NCCL and other non-torch memory;
  3 GiB unless told otherwise, an estimate).
- KV bytes per token per GPU, per stage of l layers:
  standard attention: 2 x l x max(1, kv_heads // T) x head_dim x kv dtype bytes
  (vLLM `get_num_kv_heads`; with kv_heads < T each KV head is replicated on T / kv_heads GPUs);
  MLA (DeepSeek): l x (kv_lora_rank + qk_rope_head_dim) x kv dtype bytes, the same on every
  TP rank (vLLM `MLAAttentionSpec`, one latent "head", no separate V).
- Tokens of context = min over stages of floor(KV room / KV bytes per token); vLLM refuses to
  start when that is below max_model_len (or the model's own maximum when it is unset).

Not modelled: sliding-window layers are counted as full attention (over-estimating their
cache), expert parallelism (same bytes per GPU as TP for the experts), speculative decoding,
LoRA adapters, context parallelism, and vLLM's vocabulary padding (to a multiple of 64).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .architecture import DTYPE_BYTES, Architecture, UnknownArchitecture
from .gpus import GIB, GpuSpec, gib
from .problems import KEY_GPU, KEY_LEN, FitProblem, find_problems

DEFAULT_RUNTIME_RESERVE_BYTES = 3 * GIB
# vLLM's --gpu-memory-utilization default up to 0.33 (vllm/config/cache.py); a stack's fit check
# passes its own release's instead (components/engine: 0.34 resolves an unset one to 1.0).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92
ONLINE_FP8 = frozenset({"fp8"})
KV_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}


@dataclass(frozen=True)
class StageFit:
    """One pipeline stage's figures, per GPU of that stage."""

    stage: int
    layers: int
    weight_bytes: int
    kv_bytes_per_token: int
    kv_room_bytes: int

    @property
    def tokens(self) -> int:
        return max(0, self.kv_room_bytes) // self.kv_bytes_per_token


@dataclass(frozen=True)
class FitReport:
    """The figures of a model on a GPU layout (per GPU; the worst pipeline stage).

    When `skipped` says why there are none, the figures are 0 and there are no problems.
    """

    skipped: str | None = None
    gpu: GpuSpec | None = None
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    runtime_reserve_bytes: int = DEFAULT_RUNTIME_RESERVE_BYTES
    context_length: int | None = None
    context_source: str = ""
    kv_cache_dtype_bytes: int = 2
    weights_source: str = ""
    total_weight_bytes: int = 0
    stages: tuple[StageFit, ...] = ()
    notes: tuple[str, ...] = ()
    found: tuple[FitProblem, ...] = field(default=())

    @property
    def weight_bytes_per_gpu(self) -> int:
        return max((stage.weight_bytes for stage in self.stages), default=0)

    @property
    def kv_room_bytes_per_gpu(self) -> int:
        return min((stage.kv_room_bytes for stage in self.stages), default=0)

    @property
    def kv_bytes_per_token_per_gpu(self) -> int:
        return max((stage.kv_bytes_per_token for stage in self.stages), default=0)

    @property
    def tokens(self) -> int:
        """Tokens of KV cache the deployment holds (every stage must hold them)."""
        return min((stage.tokens for stage in self.stages), default=0)

    @property
    def measured_gpu(self) -> GpuSpec:
        """The GPU of a report that was not skipped (a skipped one may have none)."""
        if self.gpu is None:
            raise ValueError(f"a skipped fit report has no GPU figures: {self.skipped}")
        return self.gpu

    @property
    def usable_bytes_per_gpu(self) -> int:
        return int(self.gpu_memory_utilization * self.measured_gpu.memory_bytes) - self.runtime_reserve_bytes

    def problems(self) -> list[FitProblem]:
        return list(self.found)

    def summary(self) -> str:
        if self.skipped:
            return f"fit check skipped: {self.skipped}"
        context = f"{self.context_length} ({self.context_source})" if self.context_length else "unset"
        return (
            f"fit on {self.tensor_parallel * self.pipeline_parallel} x {self.measured_gpu.name} "
            f"({gib(self.measured_gpu.memory_bytes)}; TP {self.tensor_parallel} x PP {self.pipeline_parallel}): "
            f"weights {gib(self.weight_bytes_per_gpu)} per GPU of {gib(self.total_weight_bytes)} "
            f"({self.weights_source}); KV room {gib(self.kv_room_bytes_per_gpu)} per GPU at "
            f"gpuMemoryUtilization {self.gpu_memory_utilization} after a {gib(self.runtime_reserve_bytes)} "
            f"runtime reserve; {self.kv_bytes_per_token_per_gpu} KV bytes per token per GPU; "
            f"{self.tokens} tokens of KV cache against a context of {context}"
        )


def stage_layer_counts(num_layers: int, pipeline_parallel: int) -> list[int]:
    """Layers per pipeline stage, as vLLM's `get_pp_indices` splits them."""
    counts = [num_layers // pipeline_parallel] * pipeline_parallel
    for i in range(2, num_layers % pipeline_parallel + 2):
        counts[-i] += 1
    return counts


@dataclass(frozen=True)
class _BytesPerParam:
    layers: float
    embeddings: float
    source: str


def _compute_bytes(arch: Architecture, dtype: str | None) -> int:
    name = arch.dtype if dtype in (None, "auto") else dtype
    if name not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {name!r}; known: auto, {', '.join(DTYPE_BYTES)}")
    # vLLM's `--dtype auto` serves a float32 checkpoint in 16 bits.
    return 2 if dtype in (None, "auto") and DTYPE_BYTES[name] == 4 else DTYPE_BYTES[name]


def _bytes_per_param(arch: Architecture, dtype: str | None, quantization: str | None) -> _BytesPerParam:
    compute = _compute_bytes(arch, dtype)
    if arch.checkpoint_quantization:
        layers, how = arch.checkpoint_linear_bytes or compute, f"{arch.checkpoint_quantization} checkpoint"
    elif quantization in ONLINE_FP8:
        layers, how = 1.0, "fp8 linear layers (--quantization fp8)"
    else:
        layers, how = float(compute), f"{compute} bytes per parameter"
    counted = _BytesPerParam(layers, float(compute), f"{arch.loaded_params / 1e9:.1f}B parameters counted, {how}")
    same_as_checkpoint = quantization in (None, arch.checkpoint_quantization) and (
        arch.checkpoint_quantization or compute == DTYPE_BYTES.get(arch.dtype)
    )
    if arch.weight_bytes is None or not same_as_checkpoint:
        return counted
    estimate = _checkpoint_estimate(arch, counted)
    scale = arch.weight_bytes.total / estimate
    return _BytesPerParam(layers * scale, compute * scale, f"{arch.weight_bytes.source}, split by counted parameters")


def _checkpoint_estimate(arch: Architecture, per: _BytesPerParam) -> float:
    embeddings = arch.embedding_params * (1 if arch.tie_word_embeddings else 2)
    layers = arch.checkpoint_params - embeddings
    return layers * per.layers + embeddings * per.embeddings


def _stage_fits(
    arch: Architecture, per: _BytesPerParam, tp: int, pp: int, *, usable: int, kv_bytes: int
) -> tuple[StageFit, ...]:
    stages, start = [], 0
    counts = stage_layer_counts(arch.num_layers, pp)
    for index, count in enumerate(counts):
        layers = arch.layers[start:start + count]
        start += count
        embeddings = arch.embedding_params if index == 0 else 0
        if index == pp - 1 and not (arch.tie_word_embeddings and pp == 1):
            embeddings += arch.embedding_params
        sharded = sum(layer.sharded for layer in layers)
        replicated = sum(layer.replicated for layer in layers)
        if index == pp - 1:
            replicated += arch.hidden_size  # the final norm
        weight = (sharded / tp + replicated) * per.layers + embeddings / tp * per.embeddings
        latent = arch.mla_latent_width
        if latent is not None:
            kv_per_token = count * latent * kv_bytes
        else:
            kv_per_token = 2 * count * max(1, arch.num_kv_heads // tp) * arch.head_dim * kv_bytes
        stages.append(StageFit(index, count, int(weight), kv_per_token, usable - int(weight)))
    return tuple(stages)


def _kv_dtype_bytes(kv_cache_dtype: str | None, compute_bytes: int) -> int:
    if kv_cache_dtype in (None, "auto"):
        return compute_bytes
    if kv_cache_dtype not in KV_DTYPE_BYTES:
        raise ValueError(f"unknown kv_cache_dtype {kv_cache_dtype!r}; known: auto, {', '.join(KV_DTYPE_BYTES)}")
    return KV_DTYPE_BYTES[kv_cache_dtype]


def check_fit(
    architecture: Architecture | UnknownArchitecture,
    gpu: GpuSpec | None,
    tensor_parallel: int = 1,
    pipeline_parallel: int = 1,
    *,
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
    kv_cache_dtype: str | None = None,
    quantization: str | None = None,
    dtype: str | None = None,
    runtime_reserve_bytes: int = DEFAULT_RUNTIME_RESERVE_BYTES,
) -> FitReport:
    """The fit of `architecture` on `tensor_parallel` x `pipeline_parallel` GPUs like `gpu`.

    `gpu_memory_utilization` None means DEFAULT_GPU_MEMORY_UTILIZATION (vLLM's default up to
    0.33; the stack's check passes its release's, components/engine). An `UnknownArchitecture` or a
    missing GPU gives a skipped report (no problems), never a guess. The formulas are in this
    module's docstring and docs/fit-check.md.
    """
    if isinstance(architecture, UnknownArchitecture):
        return FitReport(skipped=f"architecture unknown offline: {architecture.reason}")
    if gpu is None:
        return FitReport(skipped=f"GPU memory unknown: set {KEY_GPU} or server.gpuMemory")
    if tensor_parallel < 1 or pipeline_parallel < 1:
        raise ValueError(f"parallel sizes must be >= 1, got TP {tensor_parallel} and PP {pipeline_parallel}")
    utilization = DEFAULT_GPU_MEMORY_UTILIZATION if gpu_memory_utilization is None else gpu_memory_utilization
    per = _bytes_per_param(architecture, dtype, quantization)
    kv_bytes = _kv_dtype_bytes(kv_cache_dtype, _compute_bytes(architecture, dtype))
    usable = int(utilization * gpu.memory_bytes) - runtime_reserve_bytes
    pp_fits = pipeline_parallel <= architecture.num_layers
    stages = _stage_fits(architecture, per, tensor_parallel, pipeline_parallel if pp_fits else 1,
                         usable=usable, kv_bytes=kv_bytes)
    context, context_source = max_model_len, KEY_LEN
    if context is None:
        context, context_source = architecture.max_context, "the model's maximum; maxModelLen unset"
    report = FitReport(
        gpu=gpu,
        tensor_parallel=tensor_parallel,
        pipeline_parallel=pipeline_parallel,
        gpu_memory_utilization=utilization,
        runtime_reserve_bytes=runtime_reserve_bytes,
        context_length=context,
        context_source=context_source,
        kv_cache_dtype_bytes=kv_bytes,
        weights_source=per.source,
        total_weight_bytes=int(_loaded_bytes(architecture, per)),
        stages=stages,
    )
    problems, notes = find_problems(architecture, report, quantization, max_model_len)
    return replace(report, found=tuple(problems), notes=tuple(notes))


def _loaded_bytes(arch: Architecture, per: _BytesPerParam) -> float:
    embeddings = arch.embedding_params * (1 if arch.tie_word_embeddings else 2)
    return (arch.loaded_params - embeddings) * per.layers + embeddings * per.embeddings
