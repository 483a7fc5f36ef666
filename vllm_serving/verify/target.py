"""Where to check: the URL given, or the one a stack exported, as the OpenAI base URL."""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import urlsplit, urlunsplit

from .failures import EXIT_USAGE, VerifyFailure

PULUMI_TIMEOUT = 60

PORT_FORWARD_HINT = (
    "from outside the cluster run `kubectl port-forward svc/<deployName> 8000:8000` "
    "and pass --url http://localhost:8000/v1"
)


def _pulumi_output(pulumi: str, name: str, stack: str) -> subprocess.CompletedProcess:
    # The Pulumi CLI finds the project from its working directory, as project.py does: run it from
    # the project found here, so that `verify --stack` works from any directory inside it.
    from ..project import current_project

    return subprocess.run(
        [pulumi, "stack", "output", name, "--stack", stack],
        cwd=current_project().root,
        capture_output=True,
        text=True,
        timeout=PULUMI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def resolve_stack(stack: str) -> tuple[str, str | None]:
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
