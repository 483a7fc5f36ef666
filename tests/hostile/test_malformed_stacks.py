"""Malformed stack files built from valid configs, one hostile mutation each, refused by name.

The valid configs come from tests/test_properties.py; a mutation puts a hostile fragment at one
key path of one of them (deep nesting, a tag, an alias, a duplicate key, a wrong type, a bad
byte). Each is rendered by the command in-process (a process per example would cost ~2 s each;
the corpus runs real processes under a memory limit) and held to the same contract: exit 2, the
key path (or, for bytes, the line) named, no traceback, a bounded message, in bounded time.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from tests.hostile.cli_contract import Outcome, contract_violations
from tests.test_properties import examples, valid_configs
from vllm_serving.cli import main

MARKER = "__HOSTILE_FRAGMENT__"
KeyPath = tuple[str | int, ...]


def leaf_paths(value: Any, path: KeyPath = ()) -> list[KeyPath]:
    """Every scalar's path in a config value."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in leaf_paths(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in leaf_paths(item, (*path, index))]
    return [path]


def mapping_paths(value: Any, path: KeyPath = ()) -> list[KeyPath]:
    """Every non-empty mapping's path."""
    found = [path] if isinstance(value, dict) and value else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return found + [inner for key, item in items for inner in mapping_paths(item, (*path, key))]


def _set(values: dict[str, Any], path: KeyPath, item: Any) -> None:
    node: Any = values
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = item


def stack_text(values: dict[str, Any]) -> str:
    # Structured values as JSON, which is YAML flow syntax: a fragment can replace one scalar in place.
    return "config:\n" + "".join(f"  vllm-serving:{key}: {json.dumps(value)}\n" for key, value in values.items())


def key_name(path: KeyPath) -> str:
    """The key in `pulumi config set --path` syntax, as every message names it."""
    from components.config.errors import key_path

    return "vllm-serving:" + key_path(list(path))


# Fragments of YAML flow syntax that no stack may hold, whatever the key.
FRAGMENTS = {
    "deep nesting": st.integers(33, 5000).map(lambda depth: "[" * depth + "]" * depth),
    "deep mapping": st.integers(33, 2000).map(lambda depth: "{a: " * depth + "1" + "}" * depth),
    "tag": st.sampled_from([
        "!!binary aGk=", "!!set {a, b}", "!!timestamp 2024-01-01", "!!python/name:os.system x", "!!omap [{a: 1}]",
        "!secret x", "!!float .nan", "!!int x",
    ]),
    "alias": st.sampled_from(["&loop [*loop]", "*nowhere", "[&a [1, 2], *a]"]),
    "huge number": st.integers(41, 400).map(lambda digits: "9" * digits),
    "wrong type": st.sampled_from(['{"hostile": 1}', '{"a": [1, {"b": 2}]}']),
}


MUTATIONS = [*FRAGMENTS, "duplicate key", "bad byte"]


@st.composite
def malformed_stacks(draw, mutation: str) -> tuple[bytes, tuple[str, ...]]:
    """A stack file's bytes, with one mutation of a valid config, and what its refusal must name."""
    values = copy.deepcopy(draw(valid_configs(), label="valid config"))
    if mutation == "duplicate key":
        path = draw(st.sampled_from(mapping_paths(values)), label="mapping")
        node: Any = values
        for part in path:
            node = node[part]
        key = draw(st.sampled_from(sorted(node)), label="key")
        text = stack_text(values)
        if not path:  # a top-level key given twice
            duplicate = f"  vllm-serving:{key}: {json.dumps(values[key])}\n"
            return (text + duplicate).encode(), (key_name((key,)) + ":", "duplicate key")
        node[MARKER] = 0
        first = json.dumps(node)[:-1]  # the mapping as written, up to its closing brace
        text = stack_text(values).replace(first, first + f", {json.dumps(key)}: 0", 1)
        return text.encode(), (key_name((*path, key)) + ":", "duplicate key")
    leaves = leaf_paths(values)
    if mutation == "wrong type":
        # env valueFrom is not typed by the config yet (tests/hostile/pending_validation.yaml).
        leaves = [leaf for leaf in leaves if "valueFrom" not in leaf] or [("replicaCount",)]
    path = draw(st.sampled_from(leaves), label="leaf")
    _set(values, path, MARKER)
    text = stack_text(values)
    if mutation == "bad byte":
        line = text[:text.index(MARKER)].count("\n") + 1
        bad = draw(st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\xe9t\xe9"]), label="bytes")
        return text.encode().replace(json.dumps(MARKER).encode(), b'"' + bad + b'"'), ("not UTF-8", f"line {line}")
    fragment = draw(FRAGMENTS[mutation], label="fragment")
    return text.replace(json.dumps(MARKER), fragment).encode(), (key_name(path),)


def render_in_process(path: Path) -> Outcome:
    stdout, stderr = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["render", str(path)])
    return Outcome(code, stdout.getvalue(), stderr.getvalue(), time.monotonic() - started)


@pytest.fixture(scope="module")
def stack_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("malformed") / "Pulumi.malformed.yaml"


# One run per mutation, so that each is tried as often as the others: 8 x 12 examples, ~15 s.
@pytest.mark.parametrize("mutation", MUTATIONS)
@examples(12)
@given(data=st.data())
def test_a_malformed_stack_is_refused_by_name(stack_path: Path, mutation: str, data):
    content, names = data.draw(malformed_stacks(mutation), label="malformed stack")
    note(content[:2000].decode(errors="replace"))
    stack_path.write_bytes(content)
    outcome = render_in_process(stack_path)
    assert not contract_violations(outcome, names), outcome.stderr
