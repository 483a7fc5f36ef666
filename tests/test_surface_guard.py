"""The allow-list the server pod runs in front of vLLM (components/server/vllm_serving_surface.py),
driven as vLLM's app drives it: plain ASGI calls, with a stand-in app behind it that records what
reached it and streams its answer in chunks. The real server is checked in tests/surface/."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from components.server.vllm_serving_surface import DRAINING, POLICY_ENV, STOPPING, SurfaceGuard, SurfacePolicyError

KEY = "s3cret-key"
CHUNKS = [b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n"]


class Backend:
    """Stands in for vLLM's app: records each scope it is handed and streams CHUNKS."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.sends: list[Any] = []

    async def __call__(self, scope, receive, send) -> None:  # noqa: ARG002 (an ASGI app's signature)
        self.seen.append(dict(scope))
        self.sends.append(send)
        if scope["type"] == "lifespan":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for chunk in CHUNKS:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def run(coroutine) -> None:
    """On a loop of its own: asyncio.run would leave the thread without a current loop, which the
    Pulumi mocks of the tests that follow need."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coroutine)
    finally:
        loop.close()


def policy(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    return {"keyedPrefixes": ["/v1"], "metricsOpen": False, "requireKey": True, "drainDir": str(tmp_path),
            "retryAfterSeconds": 5, **changes}


def guard(tmp_path: Path, key: str = KEY, **changes: Any) -> tuple[SurfaceGuard, Backend]:
    backend = Backend()
    return SurfaceGuard(backend, policy(tmp_path, **changes), key=key), backend


def call(app, path: str, method: str = "GET", headers: dict[str, str] | None = None, *, kind: str = "http",
         root_path: str = "") -> tuple[int | None, dict[str, str], bytes, list[dict[str, Any]]]:
    """One request: (status, headers, body, messages sent)."""
    scope = {
        "type": kind, "path": path, "raw_path": path.encode(), "root_path": root_path, "method": method,
        "headers": [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    run(app(scope, receive, send))
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = {k.decode(): v.decode() for k, v in (start or {}).get("headers", [])}
    return (start or {}).get("status"), response_headers, body, sent


def bearer(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keyed_path_needs_the_key(tmp_path):
    app, backend = guard(tmp_path)
    for headers in ({}, bearer("wrong"), {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        status, response_headers, body, _ = call(app, "/v1/chat/completions", "POST", headers)
        assert status == 401, headers
        assert response_headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in json.loads(body)["error"]["message"]
    assert backend.seen == []
    assert call(app, "/v1/chat/completions", "POST", bearer())[0] == 200
    assert call(app, "/v1", "GET", bearer())[0] == 200
    assert len(backend.seen) == 2


@pytest.mark.parametrize("path", ["/invocations", "/generative_scoring", "/tokenize", "/scale_elastic_ep", "/docs",
                                  "/openapi.json", "/adapters", "/v1x/models", "/v", "/", "//v1/models", "/V1/models"])
def test_every_other_path_is_not_found_key_or_not(tmp_path, path):
    app, backend = guard(tmp_path)
    for headers in ({}, bearer()):
        assert call(app, path, "POST", headers)[0] == 404
    assert backend.seen == []


def test_probes_are_open_and_ready_is_health(tmp_path):
    app, backend = guard(tmp_path)
    assert call(app, "/health")[0] == 200
    assert call(app, "/ready")[0] == 200
    # /ready is vLLM's own /health (the engine's liveness) as long as the pod is not draining.
    assert [scope["path"] for scope in backend.seen] == ["/health", "/health"]
    assert backend.seen[1]["raw_path"] == b"/health"


def test_metrics_open_only_when_configured(tmp_path):
    closed, _ = guard(tmp_path)
    assert call(closed, "/metrics")[0] == 401
    assert call(closed, "/metrics", headers=bearer())[0] == 200
    opened, _ = guard(tmp_path, metricsOpen=True)
    assert call(opened, "/metrics")[0] == 200


def test_root_path_is_never_removed(tmp_path):
    """vLLM's guard strips root_path with a prefix removal: /v1/... becomes 1/..., unguarded."""
    app, backend = guard(tmp_path)
    assert call(app, "/v1/models", root_path="/v")[0] == 401
    assert call(app, "/v1/invocations", root_path="/v1")[0] == 401
    assert backend.seen == []


