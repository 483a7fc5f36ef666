"""Rules across keys: what pydantic's per-field checks cannot see.

Each rule returns problems as (key path, message, the keys the rule reads); the keys read
let parse_config skip a rule whose input was itself broken. Order here is the order users
see the problems in.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..engine import engine_choice
from .engine_rules import release_problem, typed_flag_findings
from .fields import is_dns1123_label, is_http_url, quantity_bytes, shown
from .multinode_rules import FIT_RULES, MULTI_NODE_RULES
from .routing_rules import ROUTING_RULES
from .secrets import kubernetes_expansion, secret_expansions, tool_config_names
from .server import ENGINE_FLAGS
from .stack import ServingConfig
from .surface_rules import SURFACE_RULES
from .vllm_flags import Reading, read_argument

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
    "--shutdown-timeout": "server.shutdownTimeoutSeconds (the pod's grace period is derived from it)",
}
# Flags refused outright, with the reason.
REFUSED_FLAGS = {
    "--config": "reads more flags from a YAML file, which these checks cannot see; give them here or as typed keys",
}


def _model_source(config: ServingConfig) -> list[Problem]:
    model = config.model
    source = model.download_source
    if source is None:
        if model.volume.existingClaim:
            return []
        return [(
            "model.volume.existingClaim",
            ('required when model.source is "" (no download): name the claim that holds the model, '
            "or set model.source to huggingface, git or s3"),
            {"model.source", "model.volume.existingClaim"},
        )]
    problems = []
    for key, value in source.required():
        path = f"model.{source.kind}.{key}"
        if not value.strip():
            problems.append((path, f'required when model.source is "{model.source}"', {path, "model.source"}))
    return problems


def _replicas_share_the_volume(config: ServingConfig) -> list[Problem]:
    volume = config.model.volume
    if config.replicaCount <= 1 or not volume.single_node:
        return []
    return [(
        "replicaCount",
        (f"{config.replicaCount} replicas cannot share a {volume.accessModes[0]} model volume: pods scheduled on "
        "other nodes could not mount it and would stay Pending. Use 1 replica, or a volume with "
        "ReadWriteMany or ReadOnlyMany in model.volume.accessModes"),
        {"replicaCount", "model.volume.accessModes"},
    )]


def _surge_needs_a_shared_volume(config: ServingConfig) -> list[Problem]:
    volume = config.model.volume
    if config.rollout != "surge" or not volume.single_node:
        return []
    return [(
        "server.rollout",
        (f"surge starts each new pod while the old one runs, and a {volume.accessModes[0]} model volume "
        "cannot be mounted by both (the new pod would wait for the old one's volume forever). Use "
        "oneAtATime or recreate, or a volume with ReadWriteMany or ReadOnlyMany in model.volume.accessModes"),
        {"server.rollout", "model.volume.accessModes"},
    )]


def _model_size(config: ServingConfig) -> list[Problem]:
    model, server = config.model, config.server
    if not model.size:
        return []
    problems = []
    size = quantity_bytes(model.size)
    # An existing claim's size is not known before anything is applied: nothing to compare it with.
    if not model.volume.existingClaim:
        problems += _volume_holds_every_copy(config, size)
    needed = size / 1e9 / server.assumedLoadRateGBps + STARTUP_OVERHEAD_SECONDS
    if needed > server.startupTimeoutSeconds:
        problems.append((
            "server.startupTimeoutSeconds",
            (f"{server.startupTimeoutSeconds} s is too short to load {model.size} ({size / 1e9:.1f} GB) at "
            f"{server.assumedLoadRateGBps:g} GB/s (server.assumedLoadRateGBps): that needs about "
            f"{needed:.0f} s ({needed / 60:.0f} min) with {STARTUP_OVERHEAD_SECONDS} s of start-up; "
            "raise startupTimeoutSeconds, or the assumed rate if your storage is faster"),
            {"server.startupTimeoutSeconds", "server.assumedLoadRateGBps", "model.size"},
        ))
    return problems


def _volume_holds_every_copy(config: ServingConfig, model_bytes: float) -> list[Problem]:
    """A source change downloads a full copy beside those kept: all of them must fit at once."""
    volume, model_size = config.model.volume, config.model.size
    copies, capacity = volume.copies_during_change, quantity_bytes(volume.size)
    needed = copies * model_bytes
    if needed <= capacity:
        return []
    older = copies - 2  # kept besides the served version and the new download
    kept = f" and {older} older version{'s' if older > 1 else ''}" if older else ""
    fewer = ", or keep fewer versions (model.volume.keepPreviousVersions)" if older else ""
    return [(
        "model.volume.size",
        (f"{volume.size} ({capacity / 1e9:.1f} GB) cannot hold the {copies} copies of the weights that "
        f"coexist during a model change: the new download beside the served version{kept} "
        f"(model.volume.keepPreviousVersions {volume.keepPreviousVersions}), {copies} × model.size "
        f"{model_size} ({model_bytes / 1e9:.1f} GB) = {needed / 1e9:.1f} GB. Raise model.volume.size to at "
        f"least {math.ceil(needed / 2**30)}Gi{fewer}"),
        {"model.size", "model.volume.size", "model.volume.keepPreviousVersions", "model.volume.existingClaim"},
    )]



def _typed_keys_set(config: ServingConfig) -> set[str]:
    """Typed keys that put a flag on the command line."""
    keys = {f"engine.{name}" for name, value in config.engine if value not in (None, False)}
    keys.discard("engine.pipelineParallelSize")
    if config.pipeline_parallel_size > 1:  # on the command line, from server.nodes by default
        keys.add("engine.pipelineParallelSize")
    keys.add("engine.tensorParallelSize")  # always on the command line, from the GPUs by default
    if config.lora.adapters:
        keys.add("lora.adapters")
    keys |= {f"lora.{name}" for name in ("maxLoraRank", "maxLoras") if getattr(config.lora, name) is not None}
    return keys


def _flag_problem(config: ServingConfig, reading: Reading, typed: set[str]) -> tuple[str, str] | None:
    """(why, the typed key involved) when the argument sets, or may set, a flag it must not."""
    for option in reading.options:
        if option in REFUSED_FLAGS:
            why, key = f"{option} {REFUSED_FLAGS[option]}", "server.extraArgs"
        elif option in PROGRAM_SET_FLAGS:
            why, key = f"{option} is set by this program from {PROGRAM_SET_FLAGS[option]}; set it there instead", "server.extraArgs"
        elif ENGINE_FLAGS.get(option) in typed:
            key = ENGINE_FLAGS[option]
            why = _typed_flag_clash(config, option, key)
        else:
            continue
        written = shown(reading.written)
        if reading.ambiguous:
            others = ", ".join(reading.options[:5]) + (", ..." if len(reading.options) > 5 else "")
            return f"{written} is ambiguous to vLLM's parser ({others}), which refuses to start; and {why}", key
        if reading.written != option:
            return f"{written} is read by vLLM's parser as {option} (it accepts a unique prefix, and _ for -): {why}", key
        return why, key
    return None


def _extra_args(config: ServingConfig) -> list[Problem]:
    problems = []
    typed = _typed_keys_set(config)
    # Read as the parser of the release the stack runs reads it (components/engine).
    choice = engine_choice(config)
    options = choice.profile.option_strings
    for index, argument in enumerate(config.server.extraArgs):
        path = f"server.extraArgs.{index}"
        if not argument.startswith("-"):
            # vLLM's parser has an optional positional, model_tag (vllm/entrypoints/common/cli_args.py,
            # make_arg_parser), which `vllm serve` puts in place of --model: a bare item could be read
            # as the model to serve. A flag and its value go in one item, so none is ever bare.
            problems.append((
                path,
                # The value is not shown: a bare item may be the secret a flag before it takes.
                (
                    "is not a flag: vLLM's parser could read a bare item as the model to "
                    "serve (its positional model_tag), in place of --model; write each flag with its value "
                    "in one item, e.g. --max-model-len=8192"
                ),
                {"server.extraArgs"},
            ))
            continue
        expansion = kubernetes_expansion(argument)
        if expansion:
            problems.append((
                path,
                (f"holds {shown(expansion)}, which Kubernetes replaces with the value of that environment variable "
                "(a Secret's, e.g. VLLM_API_KEY) in the command line; write $$( for a literal $("),
                {"server.extraArgs"},
            ))
            continue
        reading = read_argument(argument, options)
        found = _flag_problem(config, reading, typed)
        if found:
            why, key = found
            problems.append((path, why, {"server.extraArgs", key.split(" ")[0]}))
        # Only a profile of the release itself refuses; the nearest one warns (engine_rules.py).
        elif choice.exact and (refusal := release_problem(argument, reading, choice.profile, choice.named_by)):
            problems.append((path, refusal, {"server.extraArgs", "image.tag", "server.engineVersion"}))
    return problems


def _typed_flags_for_release(config: ServingConfig) -> list[Problem]:
    """A typed key's flag, as rendered, must be one the release's parser takes (engine_rules.py)."""
    if not engine_choice(config).exact:
        return []  # the nearest profile only warns
    reads = {"image.tag", "server.engineVersion", "engine", "lora"}
    return [(key, why, reads | {key}) for key, why in typed_flag_findings(config)]


def _typed_flag_clash(config: ServingConfig, flag: str, key: str) -> str:
    """Blame the argument the user wrote, and name the typed key to use instead."""
    if key == "engine.tensorParallelSize" and config.engine.tensorParallelSize is None:
        return (
            f"{flag} is already on the command line: this program derives it from the GPUs per pod "
            f'(resources.limits["nvidia.com/gpu"] = {config.resources.limits.gpu}, divided by '
            "engine.pipelineParallelSize); remove it from server.extraArgs, and set engine.tensorParallelSize "
            "to choose another value"
        )
    return f"{flag} is also set by {key}, the typed key for it; remove it from server.extraArgs and keep {key}"


def _parallelism_uses_every_gpu(config: ServingConfig) -> list[Problem]:
    engine, gpus = config.engine, config.gpus_per_replica
    tensor, pipeline = config.tensor_parallel_size, config.pipeline_parallel_size
    if tensor * pipeline == gpus:
        return []
    nodes = config.server.nodes
    given = (
        f'each pod gets {gpus} GPUs (resources.limits."nvidia.com/gpu")' if nodes == 1 else
        f'each replica gets {config.resources.limits.gpu} GPUs (resources.limits."nvidia.com/gpu") × '
        f"{nodes} nodes (server.nodes) = {gpus} GPUs"
    )
    return [(
        "engine.tensorParallelSize" if engine.tensorParallelSize else "engine.pipelineParallelSize",
        (f"tensor parallel {tensor} × pipeline parallel {pipeline} = {tensor * pipeline}, but {given}; "
        "the product must equal the GPUs"),
        {"engine", "resources.limits", "server.nodes"},
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
    exposed = config.exposed_outside_cluster
    if exposed and not config.has_api_key and not config.allowUnauthenticated:
        problems.append((
            exposed[0],
            (f"exposes the server outside the cluster ({', '.join(exposed)}) without an API key: anyone who reaches "
            "it can generate text. Set apiKeySecret (an existing Secret) or apiKey (pulumi config set --secret "
            "apiKey ...), or allowUnauthenticated: true to expose it without one on purpose"),
            {"ingress", "httpRoute", "service", "apiKey", "apiKeySecret"},
        ))
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
            (f"{scaling.maxReplicas} replicas cannot share a {volume.accessModes[0]} model volume: pods on other nodes could "
            "not mount it. Use maxReplicas 1, or ReadWriteMany / ReadOnlyMany in model.volume.accessModes"),
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
    ] + [(path, message, {"env"}) for path, message in secret_expansions(config.env) + tool_config_names(config.env)]


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
        return [("model.volume.accessModes", ("ReadWriteOncePod cannot be combined with other access modes "
                 "(Kubernetes refuses such a claim)"), reads)]
    if config.model.source or config.lora.adapters:
        downloads = "model.source is set" if config.model.source else "lora.adapters are set"
        return [(
            "model.volume.accessModes",
            (f"ReadWriteOncePod admits one pod at a time, but {downloads}: a download Job must mount the "
            "volume while the server runs (on every model or adapter change), and would wait forever. Use "
            "ReadWriteOnce (the Job then runs on the server's node), or a pre-filled model.volume.existingClaim "
            'with model.source "" and no lora.adapters'),
            reads,
        )]
    return []


def _read_only_many_written(config: ServingConfig) -> list[Problem]:
    """[ReadWriteOnce, ReadOnlyMany] without ReadWriteMany: the attach/detach controller lets such a
    volume attach to several nodes (kubernetes/kubernetes pkg/volume/util/util.go, `IsMultiAttachAllowed`:
    any ReadOnlyMany or ReadWriteMany mode), so the program would spread replicas and put no affinity
    on the Jobs, but a block volume (EBS, Persistent Disk, Azure Disk) cannot be attached read-write to
    the Job's node and read-only to others at once: whatever writes it (a download, an adapter, the
    compile cache) has to be alone on one node."""
    modes = config.model.volume.accessModes
    if "ReadOnlyMany" not in modes or "ReadWriteMany" in modes or "ReadWriteOnce" not in modes:
        return []
    writers = [
        text for text, writes in (
            ("model.source is set", bool(config.model.source)),
            ("lora.adapters are set", bool(config.lora.adapters)),
            ("server.compileCache keeps the cache on the model volume",
             config.server.compileCache.enabled and not config.server.compileCache.existingClaim),
        ) if writes
    ]
    if not writers:
        return []
    return [(
        "model.volume.accessModes",
        (f"ReadWriteOnce with ReadOnlyMany is written on one node only, and {', '.join(writers)}: a block volume "
        "cannot be read-write on the writer's node and read-only on others at the same time, so pods on other "
        "nodes would fail to attach it. Use [ReadWriteOnce] (one node: the program keeps every pod there), "
        "ReadWriteMany, or ReadOnlyMany with a pre-filled model.volume.existingClaim and model.source \"\""),
        {"model.volume.accessModes", "model.source", "lora.adapters", "server.compileCache"},
    )]


def _compile_cache(config: ServingConfig) -> list[Problem]:
    cache, volume = config.server.compileCache, config.model.volume
    if not cache.enabled:
        return []
    problems: list[Problem] = []
    if not config.server.gpu_type:
        problems.append((
            "server.compileCache.gpuType",
            ("the compile cache is keyed by the GPU model it was compiled for: set server.compileCache.gpuType "
            "(e.g. NVIDIA-A100-SXM4-80GB), or server.nodeSelector nvidia.com/gpu.product"),
            {"server.compileCache", "server.nodeSelector"},
        ))
    if not cache.existingClaim and "ReadOnlyMany" in volume.accessModes:
        problems.append((
            "server.compileCache.existingClaim",
            ("a ReadOnlyMany model volume cannot hold a cache the server writes: set "
            "server.compileCache.existingClaim to a claim of its own, ReadWriteMany (ReadWriteOnce only "
            "for a single pod: server.nodes 1, one replica, no surge), and server.compileCache.accessModes "
            "to its access modes"),
            {"server.compileCache", "model.volume.accessModes"},
        ))
    if cache.existingClaim:
        problems += _cache_claim_pods(config)
    return problems


def _cache_claim_pods(config: ServingConfig) -> list[Problem]:
    """The cache claim is mounted read-write by every server pod, so the model volume's rules apply
    with one difference: ReadOnlyMany is no help (kubernetes/kubernetes pkg/volume/util/util.go,
    `IsMultiAttachAllowed`, lets a ReadOnlyMany volume attach to several nodes, but a block volume is
    then writable on none of them). Without ReadWriteMany, a second pod on another node never starts
    (`Multi-Attach error`), and ReadWriteOncePod admits one pod in the whole cluster."""
    modes = config.server.compileCache.accessModes
    reads = {"server.compileCache.accessModes", "server.compileCache.existingClaim"}
    if not any(mode in ("ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany") for mode in modes):
        return [("server.compileCache.accessModes", ("a ReadOnlyMany claim cannot hold a cache the server "
                 "writes: use a ReadWriteMany claim (ReadWriteOnce for a single pod)"), reads)]
    if "ReadWriteMany" in modes:
        return []
    pods = []
    if config.multi_node:
        pods.append(f"server.nodes {config.server.nodes} puts the pods of each group on different nodes")
    if config.max_replicas > 1:
        pods.append(f"{config.max_replicas} replicas may run on different nodes")
    if config.rollout == "surge":
        pods.append("server.rollout surge starts each new pod while the old one runs, possibly on another node")
    if not pods:
        return []
    return [(
        "server.compileCache.accessModes",
        (f"{'/'.join(modes)} lets one node mount the cache claim, but {'; '.join(pods)}, and every one mounts "
        "the cache read-write: a pod on a second node would never start (Multi-Attach error). Use a "
        "ReadWriteMany claim, or leave server.compileCache.existingClaim empty to keep the cache on a "
        "ReadWriteMany model volume"),
        reads | {"server.nodes", "replicaCount", "autoscaling.maxReplicas", "server.rollout"},
    )]


RULES: tuple[Callable[[ServingConfig], list[Problem]], ...] = (
    _model_source,
    _replicas_share_the_volume,
    *MULTI_NODE_RULES,
    _read_write_once_pod,
    _read_only_many_written,
    _surge_needs_a_shared_volume,
    _model_size,
    _extra_args,
    _typed_flags_for_release,
    _parallelism_uses_every_gpu,
    _adapters,
    _api_key,
    _exposure,
    _autoscaling,
    _network_policy,
    _env_values,
    *SURFACE_RULES,
    *FIT_RULES,
    _compile_cache,
    *ROUTING_RULES,
)


def cross_field_problems(config: ServingConfig) -> list[Problem]:
    """Every cross-field rule's problems, in the order above."""
    return [problem for rule in RULES for problem in rule(config)]
