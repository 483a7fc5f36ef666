"""What of the server answers from outside the pod: the allow-list (vllm_serving_surface.py) as
the pod receives it, and the drain it serves.

vLLM's `--api-key` guards only paths under `/v1`, `/v2`, `/inference` and `/cohere`
(vllm/entrypoints/serve/middleware/authenticate.py, GUARDED_PREFIX); every other route it mounts
(`/invocations`, `/generative_scoring`, `/tokenize`, the dev-mode and elastic-EP control routes ...)
answers anyone who reaches the port. The allow-list runs inside vLLM's own process, the first
middleware of its app, handed over by vLLM's `--middleware` option: no second container, no extra
hop or buffer on the stream, nothing to order in the drain (it stops with vLLM), and the same for a
Deployment's pod and a LeaderWorkerSet's leader. It denies by default, so a route a new vLLM
release adds stays closed until a feature of the stack needs it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ..config import ServingConfig
from ..labels import common_labels
from ..options.exposure import OPENAI_API_PREFIX
from . import vllm_serving_surface as guard

MODULE_FILE = Path(guard.__file__).name
MODULE_MOUNT = "/vllm-serving/surface"
# Where the preStop hook leaves its markers: an emptyDir, so a read-only root filesystem is fine.
DRAIN_DIR = "/vllm-serving/drain"
MIDDLEWARE_ARG = f"--middleware={Path(MODULE_FILE).stem}.{guard.SurfaceGuard.__name__}"
READY_PATH = guard.READY_PATH
HEALTH_PATH = guard.HEALTH_PATH
# What a request refused during the drain is told: by then the Service sends new connections to
# another ready pod, or, with one replica, to its replacement once it is ready.
RETRY_AFTER_SECONDS = 5
# Set by the program on the server container; env may not set them (components/config/rules.py).
POLICY_ENV = guard.POLICY_ENV
PYTHONPATH_ENV = "PYTHONPATH"


def keyed_prefixes(config: ServingConfig) -> list[str]:
    """The path prefixes the server answers (with the key, when the stack has one): the OpenAI API,
    and the extra paths an enabled Ingress or HTTPRoute routes on purpose."""
    extra = [
        *(config.ingress.extraPaths if config.ingress.enabled else []),
        *(config.httpRoute.extraPaths if config.httpRoute.enabled else []),
    ]
    return list(dict.fromkeys([OPENAI_API_PREFIX, *(path.rstrip("/") or "/" for path in extra)]))


def metrics_open(config: ServingConfig) -> bool:
    """/metrics without the key only when the stack has something that scrapes it: Prometheus, the
    autoscaler's metrics, or the endpoint picker of `routing`, which reads each pod's /metrics with
    no credentials (docs/routing.md)."""
    metrics = config.metrics
    return (
        metrics.serviceMonitor.enabled or metrics.podMonitor.enabled or metrics.scrapeAnnotations
        or config.autoscaling.enabled or config.routing.enabled
    )


def surface_policy(config: ServingConfig) -> dict[str, Any]:
    return {
        "keyedPrefixes": keyed_prefixes(config),
        "metricsOpen": metrics_open(config),
        "requireKey": config.has_api_key,
        "drainDir": DRAIN_DIR,
        "retryAfterSeconds": RETRY_AFTER_SECONDS,
    }


def module_source() -> str:
    return Path(guard.__file__).read_text()


def surface_env(config: ServingConfig) -> list[k8s.core.v1.EnvVarArgs]:
    return [
        k8s.core.v1.EnvVarArgs(name=PYTHONPATH_ENV, value=MODULE_MOUNT),
        k8s.core.v1.EnvVarArgs(name=POLICY_ENV, value=json.dumps(surface_policy(config), sort_keys=True)),
    ]


def surface_mounts() -> list[k8s.core.v1.VolumeMountArgs]:
    return [
        k8s.core.v1.VolumeMountArgs(name="surface", mount_path=MODULE_MOUNT, read_only=True),
        k8s.core.v1.VolumeMountArgs(name="drain", mount_path=DRAIN_DIR),
    ]


def surface_volumes(config_map_name: pulumi.Input[str]) -> list[k8s.core.v1.VolumeArgs]:
    return [
        k8s.core.v1.VolumeArgs(name="surface", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config_map_name)),
        k8s.core.v1.VolumeArgs(name="drain", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="1Mi")),
    ]


# The preStop hook: readiness fails at once (`draining`), the pod keeps serving while endpoints,
# kube-proxy and ingress controllers catch up, then new requests get 503 (`stopping`) from just
# before SIGTERM. Paths and seconds are positional arguments, never part of the script.
DRAIN_SCRIPT = f'touch "$1/{guard.DRAINING}"; sleep "$2"; touch "$1/{guard.STOPPING}"'


def drain_command(seconds: int) -> list[str]:
    return ["sh", "-c", DRAIN_SCRIPT, "sh", DRAIN_DIR, str(seconds)]


def surface_config_map(parent: pulumi.Resource, name: str, config: ServingConfig) -> k8s.core.v1.ConfigMap:
    """The module, in a ConfigMap named by its content: a new module rolls the pods."""
    source = module_source()
    digest = hashlib.sha256(source.encode()).hexdigest()[:8]
    deploy_name = config.model.deployName
    return k8s.core.v1.ConfigMap(
        f"{name}-surface",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=f"{deploy_name}-surface-{digest}", namespace=config.namespace,
            labels=common_labels(deploy_name, "server", config.image.tag),
        ),
        data={MODULE_FILE: source},
        opts=pulumi.ResourceOptions(parent=parent),
    )
