"""The start-up figures vLLM 0.24 writes to its log, read back as numbers.

Standard library only: this module runs on the GPU machine beside vLLM (benchmarks/gpu/device_bench.py)
and in the project's tests on a captured log. Each pattern is the format string of the vLLM 0.24.0
line it reads (file and function named beside it), matched anywhere in a line, so the process
prefix vLLM puts before it ("(EngineCore pid=...) INFO 12-07 19:40:00 [gpu_worker.py:509] ") does
not matter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

_NUMBER = r"([0-9][0-9,]*(?:\.[0-9]+)?)"


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@dataclass
class StartupFigures:
    """What one vLLM start-up logged; None where the line was not in the log."""

    # vllm/model_executor/model_loader/default_loader.py, DefaultModelLoader.load_weights:
    # "Loading weights took %.2f seconds" (reading the checkpoint and copying it to the GPU).
    weights_load_s: float | None = None
    # vllm/v1/worker/gpu_model_runner.py, GPUModelRunner.load_model:
    # "Model loading took %s GiB memory and %.6f seconds" (the model built and its weights loaded).
    model_load_s: float | None = None
    model_load_gib: float | None = None
    # vllm/compilation/backends.py, VllmBackend.__call__: "Dynamo bytecode transform time: %.2f s".
    dynamo_s: float | None = None
    # vllm/compilation/backends.py, CompilerManager.compile: one "Compiling a graph for compile range
    # %s takes %.2f s" per range compiled; "Directly load the compiled graph(s) for compile range %s
    # from the cache, took %.3f s" per range found in the cache.
    compiled_ranges: dict[str, float] = field(default_factory=dict)
    cache_loaded_ranges: dict[str, float] = field(default_factory=dict)
    # vllm/compilation/decorators.py: "Directly load AOT compilation from path %s" when the whole
    # compiled function came from the cache, "saved AOT compiled function to %s" when it was stored.
    aot_loaded: bool = False
    aot_saved: bool = False
    # vllm/compilation/backends.py, VllmBackend.__call__: "Using cache directory: %s for vLLM's
    # torch.compile".
    compile_cache_dir: str | None = None
    # vllm/compilation/monitor.py, monitor_torch_compile: "torch.compile took %.2f s in total" (or
    # "torch.compile and initial profiling/warmup run together took %.2f s in total").
    compile_total_s: float | None = None
    # vllm/compilation/monitor.py, monitor_profiling_run: "Initial profiling/warmup run took %.2f s".
    profiling_run_s: float | None = None
    # vllm/v1/worker/gpu_worker.py, Worker.determine_available_memory:
    # "Available KV cache memory: %s GiB" (rounded to 0.01 GiB by format_gib).
    kv_available_gib: float | None = None
    # The same function, when CUDA graph memory is profiled (the default since v0.21): "... The current
    # --gpu-memory-utilization=%.4f is equivalent to --gpu-memory-utilization=%.4f without CUDA graph
    # memory profiling": their difference times the GPU's memory is the graphs' estimate.
    utilization_set: float | None = None
    utilization_without_graphs: float | None = None
    # vllm/v1/core/kv_cache_utils.py, get_kv_cache_configs: "GPU KV cache size: %s tokens" and
    # "Maximum concurrency for %s tokens per request: %.2fx".
    kv_tokens: int | None = None
    max_model_len: int | None = None
    max_concurrency: float | None = None
    # vllm/v1/worker/gpu_model_runner.py, GPUModelRunner.capture_model:
    # "Graph capturing finished in %.0f secs, took %.2f GiB".
    graph_capture_s: float | None = None
    graph_capture_gib: float | None = None
    # vllm/v1/engine/core.py, EngineCore._initialize_kv_caches: "init engine (profile, create kv
    # cache, warmup model) took %.2f s" with "(compilation: %.2f s)" when it compiled or loaded.
    init_engine_s: float | None = None
    init_engine_compile_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_SIMPLE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("weights_load_s", re.compile(rf"Loading weights took {_NUMBER} seconds")),
    ("dynamo_s", re.compile(rf"Dynamo bytecode transform time: {_NUMBER} s")),
    ("compile_total_s", re.compile(rf"torch\.compile (?:and initial profiling/warmup run together )?took {_NUMBER} s in total")),
    ("profiling_run_s", re.compile(rf"Initial profiling/warmup run took {_NUMBER} s")),
    ("kv_available_gib", re.compile(rf"Available KV cache memory: {_NUMBER} GiB")),
)
_MODEL_LOAD = re.compile(rf"Model loading took {_NUMBER} GiB(?: memory)? and {_NUMBER} seconds")
_COMPILED = re.compile(rf"Compiling a graph for compile range (.+?) takes {_NUMBER} s")
_CACHE_LOADED = re.compile(rf"Directly load the compiled graph\(s\) for compile range (.+?) from the cache, took {_NUMBER} s")
_CACHE_DIR = re.compile(r"Using cache directory: (.+?) for vLLM's torch\.compile")
_EQUIVALENT = re.compile(rf"current --gpu-memory-utilization={_NUMBER} is equivalent to --gpu-memory-utilization={_NUMBER}")
_KV_TOKENS = re.compile(rf"GPU KV cache size: {_NUMBER} tokens")
_CONCURRENCY = re.compile(rf"Maximum concurrency for {_NUMBER} tokens per request: {_NUMBER}x")
_GRAPHS = re.compile(rf"Graph capturing finished in {_NUMBER} secs, took {_NUMBER} GiB")
_AOT_LOADED = re.compile(r"Directly load AOT compilation from path")
_AOT_SAVED = re.compile(r"saved AOT compiled function to")
_INIT = re.compile(rf"init engine \(profile, create kv cache, warmup model\) took {_NUMBER} s(?: \(compilation: {_NUMBER} s)?")


def parse(log: str) -> StartupFigures:
    """The figures of the first start-up in `log` (a later repeat of a line is ignored)."""
    figures = StartupFigures()
    for line in log.splitlines():
        _read_line(figures, line)
    return figures


def _first(figures: StartupFigures, name: str, value: Any) -> None:
    if getattr(figures, name) is None:
        setattr(figures, name, value)


def _pairs(figures: StartupFigures, found: re.Match[str], first: str, second: str) -> None:
    _first(figures, first, _number(found.group(1)))
    _first(figures, second, _number(found.group(2)))


def _kv_tokens(figures: StartupFigures, found: re.Match[str]) -> None:
    _first(figures, "kv_tokens", int(_number(found.group(1))))


def _concurrency(figures: StartupFigures, found: re.Match[str]) -> None:
    _first(figures, "max_model_len", int(_number(found.group(1))))
    _first(figures, "max_concurrency", _number(found.group(2)))


def _init(figures: StartupFigures, found: re.Match[str]) -> None:
    _first(figures, "init_engine_s", _number(found.group(1)))
    if found.group(2) is not None:
        _first(figures, "init_engine_compile_s", _number(found.group(2)))


_READERS: tuple[tuple[re.Pattern[str], Callable[[StartupFigures, re.Match[str]], object]], ...] = (
    (_MODEL_LOAD, lambda f, m: _pairs(f, m, "model_load_gib", "model_load_s")),
    (_COMPILED, lambda f, m: f.compiled_ranges.setdefault(m.group(1).strip(), _number(m.group(2)))),
    (_CACHE_LOADED, lambda f, m: f.cache_loaded_ranges.setdefault(m.group(1).strip(), _number(m.group(2)))),
    (_AOT_LOADED, lambda f, _: setattr(f, "aot_loaded", True)),
    (_AOT_SAVED, lambda f, _: setattr(f, "aot_saved", True)),
    (_CACHE_DIR, lambda f, m: _first(f, "compile_cache_dir", m.group(1))),
    (_EQUIVALENT, lambda f, m: _pairs(f, m, "utilization_set", "utilization_without_graphs")),
    (_KV_TOKENS, _kv_tokens),
    (_CONCURRENCY, _concurrency),
    (_GRAPHS, lambda f, m: _pairs(f, m, "graph_capture_s", "graph_capture_gib")),
    (_INIT, _init),
)


def _read_line(figures: StartupFigures, line: str) -> None:
    for name, pattern in _SIMPLE:
        if found := pattern.search(line):
            _first(figures, name, _number(found.group(1)))
    for pattern, read in _READERS:
        if found := pattern.search(line):
            read(figures, found)
