"""ConfigError, and pydantic's errors as (key path, message) in the words of a stack file.

Every key path is printed in the syntax `pulumi config set --path` accepts (its help:
`'names[0]'`, `'["parent.name"]["nested.name"]'`), so that a path can be pasted back:
`env[0].name`, `resources.limits["nvidia.com/gpu"]`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError

from .fields import shown

CONFIG_NAMESPACE = "vllm-serving"
# A config with thousands of bad items still gets a message one can read.
MAX_PROBLEMS_SHOWN = 40


def _shown_input(path: str, value: Any) -> str:
    # apiKey is a secret, and an env value may be one (a token given as a plain value).
    if path == "apiKey" or path.startswith(("env.", "env[")):
        return "(value not shown: it may be a secret)"
    return f"(got {shown(value)})"

# A map key that needs `["..."]` in a --path: Pulumi's path parser splits on `.` and `[`; a key of
# digits is quoted too, so that it never reads as a list index.
_NEEDS_QUOTES = re.compile(r'[.\[\]"]|^\d*$')
# A list index written the dotted way (`env.0`), as some rules name their key.
_DOTTED_INDEX = re.compile(r"\.(\d+)(?=[.\[]|$)")


class ConfigError(pulumi.RunError):
    """Every problem of a stack config, each as (key path, what is wrong and what is allowed).

    A RunError: the Pulumi engine prints its message alone, without a traceback, and
    registers nothing, since the config is parsed before the first resource.
    """

    def __init__(self, problems: list[tuple[str, str]]):
        # Rules and checks name list items the dotted way (`env.0`); users read and paste --path syntax.
        self.problems = [(pulumi_path_syntax(path), message) for path, message in problems]
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"invalid stack config ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"]
        lines += [f"  {_qualified(path)}: {message}" for path, message in self.problems[:MAX_PROBLEMS_SHOWN]]
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"  ... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more")
        return "\n".join(lines)


def _qualified(path: str) -> str:
    """The key as the stack file spells it; a key already naming its own namespace is left as it is."""
    top = path.split(".", 1)[0].split("[", 1)[0]
    return path if ":" in top else f"{CONFIG_NAMESPACE}:{path}"


def key_path(loc: Sequence[Any]) -> str:
    """A location (keys and list indices) in `--path` syntax. The first part is the config key itself,
    as the stack file spells it; each later key is quoted when it holds a `.` or a bracket."""
    text = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif index == 0:
            text = str(part)
        elif _NEEDS_QUOTES.search(str(part)):
            text += "[" + json.dumps(str(part)) + "]"
        else:
            text += f".{part}"
    return text


def pulumi_path_syntax(path: str) -> str:
    """A rule's dotted key (`server.extraArgs.0`) in `--path` syntax (`server.extraArgs[0]`)."""
    return _DOTTED_INDEX.sub(r"[\1]", path)


# --- which model a location is in, and what it allows ----------------------------------------


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The model that holds the last key of loc, or None where loc leaves the models (a free mapping)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *_type_args(annotation)]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return None
    return current


def _type_args(annotation: Any) -> list[Any]:
    """Every type inside an annotation: Optional[list[X]] gives list[X] and X."""
    found = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += [arg, *_type_args(arg)]
    return found


def _allowed_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    holder = _model_at(model, loc)
    return [f.alias or n for n, f in holder.model_fields.items()] if holder else []


def _did_you_mean(key: str, allowed: list[str]) -> str | None:
    """The allowed key closest to a misspelt one (difflib), case ignored; None when none is close."""
    by_lower = {name.lower(): name for name in allowed}
    if key.lower() in by_lower:
        return by_lower[key.lower()]
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    if not close and len(key) >= 4:
        # A truncated key (`replicas` for `replicaCount`) or one with a word added.
        close = [name for name in by_lower if name.startswith(key.lower()) or key.lower().startswith(name)][:1]
    return by_lower[close[0]] if close else None


def _unknown_key(root: type[BaseModel], loc: Sequence[Any]) -> str:
    key = str(loc[-1])
    if len(loc) == 1 and ":" in key:
        namespace, rest = key.split(":", 1)
        return f"unknown namespace {namespace!r}, so no program would read this key; did you mean {CONFIG_NAMESPACE}:{rest}?"
    allowed = _allowed_keys(root, loc)
    if len(loc) == 1 and "." in key and key.split(".", 1)[0] in allowed:
        return (
            "unknown key: a nested key set without --path (the engine passes it as one flat key). "
            f"Run `pulumi config rm {key}` and `pulumi config set --path {key} <value>`, "
            f"or write it nested under {CONFIG_NAMESPACE}:{key.split('.', 1)[0]} in the stack file"
        )
    suggestion = _did_you_mean(key, allowed)
    message = "unknown key" + (f"; did you mean {key_path([*loc[:-1], suggestion])}?" if suggestion else "")
    return message + (f" (allowed here: {', '.join(allowed)})" if allowed else "")


def _json_text_hint(item: Mapping[str, Any], loc: Sequence[Any]) -> str:
    """A mapping or list given as JSON text: what `pulumi config set --path KEY '{...}'` stores."""
    value = item.get("input")
    if not isinstance(value, str) or value.lstrip()[:1] not in ("{", "["):
        return ""
    try:
        json.loads(value)
    except json.JSONDecodeError:
        return ""
    path = key_path(loc)
    each = f"'{path}[0]'" if item["type"] == "list_type" else f"'{path}.KEY'"
    return (
        f"; this is JSON text, which `pulumi config set --path` stores as a string: set each item with "
        f"`pulumi config set --path {each} VALUE`, or write the value as YAML in the stack file"
    )


def _string_written_as_scalar(path: str, value: bool | float) -> str:
    """A string key given a number or boolean: `pulumi config set --path` stores `2024` as a
    number and `true` as a boolean (its help: "integers are treated as numbers"), and YAML reads
    `ref: 2024` the same way. Which text was meant is not always known (`1.10` reads as 1.1), so
    the message says how to write it as a string rather than guess."""
    secret = path == "apiKey" or path.startswith(("env.", "env["))
    text = "..." if secret else json.dumps(value)
    last = path.rsplit(".", 1)[-1]
    quoted = f'- "{text}"' if last.endswith("]") else f'{last}: "{text}"'
    return (
        f"expected a string, got a {'boolean' if isinstance(value, bool) else 'number'}"
        f"{'' if secret else ' ' + text}: quote it in the stack file ({quoted}), or set it with "
        f"`pulumi config set --path --type string '{CONFIG_NAMESPACE}:{path}' VALUE`"
    )


def pydantic_problems(error: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """Each of pydantic's errors against the model `root` as (key path, message)."""
    problems = []
    for item in error.errors():
        loc = item["loc"]
        kind = item["type"]
        if kind == "extra_forbidden":
            message = _unknown_key(root, loc)
        elif kind == "missing":
            message = "required"
        elif kind == "value_error":
            message = str(item["ctx"]["error"])
        elif kind == "literal_error":
            message = f"{shown(item['input'])} not allowed; allowed: {item['ctx']['expected']}"
        elif kind == "string_type" and isinstance(item["input"], (bool, int, float)):
            message = _string_written_as_scalar(key_path(loc), item["input"])
        else:
            message = f"{item['msg']} {_shown_input(key_path(loc), item['input'])}" + _json_text_hint(item, loc)
        problems.append((key_path(loc), message))
    return problems
