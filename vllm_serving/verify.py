"""`vllm-serving verify`: check a live OpenAI-compatible endpoint the way the chart's instructions do.

List the models, check the served one is among them, stream one chat completion and
report time to first token, tokens per second and the answer. Every failure a user can
meet in practice (nothing listening, a name that does not resolve, a missing or wrong
API key, a model that is not served, a completion that fails) ends in one line on
stderr and a non-zero exit, never in a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional, TextIO
from urllib.parse import urlsplit, urlunsplit

from .stack_file import PROJECT_ROOT

EXIT_OK = 0
# The endpoint answered wrongly or not at all.
EXIT_FAILED = 1
# There was nothing to check: no URL could be worked out from the arguments.
EXIT_USAGE = 2

DEFAULT_PROMPT = "Say hello in one short sentence."
DEFAULT_TIMEOUT = 60.0
# Enough for a sentence; a smoke test should not hold a GPU for long.
MAX_TOKENS = 64
# vLLM's own examples use this when the server has no --api-key; the client refuses an empty key.
NO_KEY_PLACEHOLDER = "EMPTY"
SERVER_PORT = 8000
PULUMI_TIMEOUT = 60

PORT_FORWARD_HINT = (
    "from outside the cluster run `kubectl port-forward svc/<deployName> 8000:8000` "
    "and pass --url http://localhost:8000/v1"
)


class VerifyFailure(Exception):
    """One line saying what is wrong, and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


# --- where to check --------------------------------------------------------------------------


