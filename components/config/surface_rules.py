"""Rules that keep the server's surface locked (README, "What answers, with and without the key").

Same shape as rules.py: each returns (key path, message, the keys it reads). The allow-list in the
pod (components/server/vllm_serving_surface.py) answers only the paths the stack needs whatever
vLLM mounts; these refuse, before anything is applied, what would get around it, widen it, leak
what it protects into logs, or leave a pod that can never serve.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..engine import engine_profile
from .chart import EnvVar
from .fields import is_dns1123_label
from .secrets import kubernetes_expansion
from .stack import ServingConfig
from .vllm_flags import read_argument

Problem = tuple[str, str, set[str]]

_TLS = (
    "makes the server speak HTTPS only, which the pod's HTTP probes (/health, /ready) can never pass: the pod "
    "never becomes ready. Terminate TLS at the Ingress (ingress.tlsSecret) or the Gateway instead"
)
_DATA_PARALLEL = (
    "runs several engine copies in one pod (or multi-node group), each needing tensor × pipeline parallel GPUs, "
    "while resources.limits and server.nodes count the GPUs of one copy: the engine asks for more GPUs than the "
    "pod has. Scale out with replicaCount (or autoscaling) instead"
)
# Flags refused in server.extraArgs for what they do to the surface, with the safe way.
SURFACE_FLAGS = {
    "--middleware": (
        "is set by this program: its allow-list (components/server/surface.py) must be the last "
        "--middleware, the one vLLM runs first; another would see every request before it and could answer "
        "what it refuses. Put your logic behind the Ingress or Gateway instead"
    ),
    "--root-path": (
        "moves every route under a prefix that the probes, the Ingress and the allow-list do not follow, and "
        "vLLM's own key check removes it with a plain prefix removal (--root-path=/v lets /v1/... through "
        "without the key). To serve under a sub-path, set ingress.path with your controller's rewrite annotation"
    ),
    "--ssl-keyfile": _TLS,
    "--ssl-certfile": _TLS,
    "--ssl-ca-certs": _TLS,
    "--ssl-cert-reqs": _TLS,
    "--tokens-only": (
        "mounts only vLLM's tokens-in, tokens-out endpoint (for disaggregated serving): every request with text, "
        "which OpenAI clients and `vllm-serving verify` send, is answered 400. Remove it"
    ),
    "--profiler-config": (
        "turns on vLLM's torch profiler, which writes a trace of the requests into the pod's filesystem; profile "
        "on a server of your own, not the serving stack"
    ),
    "--data-parallel-size": _DATA_PARALLEL,
    "-dp": _DATA_PARALLEL,
    "--data-parallel-size-local": _DATA_PARALLEL,
    "-dpl": _DATA_PARALLEL,
}

# Env switches that mount routes, open control paths or write request bodies into the logs
# (vllm/envs.py): name -> (does this value turn it on, why it is refused).
_TRUE = ("1", "true")
SURFACE_ENV: dict[str, tuple[Callable[[str], bool], str]] = {
    "VLLM_SERVER_DEV_MODE": (
        lambda value: value.strip() not in ("", "0"),
        ("mounts vLLM's development routes (abort every request, pause and sleep the engine while /health stays "
         "200, collective_rpc writing files); they are for a developer's own server, never a served model"),
    ),
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING": (
        lambda value: value.strip().lower() in _TRUE,
        ("lets callers load and unload LoRA adapters from paths on the server at run time (also through "
         "/adapters, which vLLM's key check misses); serve adapters with lora.adapters"),
    ),
    "VLLM_DEBUG_LOG_API_SERVER_RESPONSE": (
        lambda value: value.strip().lower() == "true",
        "writes every response, prompts' completions included, into the server's log",
    ),
    "VLLM_LOGGING_LEVEL": (
        lambda value: value.strip().upper() == "DEBUG",
        "DEBUG writes request bodies (prompts) into the server's log; use INFO or WARNING",
    ),
}
# Switches whose value, read from a Secret or ConfigMap, is accepted unseen: a log level is commonly
# kept in a ConfigMap, and the worst it does is log; the others add routes or log every response.
UNSEEN_ACCEPTED = {"VLLM_LOGGING_LEVEL"}
# Env the program sets on the server container for the allow-list (components/server/surface.py).
PROGRAM_ENV = {
    "PYTHONPATH": "the program puts the allow-list's module on it (components/server/surface.py)",
    "VLLM_SERVING_SURFACE": "the program writes the allow-list's policy into it from the stack's settings",
    "MODEL_DIR": "the download Job's scripts read it as the directory to fill, which the program sets",
}
# The paths the allow-list answers without the key; publishing them outside is on purpose only.
OPEN_PATHS = ("/health", "/ready", "/metrics")


def _surface_flags(config: ServingConfig) -> list[Problem]:
    problems = []
    options = engine_profile(config).option_strings
    for index, argument in enumerate(config.server.extraArgs):
        reading = read_argument(argument, options)
        if not argument.startswith("-") or kubernetes_expansion(argument):
            continue  # rules.py's _extra_args reports these
        for option in reading.options:
            if option in SURFACE_FLAGS:
                problems.append((f"server.extraArgs.{index}", f"{option} {SURFACE_FLAGS[option]}", {"server.extraArgs"}))
                break
    return problems + _cors(config)


def _cors(config: ServingConfig) -> list[Problem]:
    """--allow-credentials with vLLM's default origins (["*"]) or a "*" among them: Starlette's
    CORSMiddleware then echoes any caller's Origin with credentials allowed (starlette/middleware/cors.py)."""
    credentials, origins = None, None
    release_options = engine_profile(config).option_strings
    for index, argument in enumerate(config.server.extraArgs):
        options = read_argument(argument, release_options).options
        if options == ("--allow-credentials",):
            credentials = index
        elif options == ("--no-allow-credentials",):
            credentials = None
        elif options == ("--allowed-origins",):
            origins = argument.partition("=")[2]
    if credentials is None:
        return []
    try:
        listed = json.loads(origins) if origins is not None else ["*"]
    except ValueError:
        listed = ["*"] if origins is None or "*" in origins else [origins]
    if isinstance(listed, list) and "*" not in listed:
        return []
    return [(
        f"server.extraArgs.{credentials}",
        ("--allow-credentials with every origin allowed (--allowed-origins is [\"*\"] unless given) lets any web "
        'page call the server with its visitors\' credentials; list the origins, e.g. --allowed-origins=["https://app.example.com"]'),
        {"server.extraArgs"},
    )]


