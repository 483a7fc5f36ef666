"""ConfigError, and pydantic's errors as (key path, message) in the words of a stack file."""

from __future__ import annotations

from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError

CONFIG_NAMESPACE = "vllm-serving"


class ConfigError(pulumi.RunError):
    """Every problem of a stack config, each as (key path, what is wrong and what is allowed).

    A RunError: the Pulumi engine prints its message alone, without a traceback, and
    registers nothing, since the config is parsed before the first resource.
    """

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"invalid stack config ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"]
        # A key of another namespace (an unknown one, refused) is printed as it was written.
        lines += [
            f"  {path if ':' in path.split('.')[0] else f'{CONFIG_NAMESPACE}:{path}'}: {message}"
            for path, message in self.problems
        ]
        return "\n".join(lines)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at the parent of loc, to tell a misspelt key what it may have meant."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        annotation = getattr(field, "annotation", None)
        args = getattr(annotation, "__args__", ()) or ()
        candidates = [annotation, *args]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return [f.alias or n for n, f in current.model_fields.items()]


def pydantic_problems(error: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """Each of pydantic's errors against the model `root` as (key path, message)."""
    problems = []
    for item in error.errors():
        loc = item["loc"]
        path = ".".join(str(part) for part in loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(root, loc)
            message = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        elif kind == "missing":
            message = "required"
        elif kind == "value_error":
            message = str(item["ctx"]["error"])
        elif kind == "literal_error":
            message = f"{item['input']!r} not allowed; allowed: {item['ctx']['expected']}"
        else:
            message = f"{item['msg']} (got {item['input']!r})"
        problems.append((path, message))
    return problems
