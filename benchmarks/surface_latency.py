"""What the server's allow-list (components/server/vllm_serving_surface.py) adds per token and per request.

Two measurements:

1. The real server (vLLM's CPU build on the tiny model of tests/serve/tiny_model.py), started
   from the chart example's rendered argv and env, alternately with the allow-list and without it
   (its --middleware and env removed, nothing else changed), one server at a time, the order
   swapped each round. Each start serves warm-up requests, then N streamed completions of T tokens
   (ignore_eos); per request: the time to the first token and the whole stream's time per token. Printed per round: the guarded/plain ratios of the median per-token time and of the
   median time to first token; over the rounds: min and median of each ratio.
2. The allow-list alone, in process: one request through it to a stand-in app that answers at
   once, against the stand-in app called directly, many times: the added microseconds per request.

Run with the repository's .venv Python (it renders the stack) and VLLM_SURFACE_PYTHON naming the
vLLM CPU environment's Python:

    VLLM_SURFACE_PYTHON=/path/to/vllm-cpu/bin/python .venv/bin/python benchmarks/surface_latency.py --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.server.surface import POLICY_ENV, PYTHONPATH_ENV  # noqa: E402 (after the path)
from components.server.vllm_serving_surface import SurfaceGuard  # noqa: E402
from tests.conftest import HF_MODEL, container, render_values  # noqa: E402
from tests.surface import launcher  # noqa: E402


def stream_once(server: launcher.Server, tokens: int) -> tuple[float, float]:
    """(seconds to the first token, seconds per token over the whole stream) of one streamed completion.

    Read with read1, which returns whatever bytes have arrived: a line iterator over the response
    would wait for a full buffer and see every token at once."""
    body = {"model": HF_MODEL["deployName"], "prompt": "Hello", "max_tokens": tokens, "ignore_eos": True, "stream": True}
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    started = time.perf_counter()
    connection.request("POST", "/v1/completions", body=json.dumps(body),
                       headers={"content-type": "application/json", "Authorization": f"Bearer {launcher.KEY}"})
    response = connection.getresponse()
    arrivals, pending = [], b""
    while chunk := response.read1(65536):
        now = time.perf_counter()
        pending += chunk
        *events, pending = pending.split(b"\n\n")
        arrivals += [now for event in events if event.startswith(b"data: {")]
    connection.close()
    if not arrivals:
        raise RuntimeError("nothing streamed")
    # Per token over the whole stream: vLLM merges the tokens of several engine steps into one event
    # when the API server lags the engine (RequestOutputCollector), so the gaps between events are
    # no per-token figure on a busy machine.
    return arrivals[0] - started, (arrivals[-1] - started) / tokens


def serve_and_measure(guarded: bool, work: Path, requests: int, tokens: int) -> tuple[float, float]:
    """Median (first token, per token) over `requests` streams of one server start."""
    rendered = container(render_values({"model": HF_MODEL, "apiKeySecret": {"name": "key"}, "checkSecrets": False}),
                         "Deployment", "vllm")
    args, env_vars = rendered["args"], rendered["env"]
    if not guarded:
        args = [a for a in args if not a.startswith("--middleware=")]
        env_vars = [v for v in env_vars if v["name"] not in (POLICY_ENV, PYTHONPATH_ENV)]
    port = launcher.free_port()
    drain = work / "drain"
    drain.mkdir(exist_ok=True)
    server = launcher.start(launcher.local_argv(args, work / "model", port), launcher.local_env(env_vars, drain),
                            port, work / f"server-{'guarded' if guarded else 'plain'}.log")
    try:
        for _ in range(2):
            stream_once(server, tokens)  # warm-up: first compiled shapes, caches
        samples = [stream_once(server, tokens) for _ in range(requests)]
    finally:
        server.stop()
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


async def _in_process(calls: int) -> tuple[float, float]:
    async def app(scope, receive, send):  # noqa: ARG001 (an ASGI app's signature)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    async def send(message):  # noqa: ARG001 (an ASGI send's signature)
        return None

    async def receive():
        return {"type": "http.request", "body": b""}

    with tempfile.TemporaryDirectory() as drain:
        guard = SurfaceGuard(app, {"keyedPrefixes": ["/v1"], "metricsOpen": False, "requireKey": True,
                                   "drainDir": drain, "retryAfterSeconds": 5}, key=launcher.KEY)
        scope = {"type": "http", "path": "/v1/chat/completions", "method": "POST",
                 "headers": [(b"content-type", b"application/json"), (b"authorization", f"Bearer {launcher.KEY}".encode())]}
        timings = {}
        for name, target in (("plain", app), ("guarded", guard)):
            started = time.perf_counter()
            for _ in range(calls):
                await target(scope, receive, send)
            timings[name] = (time.perf_counter() - started) / calls
    return timings["plain"], timings["guarded"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--calls", type=int, default=20000, help="in-process requests per repetition")
    parser.add_argument("--skip-server", action="store_true", help="only the in-process measurement")
    options = parser.parse_args()

    added = []
    for _ in range(5):
        # A loop of its own: asyncio.run would leave none current, which the rendering's Pulumi mocks need.
        loop = asyncio.new_event_loop()
        try:
            plain, guarded = loop.run_until_complete(_in_process(options.calls))
        finally:
            loop.close()
        added.append((guarded - plain) * 1e6)
    print(f"in process: the allow-list adds {min(added):.1f} µs per request (min), {statistics.median(added):.1f} µs "
          f"(median of 5 × {options.calls} calls)")
    if options.skip_server:
        return

    per_token, first_token = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        launcher.make_model(work / "model")
        for round_index in range(options.rounds):
            order = (False, True) if round_index % 2 == 0 else (True, False)
            results = {guarded: serve_and_measure(guarded, work, options.requests, options.tokens) for guarded in order}
            (plain_first, plain_token), (guarded_first, guarded_token) = results[False], results[True]
            per_token.append(guarded_token / plain_token)
            first_token.append(guarded_first / plain_first)
            print(f"round {round_index + 1}: per token {plain_token * 1e3:.2f} ms plain, {guarded_token * 1e3:.2f} ms "
                  f"guarded (ratio {per_token[-1]:.3f}); first token {plain_first * 1e3:.1f} ms plain, "
                  f"{guarded_first * 1e3:.1f} ms guarded (ratio {first_token[-1]:.3f})", flush=True)
    print(f"guarded/plain per token: min {min(per_token):.3f}, median {statistics.median(per_token):.3f}; "
          f"first token: min {min(first_token):.3f}, median {statistics.median(first_token):.3f} "
          f"({options.rounds} rounds, {options.requests} streams of {options.tokens} tokens each)")


if __name__ == "__main__":
    main()
