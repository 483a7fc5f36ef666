"""Which containers run the vLLM server, and what such a container needs: GPUs and probes."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .images import split_image
from .props import GPU_RESOURCE, Props, containers, get, split_words, strings
from .quantity import QuantityError, parse_quantity

# The `vllm` CLI, by name or by path; a word with '=' or other punctuation is an argument, not a program.
_VLLM_PROGRAM = re.compile(r"(?:[\w.+-]*/)*vllm")


def _invokes_vllm(values: Sequence[str]) -> bool:
    words = split_words(values)
    for index, word in enumerate(words):
        if _VLLM_PROGRAM.fullmatch(word) or word.startswith("vllm.entrypoints"):
            return True
        if index > 0 and words[index - 1] == "-m" and (word == "vllm" or word.startswith("vllm.")):
            return True
    return False


def runs_vllm_server(container: Mapping[str, Any]) -> bool:
    """Whether a container runs the vLLM server.

    Either its command (or, without a command, its args) starts vllm, or it runs
    the entrypoint of an image whose repository is vLLM's. A vLLM image with a
    command of its own (a download or a wait-for-model step, say) runs that
    command, not the server, and needs no GPU.
    """
    command = strings(container.get("command"))
    if command:
        return _invokes_vllm(command + strings(container.get("args")))
    if _invokes_vllm(strings(container.get("args"))):
        return True
    image = container.get("image")
    return isinstance(image, str) and "vllm" in split_image(image)[1].lower()


def server_containers(resource_type: str, props: Props) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for where, container in containers(resource_type, props):
        if runs_vllm_server(container):
            yield where, container


def check_vllm_gpu(resource_type: str, props: Props) -> list[str]:
    """A vLLM server asks for a whole number of GPUs, at least one."""
    violations = []
    for where, container in server_containers(resource_type, props):
        limit = get(container, "resources", "limits", GPU_RESOURCE)
        if limit is None:
            violations.append(
                f"{where} runs vLLM without a {GPU_RESOURCE} limit: it would be scheduled on a node "
                f"without a GPU and fail to start; set resources.limits.{GPU_RESOURCE} to 1 or more"
            )
            continue
        try:
            count = parse_quantity(limit)
        except QuantityError as error:
            violations.append(f"{where}: {GPU_RESOURCE} limit {error}")
            continue
        if count.denominator != 1 or count < 1:
            violations.append(
                f"{where} runs vLLM with a {GPU_RESOURCE} limit of {limit!r}: GPUs are whole devices "
                "(Kubernetes refuses fractions) and vLLM needs at least one; use an integer of 1 or more"
            )
    return violations



_PROBES = ("startupProbe", "readinessProbe", "livenessProbe")

_PROBE_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")



def _headless(container: Mapping[str, Any]) -> bool:
    """A `--headless` vLLM (a multi-node group's worker) serves no HTTP: it only joins its leader's
    torch.distributed group (vllm/entrypoints/cli/serve.py, run_headless), so there is nothing to
    probe; the group restarts as a whole when it fails (LeaderWorkerSet's RecreateGroupOnPodRestart)."""
    return "--headless" in split_words(strings(container.get("command")) + strings(container.get("args")))


def check_vllm_probes(resource_type: str, props: Props) -> list[str]:
    """A vLLM server has startup, readiness and liveness probes."""
    why = {
        "startupProbe": "without it, a liveness probe kills the server while it is still loading the weights",
        "readinessProbe": "without it, the Service sends requests to a server that cannot answer yet",
        "livenessProbe": "without it, a hung server (e.g. a stuck GPU) is never restarted",
    }
    violations = []
    for where, container in server_containers(resource_type, props):
        if _headless(container):
            continue
        for probe in _PROBES:
            value = container.get(probe)
            if not isinstance(value, Mapping) or not any(handler in value for handler in _PROBE_HANDLERS):
                violations.append(f"{where} runs vLLM without a {probe} (e.g. httpGet /health): {why[probe]}")
    return violations
