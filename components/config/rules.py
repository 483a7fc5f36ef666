"""Rules across keys: what pydantic's per-field checks cannot see.

Each rule returns problems as (key path, message, the keys the rule reads); the keys read
let parse_config skip a rule whose input was itself broken. Order here is the order users
see the problems in.
"""

from __future__ import annotations

from typing import Callable

from .fields import is_dns1123_label, is_http_url, quantity_bytes
from .server import ENGINE_FLAGS
from .stack import ServingConfig

Problem = tuple[str, str, set[str]]

# CUDA context, graph capture and compilation come on top of reading the weights.
STARTUP_OVERHEAD_SECONDS = 120

# vLLM flags this program always derives from config, so that the two can never disagree.
PROGRAM_SET_FLAGS = {
    "--model": "model.volume (the model is mounted at /model)",
    "--served-model-name": "model.deployName",
    "--port": "the Service's port 8000",
    "--host": "the pod network (0.0.0.0)",
    # On the command line the key would be in plain text in the manifest and in Pulumi's state.
    "--api-key": "apiKey (a Pulumi secret) or apiKeySecret",
}


def _model_source(config: ServingConfig) -> list[Problem]:
    model = config.model
    source = model.download_source
    if source is None:
        if model.volume.existingClaim:
            return []
        return [(
            "model.volume.existingClaim",
            'required when model.source is "" (no download): name the claim that holds the model, '
            "or set model.source to huggingface, git or s3",
            {"model.source", "model.volume.existingClaim"},
        )]
    problems = []
    for key, value in source.required():
        path = f"model.{source.kind}.{key}"
        if not value.strip():
            problems.append((path, f'required when model.source is "{model.source}"', {path, "model.source"}))
    bad_url = source.url_problem()
    if bad_url:
        path = f"model.{source.kind}.{bad_url[0]}"
        problems.append((path, bad_url[1], {path}))
    return problems


def _replicas_share_the_volume(config: ServingConfig) -> list[Problem]:
    volume = config.model.volume
    if config.replicaCount <= 1 or not volume.single_node:
        return []
    return [(
        "replicaCount",
        f"{config.replicaCount} replicas cannot share a {volume.accessModes[0]} model volume: pods scheduled on "
        "other nodes could not mount it and would stay Pending. Use 1 replica, or a volume with "
        "ReadWriteMany or ReadOnlyMany in model.volume.accessModes",
        {"replicaCount", "model.volume.accessModes"},
    )]


def _model_size(config: ServingConfig) -> list[Problem]:
    model, server = config.model, config.server
    if not model.size:
        return []
    problems = []
    size = quantity_bytes(model.size)
    if not model.volume.existingClaim and size > quantity_bytes(model.volume.size):
        problems.append((
            "model.size",
            f"{model.size} of weights do not fit model.volume.size {model.volume.size}",
            {"model.size", "model.volume.size", "model.volume.existingClaim"},
        ))
    needed = size / 1e9 / server.assumedLoadRateGBps + STARTUP_OVERHEAD_SECONDS
    if needed > server.startupTimeoutSeconds:
        problems.append((
            "server.startupTimeoutSeconds",
            f"{server.startupTimeoutSeconds} s is too short to load {model.size} ({size / 1e9:.1f} GB) at "
            f"{server.assumedLoadRateGBps:g} GB/s (server.assumedLoadRateGBps): that needs about "
            f"{needed:.0f} s ({needed / 60:.0f} min) with {STARTUP_OVERHEAD_SECONDS} s of start-up; "
            "raise startupTimeoutSeconds, or the assumed rate if your storage is faster",
            {"server.startupTimeoutSeconds", "server.assumedLoadRateGBps", "model.size"},
        ))
    return problems


def canonical_flag(argument: str) -> str:
    """vLLM's parser reads --tensor_parallel_size as --tensor-parallel-size; so must the checks."""
    flag = argument.split("=", 1)[0]
    return "--" + flag[2:].replace("_", "-") if flag.startswith("--") else flag


