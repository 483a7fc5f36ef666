"""Reading a stack's config file the way the Pulumi engine hands it to the program."""

from __future__ import annotations

import difflib
import json
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from components.config import CONFIG_NAMESPACE, CONFIG_NAMESPACES
from components.config.errors import key_path

from . import safe_yaml
from .manifests import offline_secret_placeholder
from .safe_yaml import Problem

# The directory this code runs from: a checkout of this repository (whose tests and benchmarks
# name its files through these two), or site-packages once installed. Commands do not look for
# stacks here: they work in the user's Pulumi project (project.py).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = PROJECT_ROOT / "stacks"
# The keys `pulumi` itself writes into a stack file (ProjectStack in pulumi's sdk/go/common/workspace).
STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")
# This program's own keys, its Kubernetes provider's (kubernetes:context and the like) and the
# engine's (pulumi:tags, pulumi:disable-default-providers); any other namespace is a typo here.
# A value, key or name quoted in a message is cut to this many characters.
MESSAGE_VALUE_LIMIT = 80


class StackFileError(Exception):
    pass


def stack_path(stack: str) -> Path:
    """A stack name in the current project's stack directory (`codellama-7b`), or a path to a
    stack config file."""
    from .project import current_project, shown

    candidate = Path(stack)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise StackFileError(f"no stack config file at {candidate}")
        return candidate
    stacks_dir = current_project().stacks_dir
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))
        raise StackFileError(
            f"no stack {stack!r}: {shown(path)} does not exist (stacks here: {', '.join(known) or 'none'})"
        )
    return path


def stack_name(path: Path) -> str:
    name = path.name
    return name[len("Pulumi."):-len(path.suffix)] if name.startswith("Pulumi.") else path.stem


def _engine_value(value: Any) -> str:
    # The engine passes structured values as JSON text and scalars as their string form.
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _unsecure(value: Any) -> Any:
    """Secrets in a stack file are encrypted for the Pulumi CLI; offline they render as a placeholder
    that changes with the ciphertext, so that a changed secret shows in `diff`."""
    if _is_secure(value):
        return offline_secret_placeholder(str(value["secure"]))
    if isinstance(value, dict):
        return {key: _unsecure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unsecure(item) for item in value]
    return value


def _key_path(path: tuple) -> str:
    """A problem's place as the user names it, in `pulumi config set --path` syntax, as the config's
    own messages write it: `vllm-serving:env[0].name`, `secretsprovider`."""
    parts = path[1:] if len(path) >= 2 and path[0] == "config" else path
    return key_path([part if isinstance(part, int) else _shorten(str(part)) for part in parts]) or "(the whole file)"


def _shorten(text: str, limit: int = MESSAGE_VALUE_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _refused(path: Path, problems: list[Problem]) -> StackFileError:
    if len(problems) == 1 and not problems[0].path:
        return StackFileError(f"{path}: {problems[0].message}")
    lines = [f"{path}: invalid stack file ({len(problems)} problem{'s' if len(problems) != 1 else ''}):"]
    lines += [f"  {_key_path(problem.path)}: {problem.message}" for problem in problems]
    return StackFileError("\n".join(lines))


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]}? " if close else ""


def _document_problems(document: Any) -> list[Problem]:
    if not isinstance(document, dict):
        return [Problem((), f"expected a mapping with a `config:` mapping, got {_yaml_type(document)}")]
    problems = [
        Problem((key,), f"not a key of a Pulumi stack file; {_did_you_mean(key, STACK_FILE_KEYS)}"
                        f"allowed: {', '.join(STACK_FILE_KEYS)}")
        for key in document if key not in STACK_FILE_KEYS
    ]
    if not isinstance(document.get("config") or {}, dict):
        problems.append(Problem(("config",), f"expected a mapping of namespaced keys, got {_yaml_type(document['config'])}"))
    return problems


def _config_key_problems(key: str, value: Any) -> list[Problem]:
    namespace, _, name = key.partition(":")
    if not name:
        return [Problem(("config", key), f"config key {_shorten(key)!r} needs its namespace, e.g. {CONFIG_NAMESPACE}:{_shorten(key)}")]
    if namespace not in CONFIG_NAMESPACES:
        guess = _did_you_mean(namespace, CONFIG_NAMESPACES).replace("? ", f":{_shorten(name)}? ")
        return [Problem(("config", key), f"unknown namespace {_shorten(namespace)!r}; {guess}namespaces read here: "
                                         f"{CONFIG_NAMESPACE} (this program), kubernetes (its provider), pulumi (the engine)")]
    problems = []
    first = re.split(r"[.\[]", name, maxsplit=1)[0]
    if namespace == CONFIG_NAMESPACE and first != name and first in _config_fields():
        problems.append(Problem(("config", key), (
            f"a structured key written flat: nest it under {CONFIG_NAMESPACE}:{first}, or let Pulumi do it with "
            f"pulumi config set --path {shlex.quote(_shorten(name))} <value>"
        )))
    problems += [Problem(("config", key, *where), "a secure value must be the ciphertext string Pulumi wrote")
                 for where in _malformed_secure(value, ())]
    return problems


def _config_fields() -> set[str]:
    from components.config import ServingConfig

    return {info.alias or name for name, info in ServingConfig.model_fields.items()}


def _malformed_secure(value: Any, where: tuple) -> Iterable[tuple]:
    if _is_secure(value):
        if not isinstance(value["secure"], str):
            yield (*where, "secure")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _malformed_secure(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _malformed_secure(item, (*where, index))


def _yaml_type(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(type(value), type(value).__name__)


def load_engine_config(path: Path) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys `pulumi up` would pass for this stack file.

    Read with safe_yaml (bounded size and depth, no aliases, JSON types only, no duplicate keys);
    every problem of the file is reported at once, by key path and line, never with its value.
    """
    try:
        document, problems = safe_yaml.load(path), []
    except safe_yaml.YamlRefused as refused:
        if refused.document is None:
            raise _refused(path, refused.problems) from None
        document, problems = refused.document, refused.problems
    document = {} if document is None else document
    problems += _document_problems(document)
    config_map = document.get("config") if isinstance(document, dict) else None
    if isinstance(config_map, dict):
        for key, value in config_map.items():
            problems += _config_key_problems(key, value)
    if problems:
        raise _refused(path, problems)
    config, secret_keys = {}, []
    for key, value in (config_map or {}).items():
        if _unsecure(value) != value:
            secret_keys.append(key)
        config[key] = _engine_value(_unsecure(value))
    return config, secret_keys
