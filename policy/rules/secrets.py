"""no-plaintext-secrets: credentials reach containers by reference, never as literal text."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .props import ARG_SEPARATORS, Props, as_list, containers, split_words, strings

# A whole word of the name (between '_', '.', '-' or the ends): TOKENIZERS_PARALLELISM is not a token.
_SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|"
    r"(?:API|ACCESS|SECRET|PRIVATE|SSH|SIGNING|ENCRYPTION)[_.-]?KEY)(?:[_.-]|$)",
    re.IGNORECASE,
)

# Kubernetes expands $(OTHER_VAR) in env values and args, and a shell script expands $VAR and ${VAR}:
# a reference to a variable (set from a Secret, say), not a value.
_VAR_REFERENCE = re.compile(r"\$(?:\([A-Za-z_][\w.-]*\)|\{[A-Za-z_]\w*\}|[A-Za-z_]\w*)")

TOKEN_FORMATS: dict[str, re.Pattern[str]] = {
    "a Hugging Face token (hf_...)": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "a GitHub token (ghp_...)": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})\b"),
    "a GitLab token (glpat-...)": re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),
    "an AWS access key id (AKIA...)": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "an API secret key (sk-...)": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}

_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<password>[^/\s@]+)@", re.IGNORECASE)

# vLLM's own `--api-key`, and the like, given a literal on the command line; vLLM's parser reads
# `--api_key` as `--api-key`, so both spellings count.
_SECRET_FLAG = re.compile(r"--?(?:[\w-]*[-_])?(?:api[-_]?key|token|password|secret)(?:=(?P<value>.*))?", re.IGNORECASE)


def find_tokens(text: str) -> list[str]:
    """What kinds of credentials text contains, by their well-known formats."""
    found = [kind for kind, pattern in TOKEN_FORMATS.items() if pattern.search(text)]
    for match in _URL_PASSWORD.finditer(text):
        if not _VAR_REFERENCE.fullmatch(match["password"]):
            found.append("a password inside a URL (scheme://user:password@host)")
            break
    return found


def _literal_secret_value(value: str) -> bool:
    # Empty, a reference to another variable, or the path of a mounted file: where a secret
    # lives, not the secret (GOOGLE_APPLICATION_CREDENTIALS=/var/run/..., TOKEN_FILE=...).
    stripped = value.strip()
    return bool(stripped) and not _VAR_REFERENCE.fullmatch(stripped) and not re.fullmatch(r"/\S*", stripped)


_ADVICE = "anyone who can read the workload (kubectl get -o yaml, Pulumi state) sees it; use valueFrom.secretKeyRef"


def _env_violations(where: str, env: object) -> list[str]:
    violations = []
    for index, var in enumerate(as_list(env)):
        if not isinstance(var, Mapping):
            continue
        declared_name = var.get("name")
        name = declared_name if isinstance(declared_name, str) else f"env[{index}]"
        value = var.get("value")
        if not isinstance(value, str):
            continue
        kinds = find_tokens(value)
        if kinds:
            violations.append(f"{where}: env {name} holds {', '.join(kinds)} as a literal value: {_ADVICE}")
        elif _SECRET_NAME.search(name) and _literal_secret_value(value):
            violations.append(f"{where}: env {name} looks like a credential and has a literal value: {_ADVICE}")
    return violations


def _command_line_violations(where: str, command_line: list[str]) -> list[str]:
    violations = []
    kinds = sorted({kind for part in command_line for kind in find_tokens(part)})
    if kinds:
        violations.append(f"{where}: its command line holds {', '.join(kinds)}: {_ADVICE} and $(VAR) in args")
    words = split_words(command_line, ARG_SEPARATORS)
    for index, word in enumerate(words):
        flag = _SECRET_FLAG.fullmatch(word)
        if flag is None:
            continue
        value = flag["value"]
        if not value:
            following = words[index + 1] if index + 1 < len(words) else ""
            value = "" if following.startswith("-") else following
        if _literal_secret_value(value):
            violations.append(
                f"{where}: its command line passes {word.split('=')[0]} a literal value: {_ADVICE} "
                "and pass it as $(VAR), or use the server's environment variable (e.g. VLLM_API_KEY)"
            )
    return violations


def check_no_plaintext_secrets(resource_type: str, props: Props) -> list[str]:
    """Credentials reach containers by reference to a Secret, never as literal text in the spec."""
    violations = []
    for where, container in containers(resource_type, props):
        violations += _env_violations(where, container.get("env"))
        command_line = strings(container.get("command")) + strings(container.get("args"))
        violations += _command_line_violations(where, command_line)
    return violations
