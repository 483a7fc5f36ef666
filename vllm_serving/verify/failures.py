"""What went wrong during a check, in one line a user can act on, and the exit code."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

EXIT_OK = 0
# The endpoint answered wrongly or not at all.
EXIT_FAILED = 1
# There was nothing to check: no URL could be worked out from the arguments.
EXIT_USAGE = 2
SERVER_PORT = 8000


class VerifyFailure(Exception):
    """One line saying what is wrong, and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


def in_cluster_hint(url: str) -> str:
    """How to reach a Service address from a laptop, with its own name and namespace filled in."""
    host = urlsplit(url).hostname or ""
    labels = host.split(".")
    if len(labels) >= 3 and labels[2] == "svc":
        name, namespace = labels[0], labels[1]
        return (
            f"{host} is an in-cluster address that resolves only inside the cluster: run "
            f"`kubectl port-forward -n {namespace} svc/{name} {SERVER_PORT}:{SERVER_PORT}` "
            f"and pass --url http://localhost:{SERVER_PORT}/v1"
        )
    return ""


def _root_causes(error: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _one_line(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _server_message(error: Any) -> str:
    """The server's own words: vLLM answers {"message": ...}, OpenAI {"error": {"message": ...}}."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return _one_line(inner["message"])
        if body.get("message"):
            return _one_line(body["message"])
        if isinstance(inner, str) and inner:
            return _one_line(inner)
        return _one_line(json.dumps(body))
    if isinstance(body, str) and body.strip():
        return _one_line(body)
    return _one_line(getattr(error, "message", "") or error)


def _connection_problem(error: BaseException, url: str, timeout: float) -> str:
    import openai

    parts = urlsplit(url)
    address = parts.netloc
    causes = _root_causes(error)
    if isinstance(error, openai.APITimeoutError) or any(isinstance(e, TimeoutError) for e in causes):
        if any(type(e).__name__ == "ConnectTimeout" for e in causes):
            return f"cannot reach {url}: no connection within {timeout:g} s"
        return (
            f"{url} accepted the connection but sent no answer within {timeout:g} s "
            "(raise --timeout if the server is just slow)"
        )
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return f"cannot reach {url}: connection refused (nothing listens at {address})"
        if isinstance(cause, socket.gaierror):
            hint = in_cluster_hint(url)
            return f"cannot reach {url}: the host name {parts.hostname} does not resolve" + (f" ({hint})" if hint else "")
    # E.g. a server that dies mid-answer: the connection was made, so "cannot reach" would mislead.
    deepest = causes[-1]
    return f"connection to {url} failed: {_one_line(deepest) or type(deepest).__name__}"


def describe_failure(error: BaseException, step: str, url: str, timeout: float, has_key: bool) -> str:
    """One line for any error the OpenAI client raises during `step`."""
    import openai

    if isinstance(error, openai.AuthenticationError):
        if has_key:
            return f"{step}: HTTP 401, the API key was rejected: pass the server's key with --api-key"
        return (
            f"{step}: HTTP 401, the endpoint requires an API key: pass it with --api-key "
            "(or set VLLM_API_KEY)"
        )
    if isinstance(error, openai.APIConnectionError):
        return _connection_problem(error, url, timeout)
    if isinstance(error, openai.APIStatusError):
        message = f"{step}: HTTP {error.status_code}: {_server_message(error)}"
        if error.status_code == 404 and step.startswith("listing"):
            message += f" (is {url} the OpenAI base URL? vLLM serves it under /v1)"
        return message
    if isinstance(error, openai.APIError):
        # An error event inside an accepted stream, as vLLM sends when generation fails midway.
        return f"{step}: the server reported an error: {_server_message(error)}"
    return f"{step}: unexpected answer from {url}: {_one_line(error) or type(error).__name__}"
