"""The fit check: does a model's architecture fit the GPUs of a layout? Pure, no Pulumi.

    arch = read_architecture(config_json, WeightBytes.from_safetensors_index(index_json))
    report = check_fit(arch, gpu_spec("H100-80GB"), tensor_parallel=8, pipeline_parallel=2,
                       gpu_memory_utilization=0.9, max_model_len=32768)
    for problem in report.problems(): print(problem)   # "engine.maxModelLen: ..."

The formulas are in `check.py`'s docstring and docs/fit-check.md.
"""

from .architecture import Architecture, LayerParams, UnknownArchitecture, read_architecture
from .check import DEFAULT_RUNTIME_RESERVE_BYTES, FitReport, StageFit, check_fit, stage_layer_counts
from .gpus import GIB, GPU_TABLE, GpuSpec, gpu_spec
from .problems import FitProblem
from .weights import WeightBytes

__all__ = [
    "DEFAULT_RUNTIME_RESERVE_BYTES",
    "GIB",
    "GPU_TABLE",
    "Architecture",
    "FitProblem",
    "FitReport",
    "GpuSpec",
    "LayerParams",
    "StageFit",
    "UnknownArchitecture",
    "WeightBytes",
    "check_fit",
    "gpu_spec",
    "read_architecture",
    "stage_layer_counts",
]
