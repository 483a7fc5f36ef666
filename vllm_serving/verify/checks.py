"""The checks: list the models, stream one chat completion, and report its speed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, TextIO

from .failures import VerifyFailure, _server_message, describe_failure

# Enough for a sentence; a smoke test should not hold a GPU for long.
MAX_TOKENS = 64
# vLLM's own examples use this when the server has no --api-key; the client refuses an empty key.
NO_KEY_PLACEHOLDER = "EMPTY"


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

    request = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": MAX_TOKENS, "stream": True}
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


def _list_models(client: Any, url: str, timeout: float, has_key: bool) -> list[str]:
    import openai

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
    return listed


def _report(result: StreamResult, out: TextIO) -> None:
    """Latency, speed (and how the tokens were counted) and the answer, as the user reads them."""
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


def verify(
    url: str,
    model: str | None,
    api_key: str | None,
    *,
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

    listed = _list_models(client, url, timeout, has_key)
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

    _report(result, out)
    print(f"OK: {url} serves {model}", file=out, flush=True)
