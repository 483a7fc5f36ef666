"""Cross-field rules of `routing` (docs/routing.md), each a (key, message, keys it reads) problem."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stack import ServingConfig

Problem = tuple[str, str, set[str]]
_GATEWAY_PART = re.compile(r"([0-9]+)(h|m|s|ms)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def gateway_duration_seconds(value: str) -> float:
    """An HTTPRoute duration (whole numbers with h, m, s or ms, as fields.GATEWAY_DURATION allows) in seconds."""
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in _GATEWAY_PART.findall(value))


def _needs_routing(config: ServingConfig) -> list[Problem]:
    routing = config.routing
    problems: list[Problem] = []
    if routing.enabled and not config.httpRoute.enabled:
        problems.append((
            "routing.enabled",
            ("needs httpRoute.enabled with httpRoute.parentRefs: the InferencePool is reached through the Gateways "
            "the route attaches to"),
            {"routing", "httpRoute"},
        ))
    if not routing.enabled:
        for key, on in (
            ("routing.routeByModel", routing.routeByModel),
            ("routing.flowControl.enabled", routing.flowControl.enabled),
            ("routing.runtimeLora.enabled", routing.runtimeLora.enabled),
        ):
            if on:
                problems.append((key, "needs routing.enabled: true (the endpoint picker does it)", {"routing"}))
    return problems


def _runtime_lora(config: ServingConfig) -> list[Problem]:
    runtime = config.routing.runtimeLora
    problems: list[Problem] = []
    if runtime.adapterNames and not runtime.enabled:
        problems.append(("routing.runtimeLora.adapterNames", "needs routing.runtimeLora.enabled: true", {"routing"}))
    if not runtime.enabled:
        return problems
    # vLLM serves its adapter load and unload API under /v1, which an Ingress or an exposed
    # Service would carry from outside; only the HTTPRoute keeps it out (a rule of its own).
    for key, exposed in (
        ("ingress.enabled", config.ingress.enabled),
        ("service.type", config.service.type in ("LoadBalancer", "NodePort")),
    ):
        if exposed:
            problems.append((
                "routing.runtimeLora.enabled",
                (f"cannot be combined with {key}: it would carry vLLM's adapter load/unload API (/v1/load_lora_adapter) "
                "outside the cluster; expose the server through httpRoute only"),
                {"routing", "ingress", "service"},
            ))
    problems += _api_servers(config)
    taken = {config.model.deployName, *(adapter.name for adapter in config.lora.adapters)}
    seen: set[str] = set()
    for index, name in enumerate(runtime.adapterNames):
        if name in taken or name in seen:
            problems.append((
                f"routing.runtimeLora.adapterNames.{index}",
                f"{name!r} is used twice (model, lora.adapters and runtime adapter names must differ)",
                {"routing", "lora.adapters", "model.deployName"},
            ))
        seen.add(name)
    return problems


def _api_servers(config: ServingConfig) -> list[Problem]:
    """vLLM refuses VLLM_ALLOW_RUNTIME_LORA_UPDATING with more than one API server process
    (vllm/entrypoints/cli/serve.py: "cannot be used with api_server_count > 1")."""
    from ..engine import engine_profile
    from .vllm_flags import read_argument

    args = config.server.extraArgs
    options = engine_profile(config).option_strings
    for index, argument in enumerate(args):
        if "--api-server-count" not in read_argument(argument, options).options:
            continue
        _, sep, value = argument.partition("=")
        count = value if sep else (args[index + 1] if index + 1 < len(args) else "")
        if count.strip() != "1":
            return [(
                f"server.extraArgs.{index}",
                (f"--api-server-count {count} cannot be combined with routing.runtimeLora: vLLM allows runtime "
                "LoRA with one API server process only"),
                {"server.extraArgs", "routing"},
            )]
    return []


def _queue(config: ServingConfig) -> list[Problem]:
    # The cold start prediction reads config.rules, which reads this module: imported when run.
    from ..options.routing import flow_control_on, queue_timeout_seconds, replica_start_seconds

    routing = config.routing
    problems: list[Problem] = []
    reads = {"routing", "autoscaling", "model.size", "server", "download", "httpRoute.requestTimeout"}
    if routing.enabled and config.scale_to_zero and not routing.flowControl.enabled:
        problems.append((
            "routing.flowControl.enabled",
            ("must be true with autoscaling.minReplicas 0: at zero replicas the pool has no endpoint, and without "
            "the picker's queue every request fails until a replica has started"),
            reads,
        ))
    if not flow_control_on(config):
        return problems
    timeout = queue_timeout_seconds(config)
    if timeout is None:
        problems.append((
            "routing.flowControl.queueTimeoutSeconds",
            "required without model.size: it is twice the predicted start of a replica, which needs the model's size",
            reads,
        ))
        return problems
    start = replica_start_seconds(config)
    if config.scale_to_zero and start is not None and timeout <= start:
        problems.append((
            "routing.flowControl.queueTimeoutSeconds",
            (f"{timeout} s is not above the predicted start of a replica ({start:.0f} s: image pull + load): at zero "
            "replicas every request would time out before the first replica answers"),
            reads,
        ))
    route_timeout = gateway_duration_seconds(config.httpRoute.requestTimeout)
    if config.httpRoute.enabled and route_timeout <= timeout:
        problems.append((
            "httpRoute.requestTimeout",
            (f"{config.httpRoute.requestTimeout} is not above the picker's queue timeout ({timeout} s): the Gateway "
            "would give up on a queued request before the picker does"),
            reads,
        ))
    if config.scale_to_zero and not (config.metrics.serviceMonitor.enabled or config.metrics.scrapeAnnotations):
        problems.append((
            "autoscaling.minReplicas",
            ("0 with routing needs the picker's queue metric in Prometheus (metrics.serviceMonitor.enabled or "
            "metrics.scrapeAnnotations): it is the only signal that starts the first replica"),
            reads | {"metrics"},
        ))
    return problems


ROUTING_RULES = (_needs_routing, _runtime_lora, _queue)
