"""GPU memory: a typed figure, or a table of common GPUs keyed by a type name.

The table holds each vendor's published capacity, read as binary gigabytes (the HBM or GDDR
on the board). What the driver reports as usable is a little less (an H100 80GB shows about
79.6 GiB; GDDR boards with ECC on, such as the L4, about 22.5 GiB of 24); the fit check's
runtime reserve (see `check.py`) absorbs that gap. Where the exact figure matters, give the
memory in bytes instead of a type name.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1 << 30


def gib(value: float) -> str:
    """Bytes as GiB with one decimal, the unit of every message."""
    return f"{value / GIB:.1f} GiB"


@dataclass(frozen=True)
class GpuSpec:
    """One GPU's memory in bytes, its name, and where the figure comes from."""

    name: str
    memory_bytes: int
    source: str

    def __post_init__(self) -> None:
        if self.memory_bytes <= 0:
            raise ValueError(f"GPU memory must be positive, got {self.memory_bytes}")

    @classmethod
    def with_memory(cls, memory_bytes: int, name: str = "GPU") -> GpuSpec:
        return cls(name, int(memory_bytes), "server.gpuMemory")


def _table_entry(name: str, gigabytes: int, source: str) -> GpuSpec:
    return GpuSpec(name, gigabytes * GIB, source)


GPU_TABLE: dict[str, GpuSpec] = {
    spec.name: spec
    for spec in (
        _table_entry("H100-80GB", 80, "NVIDIA H100 datasheet, SXM/PCIe: 80 GB HBM3 (nvidia.com/en-us/data-center/h100)"),
        _table_entry("H100-94GB", 94, "NVIDIA H100 datasheet, H100 NVL: 94 GB HBM3 (nvidia.com/en-us/data-center/h100)"),
        _table_entry("H200", 141, "NVIDIA H200 datasheet: 141 GB HBM3e (nvidia.com/en-us/data-center/h200)"),
        _table_entry("A100-80GB", 80, "NVIDIA A100 datasheet: 80 GB HBM2e (nvidia.com/en-us/data-center/a100)"),
        _table_entry("A100-40GB", 40, "NVIDIA A100 datasheet: 40 GB HBM2 (nvidia.com/en-us/data-center/a100)"),
        _table_entry("B200", 180, "NVIDIA DGX B200: 1,440 GB HBM3e over 8 GPUs (nvidia.com/en-us/data-center/dgx-b200)"),
        _table_entry("L40S", 48, "NVIDIA L40S datasheet: 48 GB GDDR6 with ECC (nvidia.com/en-us/data-center/l40s)"),
        _table_entry("L4", 24, "NVIDIA L4 datasheet: 24 GB GDDR6 (nvidia.com/en-us/data-center/l4)"),
        _table_entry("A10G", 24, "AWS EC2 G5 instances: NVIDIA A10G with 24 GB per GPU (aws.amazon.com/ec2/instance-types/g5)"),
        _table_entry("MI300X", 192, "AMD Instinct MI300X datasheet: 192 GB HBM3 (amd.com/en/products/accelerators/instinct/mi300/mi300x.html)"),
    )
}


def gpu_spec(gpu_type: str | None = None, memory_bytes: int | None = None) -> GpuSpec | None:
    """The GPU for a `server.gpuType` name or a `server.gpuMemory` figure (the figure wins).

    None when neither is given. An unknown type name raises ValueError listing the known ones.
    """
    if memory_bytes is not None:
        return GpuSpec.with_memory(memory_bytes, gpu_type or "GPU")
    if gpu_type is None:
        return None
    spec = GPU_TABLE.get(gpu_type)
    if spec is None:
        known = ", ".join(GPU_TABLE)
        raise ValueError(f"unknown GPU type {gpu_type!r}; known types: {known}; or give its memory in bytes")
    return spec