def _pulumi_output(pulumi: str, name: str, stack: str) -> subprocess.CompletedProcess:
    # The Pulumi CLI finds the project from its working directory; run it from the project
    # so that `verify --stack` works from anywhere.
    return subprocess.run(
        [pulumi, "stack", "output", name, "--stack", stack],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=PULUMI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def resolve_stack(stack: str) -> tuple[str, Optional[str]]:
    """The stack's openaiBaseUrl and servedModelName outputs, as `pulumi up` exported them."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise VerifyFailure(
            f"cannot look up stack {stack!r}: the pulumi CLI is not installed; pass --url instead "
            f"({PORT_FORWARD_HINT})",
            EXIT_USAGE,
        )
    try:
        result = _pulumi_output(pulumi, "openaiBaseUrl", stack)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise VerifyFailure(f"cannot look up stack {stack!r}: {error}; pass --url instead", EXIT_USAGE) from None
    url = result.stdout.strip()
    if result.returncode != 0 or not url:
        reason = _last_line(result.stderr) or _last_line(result.stdout) or f"exit code {result.returncode}"
        raise VerifyFailure(
            f"cannot look up stack {stack!r} with `pulumi stack output openaiBaseUrl --stack {stack}`: "
            f"{reason}; pass --url instead",
            EXIT_USAGE,
        )
    served = None
    try:
        result = _pulumi_output(pulumi, "servedModelName", stack)
        if result.returncode == 0 and result.stdout.strip():
            served = result.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        # The URL is what matters; without the name the first listed model is checked.
        pass
    return url, served


def normalize_url(url: str) -> str:
    """Accept what people paste: `localhost:8000` or the chart's `http://$ENDPOINT` mean the /v1 API."""
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
    if not parts.hostname:
        raise VerifyFailure(f"{url!r} is not a URL (expected e.g. http://localhost:8000/v1)", EXIT_USAGE)
    path = parts.path.rstrip("/")
    # A bare server address: vLLM serves the OpenAI API under /v1, and /models alone would 404.
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


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


# --- what went wrong --------------------------------------------------------------------------


def _root_causes(error: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: Optional[BaseException] = error
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


# --- the checks ---------------------------------------------------------------------------------


@dataclass
class StreamResult:
    answer: str
    first_token_seconds: float
    total_seconds: float
    tokens: int
    # True: `tokens` is the server's usage report; False: the number of content chunks.
    from_usage: bool
    usage_requested: bool


def _rejects_stream_options(error: Any) -> bool:
    # Some vLLM releases forbid unknown request fields, answering 400 with the field named.
    return getattr(error, "status_code", None) in (400, 422) and "stream_options" in _server_message(error)


def stream_chat(client: Any, model: str, prompt: str) -> StreamResult:
    import openai

    request = dict(model=model, messages=[{"role": "user", "content": prompt}], max_tokens=MAX_TOKENS, stream=True)
    usage_requested = True
    start = time.perf_counter()
    try:
        stream = client.chat.completions.create(**request, stream_options={"include_usage": True})
    except openai.APIStatusError as error:
        if not _rejects_stream_options(error):
            raise
        usage_requested = False
        start = time.perf_counter()
        stream = client.chat.completions.create(**request)

    pieces: list[str] = []
    reasoning: list[str] = []
    chunks, usage_tokens = 0, None
    first = last = None
    with stream:
        for chunk in stream:
            if chunk.usage is not None and chunk.usage.completion_tokens is not None:
                usage_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                delta = choice.delta
                text = delta.content or ""
                # Reasoning models stream their thinking under a field of its own before any content.
                thought = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
                thought = thought if isinstance(thought, str) else ""
                if not text and not thought:
                    continue
                now = time.perf_counter()
                first = first if first is not None else now
                last = now
                chunks += 1
                pieces.append(text)
                reasoning.append(thought)
    if first is None or last is None:
        raise VerifyFailure("the chat completion stream ended without generating any text")
    answer = "".join(pieces).strip()
    if not answer:
        answer = "(reasoning only, no answer within the token limit) " + "".join(reasoning).strip()
    return StreamResult(
        answer=answer,
        first_token_seconds=first - start,
        total_seconds=last - start,
        tokens=usage_tokens if usage_tokens is not None else chunks,
        from_usage=usage_tokens is not None,
        usage_requested=usage_requested,
    )


def verify(
    url: str,
    model: Optional[str],
    api_key: Optional[str],
    timeout: float,
    prompt: str,
    out: TextIO,
) -> None:
    """Run the checks, printing as it goes; raises VerifyFailure with the first thing that fails."""
    import openai

    client = openai.OpenAI(
        base_url=url,
        api_key=api_key or NO_KEY_PLACEHOLDER,
        # Retries with backoff would turn a clear failure into a long, silent wait.
        max_retries=0,
        timeout=timeout,
    )
    has_key = bool(api_key)
    print(f"endpoint: {url}", file=out, flush=True)

    step = "listing models (GET /models)"
    try:
        listed = [entry.id for entry in client.models.list().data]
    except openai.OpenAIError as error:
        raise VerifyFailure(describe_failure(error, step, url, timeout, has_key)) from None
    except (AttributeError, TypeError, ValueError, KeyError):
        # The client cannot parse, e.g., an HTML page from a proxy or another service on the port.
        raise VerifyFailure(
            f"{step}: {url} does not answer like an OpenAI-compatible API (is it the vLLM server's /v1?)"
        ) from None
    if not listed:
        raise VerifyFailure(f"{step}: the endpoint lists no models")
    print(f"models: {', '.join(listed)}", file=out, flush=True)
    if model is None:
        model = listed[0]
    elif model not in listed:
        raise VerifyFailure(f"model {model!r} is not listed by {url}; listed: {', '.join(listed)}")
    print(f"model: {model}", file=out, flush=True)

    step = f"chat completion with {model}"
    try:
        result = stream_chat(client, model, prompt)
    except openai.OpenAIError as error:
        raise VerifyFailure(describe_failure(error, step, url, timeout, has_key)) from None

    if result.from_usage:
        counted = "from the server's usage report"
    elif result.usage_requested:
        counted = "counted as content chunks: the server sent no usage report"
    else:
        counted = "counted as content chunks: the server does not support stream_options"
    rate = result.tokens / result.total_seconds if result.total_seconds > 0 else float("inf")
    print(f"time to first token: {result.first_token_seconds:.3f} s", file=out)
    print(
        f"tokens per second: {rate:.1f} ({result.tokens} completion tokens in {result.total_seconds:.3f} s "
        f"from request to last token, {counted})",
        file=out,
    )
    print(f"answer: {result.answer}", file=out)
    print(f"OK: {url} serves {model}", file=out, flush=True)


def api_key_from(args: argparse.Namespace) -> Optional[str]:
    # VLLM_API_KEY first: it is the variable vLLM's own server reads its key from.
    return args.api_key or os.environ.get("VLLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or None


def _verify_command(args: argparse.Namespace) -> int:
    try:
        model = args.model
        if args.stack:
            raw_url, served = resolve_stack(args.stack)
            model = model or served
        else:
            raw_url = args.url
        if args.timeout <= 0:
            raise VerifyFailure("--timeout must be more than 0 seconds", EXIT_USAGE)
        verify(normalize_url(raw_url), model, api_key_from(args), args.timeout, args.prompt, sys.stdout)
    except VerifyFailure as failure:
        sys.stdout.flush()
        print(f"error: {failure}", file=sys.stderr)
        return failure.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return EXIT_OK


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "verify",
        help="check a live endpoint: list models, stream one chat completion, report latency and speed",
        description=(
            "Check a live OpenAI-compatible endpoint the way the chart's instructions do. "
            f"The in-cluster URL of --stack resolves only inside the cluster; {PORT_FORWARD_HINT}. "
            "Exit codes: 0 all checks passed, 1 the endpoint failed a check, 2 no URL could be worked out."
        ),
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--stack", metavar="NAME", help="look up the stack's openaiBaseUrl and servedModelName with the pulumi CLI"
    )
    where.add_argument("--url", help="the OpenAI base URL, e.g. http://localhost:8000/v1")
    parser.add_argument(
        "--model", help="the model to check (default: the stack's servedModelName, else the first listed)"
    )
    parser.add_argument(
        "--api-key", help="the server's API key (default: $VLLM_API_KEY, else $OPENAI_API_KEY)"
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
        help=f"seconds to wait for a connection or for the next bytes of an answer (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"the chat message to send (default {DEFAULT_PROMPT!r})")
    parser.set_defaults(handler=_verify_command)
