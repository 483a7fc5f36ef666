"""Contract with every supported vLLM release: its own argument parser accepts the command line of
every example stack, rendered for that release.

For each release with an engine profile (components/engine) and each example stack, this renders
the stack with `image.tag: v<release>`, takes the server's argv (the Deployment's container, or a
LeaderWorkerSet's leader and worker), expands `$(LWS_...)` as the kubelet does from the environment
LeaderWorkerSet injects, and hands them to that release's parser in an environment of its own
(tests/contract/parse_with_vllm.py, with the release's `vllm` first on PYTHONPATH). It also checks
that the program's own reading of extraArgs (components/config/engine_rules.py) refuses what each
parser refuses and accepts what it accepts. No GPU is needed: only the parser and the engine
arguments are built.

Not part of the fast suite (installing vLLM takes minutes): `.ci/run` runs it as its own step,
with VLLM_CONTRACT=1; `tests/contract/vllm_env.sh` makes the environment (once).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config.engine_rules import release_problem
from components.config.vllm_flags import read_argument
from components.engine import load_profile, supported_versions
from tests.examples import EXAMPLE_STACK_FILES
from vllm_serving.render import render

if os.environ.get("VLLM_CONTRACT") != "1":
    pytest.skip("the vLLM contract runs as its own step of .ci/run (VLLM_CONTRACT=1)", allow_module_level=True)

HERE = Path(__file__).parent
VLLM_VENV = Path(os.environ.get("VLLM_CONTRACT_VENV", HERE.parents[1] / ".venv-vllm-contract"))
VLLM_PYTHON = VLLM_VENV / "bin" / "python"
# What LeaderWorkerSet puts in each container (pkg/utils/pod/pod_utils.go, AddLWSVariables): the
# leader's DNS name, the pod's index in its group. A worker's index is 1 or more.
LWS_ENV = {"LWS_LEADER_ADDRESS": "llama-3-1-405b-group-0.llama-3-1-405b-group.llm", "LWS_WORKER_INDEX": "1", "LWS_GROUP_SIZE": "2"}
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


def for_release(stack_file: Path, version: str, directory: Path) -> Path:
    """A copy of the stack file with image.tag set to the release (and no server.engineVersion)."""
    document = yaml.safe_load(stack_file.read_text())
    config = document["config"]
    config["vllm-serving:image"] = {**(config.get("vllm-serving:image") or {}), "tag": f"v{version}"}
    (config.get("vllm-serving:server") or {}).pop("engineVersion", None)
    copy = directory / version / stack_file.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(yaml.safe_dump(document))
    return copy


def rendered_argvs(stack_file: Path) -> list[dict[str, Any]]:
    """Every server argv the stack renders: the Deployment's, or the leader's and a worker's."""
    rendering = render(stack_file)
    cases = []
    for resource in rendering.by_kind("Deployment"):
        if resource.inputs["metadata"]["labels"].get("app.kubernetes.io/component") != "server":
            continue  # routing's endpoint picker: not vLLM
        spec = resource.inputs["spec"]["template"]["spec"]
        cases.append(_argv(f"{stack_file.stem} Deployment", spec["containers"][0], {}))
    for resource in rendering.by_kind("LeaderWorkerSet"):
        template = resource.inputs["spec"]["leaderWorkerTemplate"]
        for role in ("leaderTemplate", "workerTemplate"):
            container = template[role]["spec"]["containers"][0]
            env = dict(LWS_ENV, LWS_WORKER_INDEX="0" if role == "leaderTemplate" else LWS_ENV["LWS_WORKER_INDEX"])
            cases.append(_argv(f"{stack_file.stem} LeaderWorkerSet {role}", container, env))
    return cases


