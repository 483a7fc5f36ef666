"""The `vllm-serving verify` command: its arguments and its exit status."""

from __future__ import annotations

import argparse
import os
import sys

from .checks import verify
from .failures import EXIT_OK, EXIT_USAGE, VerifyFailure
from .target import PORT_FORWARD_HINT, normalize_url, resolve_stack

DEFAULT_PROMPT = "Say hello in one short sentence."
DEFAULT_TIMEOUT = 60.0


def api_key_from(args: argparse.Namespace) -> str | None:
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
        verify(normalize_url(raw_url), model, api_key_from(args), timeout=args.timeout, prompt=args.prompt, out=sys.stdout)
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
