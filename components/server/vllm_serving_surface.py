"""The server's allow-list: the only way in to vLLM's HTTP server, whatever vLLM's flags.

Shipped unchanged to the server pod (a ConfigMap mounted on PYTHONPATH) and handed to vLLM by its
own `--middleware vllm_serving_surface.SurfaceGuard` option. vLLM adds each `--middleware` class
with `app.add_middleware` after its own (vllm/entrypoints/serve/middleware/register.py,
`init_entrypoints_middleware`), and Starlette runs the last one added first, so this guard sees
every request before vLLM's CORS, key check and routes do.

Deny by default: a path answers only when it is one of
- the probe paths (`/health` for startup and liveness, `/ready` for readiness), open;
- `/metrics`, open when the stack has something that scrapes it, else only with the key;
- under one of the prefixes the stack's features need (`/v1`, and the exposure's extra paths),
  only with the key when the stack has one.
Anything else is 404, key or no key: a route a vLLM release adds is closed until the program
knows it is needed. The path checked is the ASGI scope's `path`, the one Starlette routes on,
with no `root_path` removed (vLLM's own guard removes it with a plain prefix removal, which
`--root-path=/v` turns into a way past the key).

The drain: the pod's preStop hook creates `draining` in the drain directory, waits, then creates
`stopping` just before the kubelet sends SIGTERM. From `draining` on, `/ready` answers 503 so that
whatever honours readiness stops sending; from `stopping` on, a new request gets 503 with
`Retry-After` (vLLM would answer 500, "cannot schedule new futures after shutdown"), while the
requests already in flight go on untouched.

Pure ASGI, standard library only: the response is passed through as vLLM sends it (no buffering,
no wrapping of `send`), so a stream costs nothing per token; the check costs one dictionary
lookup, a few string comparisons and, for a keyed path, one SHA-256 per request.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# The policy, as JSON, from the pod's environment (components/server/surface.py renders it).
POLICY_ENV = "VLLM_SERVING_SURFACE"
# The key vLLM itself reads (vllm/envs.py, VLLM_API_KEY); the pod gets it from the stack's Secret.
KEY_ENV = "VLLM_API_KEY"
HEALTH_PATH = "/health"
READY_PATH = "/ready"
METRICS_PATH = "/metrics"
DRAINING = "draining"
STOPPING = "stopping"


class SurfacePolicyError(ValueError):
    """The policy in the environment is missing or wrong: the server must not start unguarded."""


def _prefix_match(path: str, prefixes: tuple[str, ...]) -> bool:
    """`/v1` admits `/v1` and `/v1/...`, never `/v1x`."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


class SurfaceGuard:
    def __init__(self, app: App, policy: dict[str, Any] | None = None, key: str | None = None) -> None:
        self.app = app
        if policy is None:
            raw = os.environ.get(POLICY_ENV)
            if not raw:
                raise SurfacePolicyError(f"{POLICY_ENV} is not set: the server refuses to start without its allow-list")
            policy = json.loads(raw)
        assert policy is not None
        try:
            self.keyed_prefixes = tuple(str(prefix).rstrip("/") for prefix in policy["keyedPrefixes"])
            self.metrics_open = bool(policy["metricsOpen"])
            require_key = bool(policy["requireKey"])
            self.drain_dir = str(policy["drainDir"])
            self.retry_after = str(int(policy["retryAfterSeconds"]))
        except (KeyError, TypeError, ValueError) as error:
            raise SurfacePolicyError(f"{POLICY_ENV} is not a valid policy: {error!r}") from error
        if any(not prefix.startswith("/") for prefix in self.keyed_prefixes):
            raise SurfacePolicyError(f"{POLICY_ENV}: every keyed prefix must start with /: {self.keyed_prefixes}")
        key = os.environ.get(KEY_ENV, "") if key is None else key
        if require_key and not key:
            # Fail closed: a stack with a key never serves without one because the Secret was empty.
            raise SurfacePolicyError(f"the stack requires an API key but {KEY_ENV} is empty")
        self.key_digest = hashlib.sha256(key.encode()).digest() if key else None
        self.draining_file = os.path.join(self.drain_dir, DRAINING)
        self.stopping_file = os.path.join(self.drain_dir, STOPPING)

    def _has_key(self, scope: Scope) -> bool:
        if self.key_digest is None:
            return True
        for name, value in scope.get("headers") or ():
            if name.lower() == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return False
                # Both sides hashed first: compare_digest is constant-time only for equal lengths.
                return secrets.compare_digest(hashlib.sha256(token.strip().encode("latin-1")).digest(), self.key_digest)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        path: str = scope["path"]
        if path == HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        if path == READY_PATH:
            if os.path.exists(self.draining_file):
                await _answer(scope, send, 503, "draining: this pod takes no new requests", self.retry_after)
                return
            # Ready means vLLM's own health (the engine is alive) and not draining.
            await self.app({**scope, "path": HEALTH_PATH, "raw_path": HEALTH_PATH.encode()}, receive, send)
            return
        if path == METRICS_PATH:
            allowed, keyed = True, not self.metrics_open
        else:
            allowed, keyed = _prefix_match(path, self.keyed_prefixes), True
        if not allowed:
            await _answer(scope, send, 404, f"{path} is not served here: this server serves the paths the stack exposes only")
            return
        # A CORS preflight never carries the key (browsers strip Authorization from it); it runs no route.
        preflight = scope.get("method") == "OPTIONS"
        if keyed and not preflight and not self._has_key(scope):
            await _answer(scope, send, 401, "a valid API key is required: send the header Authorization: Bearer <key>")
            return
        if os.path.exists(self.stopping_file):
            await _answer(scope, send, 503, "this pod is shutting down: retry, another pod or its replacement will answer", self.retry_after)
            return
        await self.app(scope, receive, send)


async def _answer(scope: Scope, send: Send, status: int, message: str, retry_after: str | None = None) -> None:
    """An OpenAI-style error body (what clients of /v1 parse), or a refused WebSocket handshake."""
    if scope["type"] == "websocket":
        # Closing before accepting makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": 1008 if status in (401, 404) else 1013, "reason": message[:120]})
        return
    error_type = {401: "Unauthorized", 404: "NotFound", 503: "ServiceUnavailable"}[status]
    body = json.dumps({"error": {"message": message, "type": error_type, "param": None, "code": status}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if retry_after is not None:
        headers.append((b"retry-after", retry_after.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
