"""How many bytes a model's checkpoint holds, from the best source at hand.

In order of preference: the `metadata.total_size` of `model.safetensors.index.json` (exact tensor
bytes, no file headers), a declared size (`model.size`), or the sizes of the weight files in a
repository's file list (a few kilobytes of safetensors header per file more than the tensors).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WeightBytes:
    """Bytes of the checkpoint's tensors and where the figure came from."""

    total: int
    source: str

    def __post_init__(self) -> None:
        if self.total <= 0:
            raise ValueError(f"weight bytes must be positive, got {self.total} ({self.source})")

    @classmethod
    def from_safetensors_index(cls, index: Mapping[str, Any], where: str = "model.safetensors.index.json") -> WeightBytes:
        total = index.get("metadata", {}).get("total_size")
        if not isinstance(total, int):
            raise ValueError(f"{where} has no integer metadata.total_size")
        return cls(total, f"{where} metadata.total_size")

    @classmethod
    def declared(cls, total: int, where: str = "model.size") -> WeightBytes:
        return cls(int(total), where)

    @classmethod
    def from_file_list(cls, files: Iterable[Mapping[str, Any]], where: str = "the file list") -> WeightBytes | None:
        """Sum of the weight files vLLM would load; None when a needed size is unknown.

        vLLM loads `*.safetensors` when there are any, else `*.bin`/`*.pt`. Files under a
        subdirectory (`original/`) and Mistral's `consolidated.safetensors` beside sharded
        `model-*` files are other copies of the same weights and are not counted.
        """
        top = [f for f in files if "/" not in str(f.get("path", "")).strip("/")]
        chosen = _weight_files(top)
        if not chosen or any(not isinstance(f.get("size"), int) for f in chosen):
            return None
        names = ", ".join(sorted(str(f["path"]) for f in chosen))
        return cls(sum(int(f["size"]) for f in chosen), f"sizes in {where} ({names})")


def _weight_files(files: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    def suffix(f: Mapping[str, Any]) -> str:
        return posixpath.splitext(str(f["path"]))[1]

    safetensors = [f for f in files if suffix(f) == ".safetensors"]
    if safetensors:
        sharded = [f for f in safetensors if not str(f["path"]).startswith("consolidated")]
        return sharded or safetensors
    return [f for f in files if suffix(f) in (".bin", ".pt")]
