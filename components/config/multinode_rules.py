"""Rules across keys for multi-node serving (server.nodes) and the fit check.

Same shape as rules.py: each returns (key path, message, the keys it reads). Kept apart so that
the multi-node and fit rules read together, and rules.py only lists them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..engine import engine_profile
from ..fit import Architecture, FitReport, UnknownArchitecture, WeightBytes, check_fit, gpu_spec, read_architecture
from ..fit.hub import read_hub_architecture
from .fields import quantity_bytes
from .stack import ServingConfig

Problem = tuple[str, str, set[str]]

# The flags a multi-node launch sets from server.nodes and the LeaderWorkerSet's environment.
MULTI_NODE_FLAGS = ("--nnodes", "-n", "--node-rank", "-r", "--master-addr", "--master-port", "--headless",
                    "--distributed-executor-backend")


def _volume_for_every_node(config: ServingConfig) -> list[Problem]:
    """Each pod of a group loads the whole checkpoint, and LeaderWorkerSet puts the pods of a group
    on different nodes (each asks for a node's GPUs): every node must mount the volume."""
    volume = config.model.volume
    if not config.multi_node or not volume.single_node:
        return []
    return [(
        "model.volume.accessModes",
        (f"{volume.accessModes[0]} cannot serve server.nodes {config.server.nodes}: every pod of a group loads "
        "the full checkpoint from the volume, and the pods of a group run on different nodes, which a "
        "single-node volume cannot be mounted on (the second pod would stay Pending with a Multi-Attach "
        "error). Use ReadWriteMany (the download Job writes it once) or ReadOnlyMany with a pre-filled "
        "model.volume.existingClaim"),
        {"model.volume.accessModes", "server.nodes"},
    )]


def _network_needs_nodes(config: ServingConfig) -> list[Problem]:
    network = config.server.network
    if config.multi_node or network == type(network)():
        return []
    return [(
        "server.network",
        ("configures the network between the pods of a multi-node group, and server.nodes is 1; "
        "remove it, or set server.nodes above 1"),
        {"server.network", "server.nodes"},
    )]


def _autoscaling_single_node(config: ServingConfig) -> list[Problem]:
    if not (config.multi_node and config.autoscaling.enabled):
        return []
    return [(
        "autoscaling.enabled",
        ("the KEDA ScaledObject scales the Deployment of a single-node server; with server.nodes > 1 the "
        "server is a LeaderWorkerSet, which this program does not autoscale: set replicaCount instead"),
        {"autoscaling", "server.nodes"},
    )]


def _launch_flags_in_extra_args(config: ServingConfig) -> list[Problem]:
    """The launch flags, under any spelling vLLM's parser reads as one of them (vllm_flags.py)."""
    from .vllm_flags import read_argument

    problems = []
    options = engine_profile(config).option_strings
    for index, argument in enumerate(config.server.extraArgs):
        flag = next((option for option in read_argument(argument, options).options if option in MULTI_NODE_FLAGS), None)
        if flag:
            problems.append((
                f"server.extraArgs.{index}",
                (f"{flag} is set by this program for a multi-node group (from server.nodes and the "
                "LeaderWorkerSet's LWS_LEADER_ADDRESS / LWS_WORKER_INDEX); remove it"),
                {"server.extraArgs"},
            ))
    return problems


def offline_architecture(config: ServingConfig) -> Architecture | UnknownArchitecture | None:
    """The model's architecture from model.architecture (its config.json fields), with the weight
    bytes of model.size when set; None when it is not given."""
    model = config.model
    if model.architecture is None:
        return None
    weights = WeightBytes.declared(int(quantity_bytes(model.size))) if model.size else None
    return read_architecture(model.architecture, weights)


def fit_report(config: ServingConfig, architecture: Architecture | UnknownArchitecture) -> FitReport:
    """The fit check on this stack's GPUs and layout: TP and PP as the command line sets them."""
    server, engine = config.server, config.engine
    memory = int(quantity_bytes(server.gpuMemory)) if server.gpuMemory else None
    return check_fit(
        architecture,
        gpu_spec(server.gpuType, memory),
        tensor_parallel=config.tensor_parallel_size,
        pipeline_parallel=config.pipeline_parallel_size,
        # Unset: the release's own default (0.92 up to 0.33; 0.34's resolves to 1.0 with the
        # extensible KV cache), as components/engine reads it from that release's source.
        gpu_memory_utilization=engine.gpuMemoryUtilization
        if engine.gpuMemoryUtilization is not None
        else engine_profile(config).default_gpu_memory_utilization(config.server.extraArgs),
        max_model_len=engine.maxModelLen,
        kv_cache_dtype=engine.kvCacheDtype,
        quantization=engine.quantization,
        dtype=engine.dtype,
    )


FIT_READS = {"model.architecture", "model.size", "server.gpuType", "server.gpuMemory", "server.nodes",
             "engine", "resources.limits"}


def fit_problems(config: ServingConfig, architecture: Architecture | UnknownArchitecture) -> list[Problem]:
    return [(problem.key, problem.message, FIT_READS) for problem in fit_report(config, architecture).problems()]


def _fits_offline(config: ServingConfig) -> list[Problem]:
    architecture = offline_architecture(config)
    return [] if architecture is None else fit_problems(config, architecture)


def _hub_needs_huggingface(config: ServingConfig) -> list[Problem]:
    if not config.fitCheck.readHub or config.model.architecture is not None or config.model.source == "huggingface":
        return []
    return [(
        "fitCheck.readHub",
        ("reads model.huggingface.id from the Hub, and model.source is not huggingface; "
        "give the model's config.json fields in model.architecture instead"),
        {"fitCheck", "model.source", "model.architecture"},
    )]


def hub_fit_problems(
    config: ServingConfig, read: Callable[..., Architecture | UnknownArchitecture] = read_hub_architecture
) -> list[tuple[str, str]]:
    """The fit check on the architecture read from the Hub, when fitCheck.readHub asks for it (and
    model.architecture does not give it). A repository that cannot be read skips the check."""
    model = config.model
    if not config.fitCheck.readHub or model.architecture is not None or model.source != "huggingface":
        return []
    hub = model.huggingface
    # The token of a gated model, when the one running `pulumi preview` has it in the environment.
    architecture = read(hub.id, hub.revision or "main", token=os.environ.get("HF_TOKEN") or None)
    return [(path, message) for path, message, _ in fit_problems(config, architecture)]


MULTI_NODE_RULES = (
    _volume_for_every_node,
    _network_needs_nodes,
    _autoscaling_single_node,
    _launch_flags_in_extra_args,
)
FIT_RULES = (_fits_offline, _hub_needs_huggingface)