def _typed_keys_set(config: ServingConfig) -> set[str]:
    """Typed keys that put a flag on the command line."""
    keys = {f"engine.{name}" for name, value in config.engine if value not in (None, False)}
    if config.engine.pipelineParallelSize == 1:
        keys.discard("engine.pipelineParallelSize")
    keys.add("engine.tensorParallelSize")  # always on the command line, from the GPUs by default
    if config.lora.adapters:
        keys.add("lora.adapters")
    keys |= {f"lora.{name}" for name in ("maxLoraRank", "maxLoras") if getattr(config.lora, name) is not None}
    return keys


def _extra_args(config: ServingConfig) -> list[Problem]:
    problems = []
    typed = _typed_keys_set(config)
    for index, argument in enumerate(config.server.extraArgs):
        flag = canonical_flag(argument)
        path = f"server.extraArgs.{index}"
        if flag in PROGRAM_SET_FLAGS:
            message = f"{flag} is set by this program from {PROGRAM_SET_FLAGS[flag]}; set it there instead"
            problems.append((path, message, {"server.extraArgs"}))
        elif ENGINE_FLAGS.get(flag) in typed:
            key = ENGINE_FLAGS[flag]
            message = f"{flag} is also given by {key}; set it in one place (the typed key)"
            problems.append((path, message, {"server.extraArgs", key.split(" ")[0]}))
    return problems


def _parallelism_uses_every_gpu(config: ServingConfig) -> list[Problem]:
    engine, gpus = config.engine, config.resources.limits.gpu
    tensor, pipeline = config.tensor_parallel_size, engine.pipelineParallelSize
    if tensor * pipeline == gpus:
        return []
    return [(
        "engine.tensorParallelSize" if engine.tensorParallelSize else "engine.pipelineParallelSize",
        f"tensor parallel {tensor} × pipeline parallel {pipeline} = {tensor * pipeline}, but each pod gets "
        f'{gpus} GPUs (resources.limits."nvidia.com/gpu"); the product must equal the GPUs',
        {"engine", "resources.limits"},
    )]


def _adapters(config: ServingConfig) -> list[Problem]:
    problems = []
    names = [adapter.name for adapter in config.lora.adapters]
    for index, adapter in enumerate(config.lora.adapters):
        path = f"lora.adapters.{index}"
        if names.count(adapter.name) > 1 or adapter.name == config.model.deployName:
            problems.append((f"{path}.name", f"{adapter.name!r} is used twice (adapter and model names must differ)", {path}))
        source = adapter.download_source
        for key, value in source.required() if source else []:
            if not value.strip():
                problems.append((f"{path}.{adapter.source}.{key}", f'required when source is "{adapter.source}"', {path}))
    return problems


def _api_key(config: ServingConfig) -> list[Problem]:
    problems = []
    if config.apiKey is not None or config.apiKeySecret.name:
        for index, var in enumerate(config.env):
            if var.name == "VLLM_API_KEY":
                problems.append((f"env.{index}", "VLLM_API_KEY comes from apiKey / apiKeySecret; set it there only", {"env"}))
    if config.apiKey is not None and config.apiKeySecret.name:
        problems.append(("apiKeySecret.name", "set either apiKey or apiKeySecret, not both", {"apiKey", "apiKeySecret"}))
    return problems


def _exposure(config: ServingConfig) -> list[Problem]:
    problems = []
    if config.ingress.enabled and not config.ingress.host:
        problems.append(("ingress.host", "required when ingress.enabled is true", {"ingress"}))
    if config.httpRoute.enabled and not config.httpRoute.parentRefs:
        problems.append(("httpRoute.parentRefs", "name at least one Gateway when httpRoute.enabled is true", {"httpRoute"}))
    return problems


def _autoscaling(config: ServingConfig) -> list[Problem]:
    scaling = config.autoscaling
    if not scaling.enabled:
        return []
    problems = []
    if not is_http_url(scaling.prometheusAddress):
        problems.append((
            "autoscaling.prometheusAddress",
            "required when autoscaling.enabled is true: the http(s) URL of the Prometheus that scrapes vLLM",
            {"autoscaling"},
        ))
    if scaling.minReplicas > scaling.maxReplicas:
        message = f"{scaling.minReplicas} is more than maxReplicas {scaling.maxReplicas}"
        problems.append(("autoscaling.minReplicas", message, {"autoscaling"}))
    volume = config.model.volume
    if scaling.maxReplicas > 1 and volume.single_node:
        problems.append((
            "autoscaling.maxReplicas",
            f"{scaling.maxReplicas} replicas cannot share a {volume.accessModes[0]} model volume: pods on other nodes could "
            "not mount it. Use maxReplicas 1, or ReadWriteMany / ReadOnlyMany in model.volume.accessModes",
            {"autoscaling", "model.volume.accessModes"},
        ))
    return problems


