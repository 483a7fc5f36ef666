"""parse_config: a stack's raw config to a ServingConfig, or one ConfigError listing every problem."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from .errors import ConfigError, pydantic_problems
from .rules import cross_field_problems
from .secrets import plain_credentials
from .stack import ServingConfig


def parse_config(raw: dict[str, Any], secret_keys: set[str] | None = None) -> ServingConfig:
    """Validate a stack's config (keys without the namespace) or raise ConfigError listing every problem.

    secret_keys: the keys Pulumi holds as secrets; when given, an apiKey that is not one is refused.
    A credential-like env value is refused unless env is one of them.
    """
    secret_problems = []
    if secret_keys is not None and raw.get("apiKey") and "apiKey" not in secret_keys:
        secret_problems = [(
            "apiKey",
            ("must be a Pulumi secret, or it would sit in plain text in the stack file and the state: "
            "pulumi config set --secret apiKey <key>"),
        )]
    secret_problems += _secrets_that_cannot_stay_secret(raw, secret_keys or set())
    try:
        config = ServingConfig.model_validate(raw)
    except ValidationError as error:
        problems = secret_problems + pydantic_problems(error, ServingConfig)
        # Cross-field rules need typed fields; check them as far as the valid parts allow,
        # so that one run reports as much as it can.
        problems += _cross_field_problems_best_effort(raw, [item["loc"] for item in error.errors()], secret_keys)
        raise ConfigError(problems) from None
    problems = secret_problems + [(path, message) for path, message, _ in cross_field_problems(config)]
    problems += _plain_credentials(config, secret_keys)
    if problems:
        raise ConfigError(problems)
    config._secret_keys = frozenset(key for key in secret_keys or () if key in raw)
    return config


# The keys whose values the program keeps Pulumi secrets in every resource; any other key's
# values go into manifests (names, labels, URLs, arguments) that cannot hold a secret.
SECRET_CAPABLE_KEYS = ("apiKey", "env")


def _secrets_that_cannot_stay_secret(raw: dict[str, Any], secret_keys: set[str]) -> list[tuple[str, str]]:
    return [
        (
            key,
            ("is a Pulumi secret, but its values would be written into the resources in plain text; only "
            f"{' and '.join(SECRET_CAPABLE_KEYS)} values stay secrets. Keep credentials in a Kubernetes Secret "
            "(model.*.existingSecret, apiKeySecret, or an env entry's valueFrom.secretKeyRef)"),
        )
        for key in sorted(secret_keys)
        if key in raw and key not in SECRET_CAPABLE_KEYS
    ]


def _plain_credentials(config: ServingConfig, secret_keys: set[str] | None) -> list[tuple[str, str]]:
    return [] if "env" in (secret_keys or ()) else plain_credentials(config.env)


def _cross_field_problems_best_effort(
    raw: dict[str, Any], broken_locs: list[tuple[Any, ...]], secret_keys: set[str] | None
) -> list[tuple[str, str]]:
    """The cross-field rules, with each broken key put back to its default."""
    patched = json.loads(json.dumps(raw, default=str))
    for loc in broken_locs:
        node, parts = patched, list(loc)
        # Drop the deepest dict key on the path: the value below it (list item or scalar) is what failed.
        while len(parts) > 1 and isinstance(node.get(parts[0]), dict):
            node, parts = node[parts[0]], parts[1:]
        node.pop(parts[0], None)
    # The rules' keys are dotted (`resources.limits`), as are the broken ones here.
    broken = {".".join(str(part) for part in loc) for loc in broken_locs}
    if "model.deployName" in broken and isinstance(patched.get("model"), dict):
        patched["model"]["deployName"] = "placeholder"
    try:
        config = ServingConfig.model_validate(patched)
    except ValidationError:
        return []
    return [
        (path, message)
        for path, message, reads in cross_field_problems(config)
        if not any(key == read or key.startswith(read + ".") for key in broken for read in reads)
    ] + [(path, message) for path, message in _plain_credentials(config, secret_keys) if path not in broken]