def parse(version: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """parse_with_vllm.py on `cases`, with `version`'s vllm first on PYTHONPATH. VLLM_TARGET_DEVICE=cpu:
    without a GPU, vLLM's platform detection finds none, and building the parser fails in
    DeviceConfig (vllm/config/device.py: 'Failed to infer device type'); the CPU platform parses the
    same flags."""
    release = VLLM_VENV / "releases" / version
    assert (release / ".complete").is_file(), f"no vLLM {version} at {release}: run tests/contract/vllm_env.sh"
    result = subprocess.run(
        [str(VLLM_PYTHON), str(HERE / "parse_with_vllm.py")],
        input=json.dumps(cases), capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "VLLM_TARGET_DEVICE": "cpu", "PYTHONPATH": str(release)},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    answer = json.loads(result.stdout)
    # The swapped wheel is the one that ran: vLLM's own version, not the directory's name.
    assert answer["version"] == version, answer["version"]
    assert len(answer["results"]) == len(cases)
    return answer["results"]


@functools.cache
def example_cases(version: str, directory: Path) -> tuple[dict[str, Any], ...]:
    return tuple(case for stack in EXAMPLE_STACK_FILES for case in rendered_argvs(for_release(stack, version, directory)))


# The harness itself can fail: a misspelt flag and a non-integer node rank are refused.
BAD_ARGVS = [
    {"name": "misspelt", "argv": ["--model=/model", "--tensor-paralel-size=8"]},
    {"name": "unexpanded rank", "argv": ["--model=/model", "--nnodes=2", "--node-rank=$(LWS_WORKER_INDEX)"]},
]


@functools.cache
def parsed(version: str, directory: Path) -> dict[str, str | None]:
    """Every case of this module for one release, in one run of its parser (importing vLLM takes
    most of the time): case name -> the parser's error, or None."""
    cases = [*example_cases(version, directory), *BAD_ARGVS, *extra_arg_cases()]
    return {result["name"]: result["error"] for result in parse(version, cases)}


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> Path:
    """Where the stacks rendered for each release are written, once for the module."""
    return tmp_path_factory.mktemp("stacks")


def test_every_example_stack_renders_a_server(copies):
    for version in supported_versions():
        stacks = {case["name"].split(" ")[0] for case in example_cases(version, copies)}
        assert stacks == {stack.stem for stack in EXAMPLE_STACK_FILES}


@pytest.mark.parametrize("version", supported_versions())
def test_each_releases_parser_accepts_every_rendered_argv(version, copies):
    assert VLLM_PYTHON.is_file(), f"no vLLM environment at {VLLM_PYTHON}: run tests/contract/vllm_env.sh"
    cases = example_cases(version, copies)
    assert any("--headless" in case["argv"] for case in cases), "no multi-node worker among the examples"
    errors = parsed(version, copies)
    refused = {case["name"]: errors[case["name"]] for case in cases if errors[case["name"]]}
    assert refused == {}, "\n".join(f"vLLM {version}: {name}: {error}" for name, error in refused.items())


@pytest.mark.parametrize("version", supported_versions())
def test_each_releases_parser_refuses_a_bad_argv(version, copies):
    errors = parsed(version, copies)
    assert all(errors[case["name"]] for case in BAD_ARGVS)


# extraArgs items whose fate differs by release or by value: the program's verdict (refused or not,
# components/config/engine_rules.py) must be the parser's own.
EXTRA_ARGS = [
    "--max-num-seqz=8", "--max-num-seqs=8", "--max-num-seqs=eight", "--checkpoint-prepare-on-startup",
    "--enable-extensible-kv-cache", "--disable-extensible-kv-cache", "--no-enable-extensible-kv-cache",
    "--disable-log-requests", "--enable-log-requests", "--no-enable-log-requests",
    "--enforce-eager", "--no-enforce-eager", "--enforce-eager=true", "--enable-chunked", "--block-size=x",
    "--block-size=32", "--max-num-batched-tokens=8k", "--max-num-batched-tokens=8K",
    "--max-num-batched-tokens=8.5K", "--max-num-batched-tokens=8.5k", "--max-model-len=auto", "--max-model-len=-1",
    "--max-model-len=32k", "--max-lora-rank=12", "--max-lora-rank=16", "--cpu-offload-gb=1.5", "--cpu-offload-gb=x",
    "--chat-template-content-format=xml", "--chat-template-content-format=openai", "--seed=None", "--seed=7",
    "--num-gpu-blocks-override=None", "--scheduling-policy=priority", "--scheduling-policy=lifo",
    "--kv-cache-memory-bytes=8G", "--dtype=bfloat16", "--tool-call-parser=hermes", "--max-num-batched-tokens",
    "--shuffle-safetensors-files", "--max-num-inflight-kv-loads=4", "--cache-aware-admission-window=2",
]


def extra_arg_cases() -> list[dict[str, Any]]:
    return [{"name": argument, "argv": ["--model=/model", argument], "parse_only": True} for argument in EXTRA_ARGS]


@pytest.mark.parametrize("version", supported_versions())
def test_the_programs_extra_args_check_agrees_with_each_parser(version, copies):
    profile = load_profile(version)
    errors = parsed(version, copies)
    disagree = []
    for argument in EXTRA_ARGS:
        ours = release_problem(argument, read_argument(argument, profile.option_strings), profile)
        if (ours is None) != (errors[argument] is None):
            disagree.append(f"{argument}: vLLM {version} says {errors[argument]!r}, the program {ours!r}")
    assert disagree == [], "\n".join(disagree)
