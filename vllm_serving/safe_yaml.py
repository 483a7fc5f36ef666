"""YAML a person wrote, read as JSON values, with every cost bounded before it is paid.

PyYAML's own loaders construct values recursively (a few thousand nested brackets raise
RecursionError with a megabyte of traceback) and expand aliases into shared objects that every
later walk (json.dumps, the engine) expands again (a 798-byte alias bomb reached 8 GB). This
reader instead consumes the parser's event stream, which is flat, and builds the values itself
with an explicit stack, so that:

- the file is read up to MAX_FILE_BYTES and no further;
- the bytes must be UTF-8 (a UTF-8 byte order mark is accepted, as YAML allows);
- nesting deeper than MAX_DEPTH is refused when the opening bracket is seen;
- aliases (`*name`) are refused where they occur, before anything is expanded: a stack config
  has no structure that needs repeating, and refusing them costs nothing, whereas an expansion
  budget would have to be enforced again by every consumer of the value;
- only the JSON types come out: strings, integers in the 64-bit range, finite floats, booleans,
  null, mappings with string keys, lists. Explicit tags outside them (`!!binary`, `!!set`,
  `!!timestamp`, `!!python/...`, `!custom`) and merge keys (`<<`) are refused. A plain scalar that
  merely looks like a date (2024-01-01) is kept as the string it is written as, which is what
  the Pulumi CLI's Go YAML decoder hands the engine for such a scalar;
- a key given twice in one mapping is refused, at every level.

Problems carry the path of keys (and list indexes) where they are, and never the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32
# Digits beyond this are not a number anyone means, and int() of them costs quadratic time.
MAX_NUMBER_CHARS = 40
MAX_PROBLEMS = 20
INT64 = 1 << 63

Path_ = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null")}
# The characters YAML 1.1 allows in a stream (PyYAML's Reader.NON_PRINTABLE), refused up front
# with their place: libyaml's own refusal says neither where nor which.
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same events, faster
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = SafeConstructor()


@dataclass(frozen=True)
class Problem:
    path: Path_
    message: str


class YamlRefused(Exception):
    """The document is refused; problems say where and why, without the values."""

    def __init__(self, problems: list[Problem], document: Any = None):
        self.problems = problems
        # When reading could go on past the problems (a tag, a duplicate, an alias: each read as
        # null), the document as far as it is valid, for checks of its own to report in the same run.
        self.document = document
        super().__init__("; ".join(problem.message for problem in problems))


def _short_tag(tag: str | None) -> str:
    if tag is None:
        return "(none)"
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def _line(event: Any) -> int:
    return event.start_mark.line + 1


def read_utf8(path: Path) -> str:
    """The file's text, refusing more than MAX_FILE_BYTES and anything but UTF-8."""
    with open(path, "rb") as stream:
        raw = stream.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise YamlRefused([Problem((), f"larger than {MAX_FILE_BYTES} bytes (1 MiB); a stack file is a few KB")])
    for bom, encoding in ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"),
                          (b"\xfe\xff", "UTF-16"), (b"\xff\xfe", "UTF-16")):
        if raw.startswith(bom):
            raise YamlRefused([Problem((), f"encoded as {encoding} (byte order mark {bom.hex(' ')}); save it as UTF-8")])
    if b"\x00" in raw:
        at = raw.index(b"\x00")
        line = raw[:at].count(b"\n") + 1
        hint = " (it looks like UTF-16 without a byte order mark)" if b"\x00" in raw[at + 1:at + 4] else ""
        raise YamlRefused([Problem((), f"a NUL byte at line {line}{hint}; save it as UTF-8 text")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[:error.start]
        line, column = before.count(b"\n") + 1, error.start - (before.rfind(b"\n") + 1) + 1
        raise YamlRefused([Problem(
            (), f"not UTF-8: byte 0x{raw[error.start]:02x} at line {line}, byte {column} of the line; save it as UTF-8"
        )]) from None
    unprintable = _NON_PRINTABLE.search(text)
    if unprintable:
        text_before = text[:unprintable.start()]
        line, column = text_before.count("\n") + 1, unprintable.start() - (text_before.rfind("\n") + 1) + 1
        raise YamlRefused([Problem((), (
            f"control character U+{ord(unprintable[0]):04X} at line {line}, column {column}: YAML allows none; "
            "write it as an escape inside double quotes"
        ))])
    return text


def _syntax_error(error: yaml.YAMLError) -> YamlRefused:
    # str(error) quotes the offending line, which may hold a secret or a megabyte: use the parts.
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or getattr(error, "reason", None) or type(error).__name__
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(error, "context", None)
    return YamlRefused([Problem((), f"not valid YAML: {problem}{where}" + (f" ({context})" if context else ""))])


@dataclass
class _Collection:
    path: Path_
    value: dict | list
    key: Any = None  # for a mapping: the key whose value comes next, or None when a key comes next
    key_lines: dict[str, int] = field(default_factory=dict)

    def slot(self) -> Path_:
        if isinstance(self.value, list):
            return (*self.path, len(self.value))
        return (*self.path, self.key) if self.key is not None else self.path


class _Builder:
    def __init__(self) -> None:
        self.stack: list[_Collection] = []
        self.problems: list[Problem] = []
        self.document: Any = None
        self.documents = 0
        self.aliases: set[str | None] = set()

    def refuse(self, path: Path_, message: str) -> None:
        self.problems.append(Problem(path, message))
        if len(self.problems) >= MAX_PROBLEMS:
            raise YamlRefused(self.problems)

    def stop(self, path: Path_, message: str) -> None:
        self.problems.append(Problem(path, message))
        raise YamlRefused(self.problems)

    def expects_key(self) -> bool:
        top = self.stack[-1] if self.stack else None
        return top is not None and isinstance(top.value, dict) and top.key is None

    def put(self, value: Any) -> None:
        if not self.stack:
            self.document = value
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            top.value.append(value)
        else:
            top.value[top.key] = value
            top.key = None

    def key(self, event: yaml.ScalarEvent) -> None:
        top = self.stack[-1]
        key = event.value
        if event.tag not in (None, "!", _TAG + "str") or (event.implicit[0] and key == "<<"):
            what = "merge keys (<<)" if key == "<<" else f"keys tagged {_short_tag(event.tag)}"
            self.refuse((*top.path, key), f"{what} are not allowed (line {_line(event)}); write the keys out")
        if key in top.key_lines:
            self.refuse((*top.path, key), f"duplicate key (line {_line(event)}; first at line {top.key_lines[key]})")
        else:
            top.key_lines[key] = _line(event)
        top.key = key

    def scalar(self, event: yaml.ScalarEvent) -> None:
        path = self.stack[-1].slot() if self.stack else ()
        tag = event.tag
        if tag is None or tag == "!":
            tag = _RESOLVER.resolve(ScalarNode, event.value, event.implicit)
            if tag in (_TAG + "timestamp", _TAG + "value"):
                tag = _TAG + "str"  # what a YAML 1.2 reader (the Pulumi CLI's) sees: the text
        if tag not in _SCALAR_TAGS:
            self.refuse(path, f"tag {_short_tag(tag)} (line {_line(event)}) is not a JSON type; "
                              "allowed: strings, numbers, true/false, null, mappings, lists")
            self.put(None)
            return
        self.put(self._scalar_value(path, tag, event))

    def _scalar_value(self, path: Path_, tag: str, event: yaml.ScalarEvent) -> Any:
        text = event.value
        if tag == _TAG + "str":
            return text
        if tag in (_TAG + "int", _TAG + "float") and len(text) > MAX_NUMBER_CHARS:
            self.refuse(path, f"a number of more than {MAX_NUMBER_CHARS} characters (line {_line(event)})")
            return None
        # types-PyYAML types the C parser's marks as yaml._yaml.Mark, not yaml.error.Mark; the node only stores them.
        node = ScalarNode(tag, text, event.start_mark, event.end_mark)  # type: ignore[arg-type]  # see above
        constructors: dict[str, Callable[[ScalarNode], object]] = {
            _TAG + "int": _CONSTRUCTOR.construct_yaml_int,
            _TAG + "float": _CONSTRUCTOR.construct_yaml_float,
            _TAG + "bool": _CONSTRUCTOR.construct_yaml_bool,
            _TAG + "null": _CONSTRUCTOR.construct_yaml_null,
        }
        try:
            value = constructors[tag](node)
        except (ValueError, KeyError, yaml.YAMLError):
            self.refuse(path, f"not a valid {_short_tag(tag)} (line {_line(event)})")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
            self.refuse(path, f"an integer outside the 64-bit range (line {_line(event)})")
        elif isinstance(value, float) and not math.isfinite(value):
            self.refuse(path, f"not a finite number (line {_line(event)}); JSON has no .inf or .nan")
        return value

    def start(self, event: yaml.MappingStartEvent | yaml.SequenceStartEvent, mapping: bool) -> None:
        if self.expects_key():
            self.stop(self.stack[-1].path, f"a {'mapping' if mapping else 'list'} used as a key (line {_line(event)}); "
                                           "keys must be strings")
        path = self.stack[-1].slot() if self.stack else ()
        if len(self.stack) >= MAX_DEPTH:
            self.stop(path, f"nested more than {MAX_DEPTH} levels deep (line {_line(event)})")
        allowed = (None, "!", _TAG + ("map" if mapping else "seq"))
        if event.tag not in allowed:
            self.refuse(path, f"tag {_short_tag(event.tag)} (line {_line(event)}) is not a JSON type; "
                              f"write a plain {'mapping' if mapping else 'list'}")
        self.stack.append(_Collection(path, {} if mapping else []))

    def end(self) -> None:
        done = self.stack.pop()
        self.put(done.value)

    def feed(self, event: Any) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self.stop((), f"more than one YAML document (line {_line(event)}); a stack file is one mapping")
        elif isinstance(event, yaml.AliasEvent):
            path = self.stack[-1].slot() if self.stack else ()
            if self.expects_key():
                self.stop(path, f"an alias used as a key (line {_line(event)})")
            if event.anchor not in self.aliases:  # once per anchor: a bomb uses each one many times
                self.aliases.add(event.anchor)
                self.refuse(path, f"YAML alias *{event.anchor} (line {_line(event)}) is not allowed in a stack file; "
                                  "write the value out")
            self.put(None)
        elif isinstance(event, yaml.ScalarEvent):
            self.key(event) if self.expects_key() else self.scalar(event)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            self.start(event, isinstance(event, yaml.MappingStartEvent))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self.end()


def parse(text: str) -> Any:
    """One YAML document as JSON values; raises YamlRefused with every problem found (up to MAX_PROBLEMS)."""
    builder = _Builder()
    try:
        for event in yaml.parse(text, Loader=_PARSER):
            builder.feed(event)
    except yaml.YAMLError as error:
        raise _syntax_error(error) from None
    if builder.problems:
        raise YamlRefused(builder.problems, builder.document)
    return builder.document


def load(path: Path) -> Any:
    """A YAML file as JSON values, read within every bound above."""
    return parse(read_utf8(path))
