"""The tree diff of two JSON values: every leaf that differs, named by its path."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .model import FieldChange, FieldPath

MISSING: Any = type("Missing", (), {"__repr__": lambda _self: "<missing>"})()


@dataclass(frozen=True)
class Item:
    """A list element found by its `name` (containers, env, volumes, ports), as kubectl merges them."""

    name: str


ORDER = Item("(order)")


def _names(items: list[Any]) -> list[str] | None:
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if all(isinstance(name, str) for name in names) and len(set(names)) == len(names):
        return names  # type: ignore[return-value]  # all str, checked above
    return None


def _same(old: Any, new: Any) -> bool:
    if old is MISSING or new is MISSING:
        return old is new
    # Not ==: True == 1 in Python, and in a manifest a boolean turned number is a change.
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def _diff_named_lists(old_names: list[str], old: list, new_names: list[str], new: list, path: FieldPath) -> Iterator[FieldChange]:
    by_old, by_new = dict(zip(old_names, old, strict=False)), dict(zip(new_names, new, strict=False))
    for name in [*new_names, *(n for n in old_names if n not in by_new)]:
        yield from diff_values(by_old.get(name, MISSING), by_new.get(name, MISSING), (*path, Item(name)))
    kept_old = [n for n in old_names if n in by_new]
    kept_new = [n for n in new_names if n in by_old]
    if kept_old != kept_new:
        # Order matters to Kubernetes (env entries may refer to earlier ones) and to Pulumi.
        yield FieldChange((*path, ORDER), kept_old, kept_new)


def _diff_lists(old: list, new: list, path: FieldPath) -> Iterator[FieldChange]:
    old_names, new_names = _names(old), _names(new)
    if old_names is not None and new_names is not None:
        yield from _diff_named_lists(old_names, old, new_names, new, path)
        return
    for index in range(max(len(old), len(new))):
        yield from diff_values(
            old[index] if index < len(old) else MISSING, new[index] if index < len(new) else MISSING, (*path, index)
        )


def _spell_out(old: Any, new: Any, path: FieldPath) -> Iterator[FieldChange]:
    """An added or removed subtree, leaf by leaf."""
    added = old is MISSING
    present = new if added else old
    names = _names(present) if isinstance(present, list) else None
    for key, value in present.items() if isinstance(present, dict) else enumerate(present):
        segment = Item(names[key]) if names is not None else key
        yield from diff_values(MISSING if added else value, value if added else MISSING, (*path, segment))


def diff_values(old: Any, new: Any, path: FieldPath = ()) -> Iterator[FieldChange]:
    """Every leaf that differs, with added or removed subtrees spelt out leaf by leaf."""
    if _same(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            yield from diff_values(old.get(key, MISSING), new.get(key, MISSING), (*path, key))
        return
    if isinstance(old, list) and isinstance(new, list):
        yield from _diff_lists(old, new, path)
        return
    present = new if old is MISSING else old
    if (old is MISSING or new is MISSING) and isinstance(present, (dict, list)) and present:
        yield from _spell_out(old, new, path)
        return
    yield FieldChange(path, old, new)


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def render_path(path: FieldPath) -> str:
    text = ""
    for segment in path:
        if segment is ORDER:
            text += " (order)"
        elif isinstance(segment, Item):
            text += f"[{segment.name}]"
        elif isinstance(segment, int):
            text += f"[{segment}]"
        elif _PLAIN_KEY.match(segment):
            text += f".{segment}" if text else segment
        else:
            text += f"[{json.dumps(segment)}]"
    return text
