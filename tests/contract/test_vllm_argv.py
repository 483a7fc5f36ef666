"""Contract with vLLM 0.33: its own argument parser accepts the command line of every example stack.

For each example stack this renders the server's argv (the Deployment's container, or a
LeaderWorkerSet's leader and worker), expands `$(LWS_...)` as the kubelet does from the
environment LeaderWorkerSet injects, and hands them to vLLM's parser in an environment of its
own (tests/contract/parse_with_vllm.py). No GPU is needed: only the parser and the engine
arguments are built.

Not part of the fast suite (installing vLLM takes minutes): `.ci/run` runs it as its own step,
with VLLM_CONTRACT=1; `tests/contract/vllm_env.sh` makes the environment (once).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.examples import EXAMPLE_STACK_FILES
from vllm_serving.render import render

if os.environ.get("VLLM_CONTRACT") != "1":
    pytest.skip("the vLLM contract runs as its own step of .ci/run (VLLM_CONTRACT=1)", allow_module_level=True)

HERE = Path(__file__).parent
VLLM_PYTHON = Path(os.environ.get("VLLM_CONTRACT_VENV", HERE.parents[1] / ".venv-vllm-contract")) / "bin" / "python"
# What LeaderWorkerSet puts in each container (pkg/utils/pod/pod_utils.go, AddLWSVariables): the
# leader's DNS name, the pod's index in its group. A worker's index is 1 or more.
LWS_ENV = {"LWS_LEADER_ADDRESS": "llama-3-1-405b-0.llama-3-1-405b.llm", "LWS_WORKER_INDEX": "1", "LWS_GROUP_SIZE": "2"}
VLLM_SERVE = ["vllm", "serve"]
API_SERVER_MODULE = ["python3", "-m", "vllm.entrypoints.openai.api_server"]


def expand(argument: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in args (a reference to an unknown variable is left as is)."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), argument)


def _argv(name: str, container: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    command = container["command"]
    # Both launches reach the same parser: `vllm serve` and the api_server module (make_arg_parser).
    assert command in (VLLM_SERVE, API_SERVER_MODULE), f"{name}: unexpected command {command}"
    return {"name": name, "argv": [expand(argument, env) for argument in container["args"]]}


def rendered_argvs(stack_file: Path) -> list[dict[str, Any]]:
    """Every server argv the stack renders: the Deployment's, or the leader's and a worker's."""
    rendering = render(stack_file)
    cases = []
    for resource in rendering.by_kind("Deployment"):
        spec = resource.inputs["spec"]["template"]["spec"]
        cases.append(_argv(f"{stack_file.stem} Deployment", spec["containers"][0], {}))
    for resource in rendering.by_kind("LeaderWorkerSet"):
        template = resource.inputs["spec"]["leaderWorkerTemplate"]
        for role in ("leaderTemplate", "workerTemplate"):
            container = template[role]["spec"]["containers"][0]
            env = dict(LWS_ENV, LWS_WORKER_INDEX="0" if role == "leaderTemplate" else LWS_ENV["LWS_WORKER_INDEX"])
            cases.append(_argv(f"{stack_file.stem} LeaderWorkerSet {role}", container, env))
    return cases


def parse(cases: list[dict[str, Any]]) -> subprocess.CompletedProcess:
    """parse_with_vllm.py on `cases`, in the vLLM environment. VLLM_TARGET_DEVICE=cpu: without a GPU,
    vLLM's platform detection finds none, and building the parser fails in DeviceConfig
    (vllm/config/device.py: 'Failed to infer device type'); the CPU platform parses the same flags."""
    return subprocess.run(
        [str(VLLM_PYTHON), str(HERE / "parse_with_vllm.py")],
        input=json.dumps(cases), capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "VLLM_TARGET_DEVICE": "cpu"},
    )


def test_every_example_stack_renders_a_server():
    stacks = {case["name"].split(" ")[0] for stack in EXAMPLE_STACK_FILES for case in rendered_argvs(stack)}
    assert stacks == {stack.stem for stack in EXAMPLE_STACK_FILES}


def test_vllm_parser_accepts_every_rendered_argv():
    assert VLLM_PYTHON.is_file(), f"no vLLM environment at {VLLM_PYTHON}: run tests/contract/vllm_env.sh"
    cases = [case for stack in EXAMPLE_STACK_FILES for case in rendered_argvs(stack)]
    assert any("--headless" in case["argv"] for case in cases), "no multi-node worker among the examples"
    result = parse(cases)
    assert result.returncode == 0, result.stderr[-4000:]
    refused = {r["name"]: r["error"] for r in json.loads(result.stdout) if r["error"]}
    assert refused == {}, "\n".join(f"{name}: {error}" for name, error in refused.items())
    assert len(json.loads(result.stdout)) == len(cases)


def test_vllm_parser_refuses_a_bad_argv():
    """The harness itself can fail: a misspelt flag and a non-integer node rank are refused."""
    cases = [
        {"name": "misspelt", "argv": ["--model=/model", "--tensor-paralel-size=8"]},
        {"name": "unexpanded rank", "argv": ["--model=/model", "--nnodes=2", "--node-rank=$(LWS_WORKER_INDEX)"]},
    ]
    result = parse(cases)
    assert result.returncode == 0, result.stderr[-4000:]
    assert all(r["error"] for r in json.loads(result.stdout)), result.stdout
