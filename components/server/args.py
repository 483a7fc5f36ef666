"""The `vllm serve` command line, derived from typed config only.

Every flag here comes from one key; config/rules.py refuses the same flag in server.extraArgs.
"""

from __future__ import annotations

from ..config import EngineConfig, LoraConfig, ServingConfig
from ..engine import engine_profile, release_of
from ..labels import MODEL_MOUNT, SERVER_PORT
from .surface import MIDDLEWARE_ARG

ADAPTERS_MOUNT = "/adapters"
# routing.runtimeLora: the volume's lora-runtime/ directory, where vLLM's filesystem resolver
# finds an adapter a request names (vllm/plugins/lora_resolvers/filesystem_resolver.py).
RUNTIME_LORA_MOUNT = "/lora-runtime"
# The first vLLM release with --shutdown-timeout (vllm-project/vllm#34730, #36666): older servers
# refuse the flag, and abort in-flight requests on SIGTERM whatever the pod's grace period.
SHUTDOWN_TIMEOUT_SINCE = (0, 18, 0)


def has_shutdown_timeout(config: ServingConfig) -> bool:
    """Whether the image's vLLM takes --shutdown-timeout: a release older than the first with it
    does not (the chart's v0.3.3); otherwise its engine profile says (a tag that names no release
    gets the newest profile's answer)."""
    release = release_of(config.server.engineVersion or config.image.tag)
    if release is not None and release < SHUTDOWN_TIMEOUT_SINCE:
        return False
    return "--shutdown-timeout" in engine_profile(config).options


def _shutdown_args(config: ServingConfig) -> list[str]:
    seconds = config.server.shutdownTimeoutSeconds
    if seconds == 0 or not has_shutdown_timeout(config):
        return []  # vLLM's default: abort in-flight requests on SIGTERM
    return [f"--shutdown-timeout={seconds}"]


def _engine_args(engine: EngineConfig) -> list[str]:
    args = []
    valued = (
        ("--max-model-len", engine.maxModelLen),
        ("--gpu-memory-utilization", engine.gpuMemoryUtilization),
        ("--dtype", engine.dtype),
        ("--quantization", engine.quantization),
        ("--kv-cache-dtype", engine.kvCacheDtype),
        ("--max-num-seqs", engine.maxNumSeqs),
    )
    args += [f"{flag}={value:g}" if isinstance(value, float) else f"{flag}={value}" for flag, value in valued if value is not None]
    # Tri-state: unset leaves vLLM's default, which has changed between releases.
    for flag, value in (("prefix-caching", engine.enablePrefixCaching), ("chunked-prefill", engine.enableChunkedPrefill)):
        if value is not None:
            args.append(f"--enable-{flag}" if value else f"--no-enable-{flag}")
    if engine.trustRemoteCode:
        args.append("--trust-remote-code")
    return args


def _pipeline_args(config: ServingConfig) -> list[str]:
    pipeline = config.pipeline_parallel_size
    return [f"--pipeline-parallel-size={pipeline}"] if pipeline > 1 else []


def adapter_mount(name: str) -> str:
    return f"{ADAPTERS_MOUNT}/{name}"


def _lora_args(lora: LoraConfig, runtime: bool) -> list[str]:
    if not lora.adapters and not runtime:
        return []
    # Each adapter is listed in /v1/models under its own name, next to the base model; adapters
    # loaded at runtime need LoRA on even when none is listed.
    modules = [f"{adapter.name}={adapter_mount(adapter.name)}" for adapter in lora.adapters]
    args = ["--enable-lora", *(["--lora-modules", *modules] if modules else [])]
    if lora.maxLoraRank is not None:
        args.append(f"--max-lora-rank={lora.maxLoraRank}")
    if lora.maxLoras is not None:
        args.append(f"--max-loras={lora.maxLoras}")
    return args


def server_args(config: ServingConfig) -> list[str]:
    return [
        f"--model={MODEL_MOUNT}",
        # Without it, /v1/models would list the model under its directory path.
        f"--served-model-name={config.model.deployName}",
        "--host=0.0.0.0",
        f"--port={SERVER_PORT}",
        f"--tensor-parallel-size={config.tensor_parallel_size}",
        *_engine_args(config.engine),
        *_pipeline_args(config),
        *_lora_args(config.lora, config.routing.runtimeLora.enabled),
        *_shutdown_args(config),
        # The allow-list in front of every route (surface.py); a headless worker never imports it.
        MIDDLEWARE_ARG,
        *config.server.extraArgs,
    ]