def _network_policy(config: ServingConfig) -> list[Problem]:
    return [
        (f"networkPolicy.allowedNamespaces.{index}", f"{namespace!r} is not a namespace name", {"networkPolicy"})
        for index, namespace in enumerate(config.networkPolicy.allowedNamespaces)
        if not is_dns1123_label(namespace)
    ]


def _env_values(config: ServingConfig) -> list[Problem]:
    return [
        (f"env.{index}", f"{var.name}: set exactly one of value or valueFrom", {"env"})
        for index, var in enumerate(config.env)
        if (var.value is None) == (var.valueFrom is None)
    ]


def _read_write_once_pod(config: ServingConfig) -> list[Problem]:
    """ReadWriteOncePod admits one pod at a time: the scheduler's VolumeRestrictions plugin refuses a
    second (kubernetes/kubernetes, pkg/scheduler/framework/plugins/volumerestrictions/volume_restrictions.go,
    ErrReasonReadWriteOncePodConflict). A download beside the running server could never start, so a
    model or adapter change would wait forever (the Job Pending, the server waiting for the Job)."""
    modes = config.model.volume.accessModes
    if "ReadWriteOncePod" not in modes:
        return []
    reads = {"model.volume.accessModes", "model.source", "lora.adapters"}
    if len(modes) > 1:
        # pkg/apis/core/validation/validation.go: "may not use ReadWriteOncePod with other access modes".
        return [("model.volume.accessModes", "ReadWriteOncePod cannot be combined with other access modes "
                 "(Kubernetes refuses such a claim)", reads)]
    if config.model.source or config.lora.adapters:
        downloads = "model.source is set" if config.model.source else "lora.adapters are set"
        return [(
            "model.volume.accessModes",
            f"ReadWriteOncePod admits one pod at a time, but {downloads}: a download Job must mount the "
            "volume while the server runs (on every model or adapter change), and would wait forever. Use "
            "ReadWriteOnce (the Job then runs on the server's node), or a pre-filled model.volume.existingClaim "
            'with model.source "" and no lora.adapters',
            reads,
        )]
    return []


def _compile_cache(config: ServingConfig) -> list[Problem]:
    cache, volume = config.server.compileCache, config.model.volume
    if not cache.enabled:
        return []
    problems: list[Problem] = []
    if not config.server.gpu_type:
        problems.append((
            "server.compileCache.gpuType",
            "the compile cache is keyed by the GPU model it was compiled for: set server.compileCache.gpuType "
            "(e.g. NVIDIA-A100-SXM4-80GB), or server.nodeSelector nvidia.com/gpu.product",
            {"server.compileCache", "server.nodeSelector"},
        ))
    if not cache.existingClaim and "ReadOnlyMany" in volume.accessModes:
        problems.append((
            "server.compileCache.existingClaim",
            "a ReadOnlyMany model volume cannot hold a cache the server writes: set "
            "server.compileCache.existingClaim to a ReadWriteMany claim (or ReadWriteOnce, for one node)",
            {"server.compileCache", "model.volume.accessModes"},
        ))
    return problems


RULES: tuple[Callable[[ServingConfig], list[Problem]], ...] = (
    _model_source,
    _replicas_share_the_volume,
    _read_write_once_pod,
    _model_size,
    _extra_args,
    _parallelism_uses_every_gpu,
    _adapters,
    _api_key,
    _exposure,
    _autoscaling,
    _network_policy,
    _env_values,
    _compile_cache,
)


def cross_field_problems(config: ServingConfig) -> list[Problem]:
    """Every cross-field rule's problems, in the order above."""
    return [problem for rule in RULES for problem in rule(config)]
