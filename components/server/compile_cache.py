"""vLLM's compile cache on a volume, in a directory keyed by everything that invalidates it.

vLLM 0.33 keeps torch.compile's artifacts under VLLM_CACHE_ROOT (default ~/.cache/vllm, or
$XDG_CACHE_HOME/vllm), in `torch_compile_cache/<hash>` (vllm/envs.py, `VLLM_CACHE_ROOT`;
vllm/compilation/backends.py, the cache_dir from env, config, code and compiler hashes). The
server sets VLLM_CACHE_ROOT to CACHE_MOUNT and mounts there, read-write, the directory
`compile-cache/<key>` of the model volume, or of `server.compileCache.existingClaim`. The key
hashes the image, the model's source fingerprint, the tensor and pipeline parallel sizes and the
GPU model, so a change of any of them starts an empty directory instead of loading artifacts
built for something else; vLLM's own hash still guards what it reads within the directory.

The model volume is mounted read-only in the server (a pod volume with `readOnly: true` makes
every mount of it read-only), so the cache is a second pod volume of the same claim without
`readOnly`. A ReadOnlyMany model volume cannot be written at all: the config refuses the cache
there without a claim of its own (components/config/rules.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi_kubernetes as k8s

from ..config import ServingConfig

CACHE_MOUNT = "/vllm-cache"
CACHE_VOLUME = "compile-cache"


@dataclass(frozen=True)
class CompileCache:
    claim_name: Any  # pulumi.Input[str]: the model claim's name is an output of the volume
    sub_path: str

    def env(self) -> list[k8s.core.v1.EnvVarArgs]:
        return [k8s.core.v1.EnvVarArgs(name="VLLM_CACHE_ROOT", value=CACHE_MOUNT)]

    def mounts(self) -> list[k8s.core.v1.VolumeMountArgs]:
        return [k8s.core.v1.VolumeMountArgs(name=CACHE_VOLUME, mount_path=CACHE_MOUNT, sub_path=self.sub_path)]

    def volumes(self) -> list[k8s.core.v1.VolumeArgs]:
        return [k8s.core.v1.VolumeArgs(
            name=CACHE_VOLUME,
            persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=self.claim_name),
        )]


def cache_key(config: ServingConfig) -> str:
    parts = {
        "image": config.image.reference,
        "model": config.model.source_fingerprint if config.model.source else config.model.model_dir,
        "tensorParallelSize": config.tensor_parallel_size,
        "pipelineParallelSize": config.engine.pipelineParallelSize,
        "gpu": config.server.gpu_type,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def compile_cache(config: ServingConfig, model_claim: Any) -> CompileCache | None:
    """Where the server keeps its compile cache; None when the cache is off."""
    cache = config.server.compileCache
    if not cache.enabled:
        return None
    return CompileCache(cache.existingClaim or model_claim, f"compile-cache/{cache_key(config)}")