def _value_turns_on(var: EnvVar, turns_on: Callable[[str], bool]) -> bool:
    if var.valueFrom is not None:
        # A value read from a Secret or ConfigMap cannot be seen here: refused, as it may turn it on.
        return var.name not in UNSEEN_ACCEPTED
    return turns_on(var.value or "")


def _surface_env(config: ServingConfig) -> list[Problem]:
    problems = []
    seen: dict[str, int] = {}
    overridden = dict(PROGRAM_ENV)
    if config.server.compileCache.enabled:
        overridden["VLLM_CACHE_ROOT"] = "server.compileCache puts vLLM's cache where it mounts the cache volume"
    if config.server.network.socketInterface:
        for name in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
            overridden[name] = "server.network.socketInterface sets it"
    for index, var in enumerate(config.env):
        path = f"env.{index}"
        if var.name in seen:
            duplicate = (f"{var.name} is also env.{seen[var.name]}: a name may appear once (Kubernetes keeps the last, "
                         "and a strategic merge patch drops one of them)")
            problems.append((path, duplicate, {"env"}))
        seen.setdefault(var.name, index)
        if var.name in SURFACE_ENV:
            turns_on, why = SURFACE_ENV[var.name]
            if _value_turns_on(var, turns_on):
                problems.append((path, f"{var.name} {why}", {"env"}))
        elif var.name in overridden:
            problems.append((path, f"{var.name} cannot be set here: {overridden[var.name]}", {"env"}))
    return problems


def _exposed_paths(config: ServingConfig) -> list[Problem]:
    problems = []
    for key, route in (("ingress", config.ingress), ("httpRoute", config.httpRoute)):
        for index, path in enumerate(route.extraPaths):
            where = f"{key}.extraPaths.{index}"
            if path.rstrip("/") == "":
                problems.append((where, ("/ routes every path, and the allow-list would then answer every route vLLM "
                                         "mounts (with the key); list the paths clients need, e.g. /tokenize"), {key}))
            elif path.rstrip("/") in OPEN_PATHS and not config.allowUnauthenticated:
                problems.append((where, (f"{path} is answered without the API key (the probes and Prometheus read "
                                         "it in the cluster); publishing it outside needs allowUnauthenticated: true"),
                                 {key, "allowUnauthenticated"}))
    return problems


def _host_network(config: ServingConfig) -> list[Problem]:
    if not (config.server.network.hostNetwork and config.networkPolicy.enabled):
        return []
    return [(
        "server.network.hostNetwork",
        ("a NetworkPolicy does not apply to pods in the node's network namespace (Kubernetes' NetworkPolicy: "
        "host-network pods are not selected by podSelector), so networkPolicy would admit everyone to port 8000. "
        "Turn hostNetwork off (RDMA works without it on most setups), or networkPolicy off and limit access at the nodes"),
        {"server.network", "networkPolicy"},
    )]


def _network_policy_purposes(config: ServingConfig) -> list[Problem]:
    policy = config.networkPolicy
    problems = [
        (f"networkPolicy.{key}.{index}", f"{namespace!r} is not a namespace name", {"networkPolicy"})
        for key in ("ingressNamespaces", "monitoringNamespaces")
        for index, namespace in enumerate(getattr(policy, key))
        if not is_dns1123_label(namespace)
    ]
    if policy.ingressNamespaces and not (config.ingress.enabled or config.httpRoute.enabled):
        problems.append((
            "networkPolicy.ingressNamespaces",
            ("admits an ingress controller or Gateway, but neither ingress nor httpRoute is enabled: nothing is "
            "forwarded from there. Enable one, or list in-cluster clients in networkPolicy.allowedNamespaces"),
            {"networkPolicy", "ingress", "httpRoute"},
        ))
    return problems


def _download_into_a_read_only_volume(config: ServingConfig) -> list[Problem]:
    """A claim that offers ReadOnlyMany alone cannot be mounted read-write: the download Job, which
    writes the model (and the adapters) into it, could never start."""
    modes = config.model.volume.accessModes
    if set(modes) != {"ReadOnlyMany"} or not (config.model.source or config.lora.adapters):
        return []
    downloads = "model.source is set" if config.model.source else "lora.adapters are set"
    return [(
        "model.volume.accessModes",
        (f"ReadOnlyMany alone cannot be written, but {downloads}: the download Job writes into the volume and "
        "would never start. Use ReadWriteMany (written once, read by every node), or a pre-filled "
        'model.volume.existingClaim with model.source "" and no lora.adapters'),
        {"model.volume.accessModes", "model.source", "lora.adapters"},
    )]


SURFACE_RULES: tuple[Callable[[ServingConfig], list[Problem]], ...] = (
    _surface_flags,
    _surface_env,
    _exposed_paths,
    _host_network,
    _network_policy_purposes,
    _download_into_a_read_only_volume,
)
