"""`vllm-serving verify`: check a live OpenAI-compatible endpoint the way the chart's instructions do.

List the models, check the served one is among them, stream one chat completion and
report time to first token, tokens per second and the answer. Every failure a user can
meet in practice (nothing listening, a name that does not resolve, a missing or wrong
API key, a model that is not served, a completion that fails) ends in one line on
stderr and a non-zero exit, never in a traceback.
"""

from .checks import StreamResult, stream_chat, verify
from .command import add_parser, api_key_from
from .failures import EXIT_FAILED, EXIT_OK, EXIT_USAGE, VerifyFailure, describe_failure, in_cluster_hint
from .target import normalize_url, resolve_stack

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "StreamResult",
    "VerifyFailure",
    "add_parser",
    "api_key_from",
    "describe_failure",
    "in_cluster_hint",
    "normalize_url",
    "resolve_stack",
    "stream_chat",
    "verify",
]
