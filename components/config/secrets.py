"""What keeps a secret out of plain text: credential-like env names need a Secret, and no
value may make Kubernetes expand a variable that holds one.

Kubernetes replaces `$(NAME)` in a container's command, args and env values with the value of
the variable NAME defined before it, and `$$` stands for a literal `$` (core/v1 EnvVar, Container).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .chart import EnvVar

# A name part (between '_') that says the variable holds a credential.
CREDENTIAL_NAME = re.compile(r"(?i)(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|CREDENTIALS?)(_|$)")
# Names that match it but hold no secret: paths to a file that does, and switches.
_NOT_A_CREDENTIAL = re.compile(r"(?i).*(_FILE|_PATH|_DIR)|HF_HUB_DISABLE_.*")
# Variables this program fills from Secrets: the API key (server) and the source tokens (download).
PROGRAM_SECRET_VARS = frozenset({"VLLM_API_KEY", "HF_TOKEN", "GIT_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})

_EXPANSION = re.compile(r"\$\(([^)]*)\)")


def is_credential_name(name: str) -> bool:
    return CREDENTIAL_NAME.search(name) is not None and not _NOT_A_CREDENTIAL.fullmatch(name)


def expansions(text: str) -> list[str]:
    """Each `$(...)` Kubernetes would expand in text, left to right, after `$$` escapes."""
    unescaped = text.replace("$$", "\0\0")
    return [match.group(0) for match in _EXPANSION.finditer(unescaped)]


def kubernetes_expansion(text: str) -> str | None:
    found = expansions(text)
    return found[0] if found else None


def _secret_holders(env: Iterable[EnvVar]) -> set[str]:
    names = set(PROGRAM_SECRET_VARS)
    for var in env:
        if (var.valueFrom is not None and var.valueFrom.secretKeyRef is not None) or is_credential_name(var.name):
            names.add(var.name)
    return names


# Variables that reconfigure the download tools: git reads every GIT_* (GIT_CONFIG_COUNT/KEY/VALUE
# can allow ext:: URLs or rewrite the URL, GIT_SSH_COMMAND and GIT_ASKPASS run commands), rclone
# every RCLONE_* (remotes, flags). The source's own keys say what is downloaded.
_TOOL_CONFIG = re.compile(r"(?i)(GIT|RCLONE)_.*")


def tool_config_names(env: list[EnvVar]) -> list[tuple[str, str]]:
    return [
        (
            f"env.{index}.name",
            (f"{var.name} would reconfigure git or rclone in the download Job (they read every GIT_* / RCLONE_* "
            "variable), past the checks of model.git / model.s3; set the source there instead"),
        )
        for index, var in enumerate(env)
        if _TOOL_CONFIG.fullmatch(var.name)
    ]


def plain_credentials(env: list[EnvVar]) -> list[tuple[str, str]]:
    """Plain values under credential-like names: without `pulumi config set --secret`, they would
    sit in plain text in the stack file and the state (and, like any env value, in both pods' specs)."""
    return [
        (
            f"env.{index}",
            (f"{var.name} looks like a credential (its name matches {CREDENTIAL_NAME.pattern}), so it must not be "
            "a plain value: give it as valueFrom.secretKeyRef {name: <Secret>, key: <key>} (kubectl create secret "
            "generic ...), or make env a Pulumi secret (pulumi config set --secret --path 'env[N].value' ...), or use "
            "the key meant for it (apiKeySecret, model.*.existingSecret, pulumi config set --secret apiKey)"),
        )
        for index, var in enumerate(env)
        if var.value and is_credential_name(var.name)
    ]


def secret_expansions(env: list[EnvVar]) -> list[tuple[str, str]]:
    """Values that make Kubernetes copy a variable holding a secret into another one."""
    problems = []
    holders = _secret_holders(env)
    for index, var in enumerate(env):
        secret_refs = [found for found in expansions(var.value or "") if found[2:-1] in holders]
        if secret_refs:
            problems.append((
                f"env.{index}",
                (f"{var.name} expands {secret_refs[0]}, a variable that holds a secret: Kubernetes would copy the "
                "secret into this variable in plain sight of every process that logs its environment"),
            ))
    return problems