def test_the_stream_is_passed_through_untouched(tmp_path):
    app, backend = guard(tmp_path)
    status, _, body, sent = call(app, "/v1/completions", "POST", bearer())
    assert (status, body) == (200, b"".join(CHUNKS))
    # Each chunk is its own message, as the app sent it: nothing buffered.
    assert [m["body"] for m in sent if m["type"] == "http.response.body"] == [*CHUNKS, b""]
    # The app got the server's own send, not a wrapper: nothing is added per token.
    assert backend.sends[0].__qualname__.endswith("call.<locals>.send")


def test_extra_prefixes_and_no_key(tmp_path):
    app, backend = guard(tmp_path, key="", keyedPrefixes=["/v1", "/tokenize"], requireKey=False)
    assert call(app, "/tokenize", "POST")[0] == 200
    assert call(app, "/v1/models")[0] == 200
    assert call(app, "/invocations", "POST")[0] == 404
    assert [scope["path"] for scope in backend.seen] == ["/tokenize", "/v1/models"]


def test_drain_fails_readiness_then_refuses_new_requests(tmp_path):
    app, backend = guard(tmp_path)
    (tmp_path / DRAINING).touch()
    status, headers, body, _ = call(app, "/ready")
    assert (status, headers["retry-after"]) == (503, "5")
    assert "draining" in json.loads(body)["error"]["message"]
    # Until the hook's wait is over, the pod still serves: kube-proxy and ingress catch up meanwhile.
    assert call(app, "/v1/completions", "POST", bearer())[0] == 200
    (tmp_path / STOPPING).touch()
    status, headers, body, _ = call(app, "/v1/completions", "POST", bearer())
    assert (status, headers["retry-after"]) == (503, "5")
    assert json.loads(body)["error"]["type"] == "ServiceUnavailable"
    # Liveness stays vLLM's: a draining pod is not restarted.
    assert call(app, "/health")[0] == 200
    assert [scope["path"] for scope in backend.seen] == ["/v1/completions", "/health"]


def test_websocket_refused_before_accept(tmp_path):
    app, backend = guard(tmp_path)
    _, _, _, sent = call(app, "/v1/realtime", kind="websocket")
    assert sent[0]["type"] == "websocket.close" and sent[0]["code"] == 1008
    _, _, _, sent = call(app, "/v1/realtime", kind="websocket", headers=bearer())
    assert backend.seen[0]["type"] == "websocket"


def test_preflight_passes_only_where_the_key_would(tmp_path):
    app, backend = guard(tmp_path)
    assert call(app, "/v1/chat/completions", "OPTIONS")[0] == 200
    assert call(app, "/invocations", "OPTIONS")[0] == 404
    assert [scope["method"] for scope in backend.seen] == ["OPTIONS"]


def test_lifespan_passes(tmp_path):
    app, backend = guard(tmp_path)
    run(app({"type": "lifespan"}, None, None))
    assert backend.seen == [{"type": "lifespan"}]


def test_fails_closed(tmp_path, monkeypatch):
    with pytest.raises(SurfacePolicyError, match="VLLM_API_KEY is empty"):
        guard(tmp_path, key="")
    monkeypatch.delenv(POLICY_ENV, raising=False)
    with pytest.raises(SurfacePolicyError, match="refuses to start"):
        SurfaceGuard(Backend())
    monkeypatch.setenv(POLICY_ENV, json.dumps({"keyedPrefixes": ["/v1"]}))
    with pytest.raises(SurfacePolicyError, match="not a valid policy"):
        SurfaceGuard(Backend())
    monkeypatch.setenv(POLICY_ENV, json.dumps(policy(tmp_path)))
    monkeypatch.setenv("VLLM_API_KEY", KEY)
    app = SurfaceGuard(Backend())
    assert call(app, "/v1/models", headers=bearer())[0] == 200
