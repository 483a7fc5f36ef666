"""A yes-or-no check of a manifest against a JSON Schema, compiled once: jsonschema's verdict, faster.

jsonschema walks the schema anew for every manifest and version: each keyword is looked up,
each subschema gets an evolved validator and a reference resolver, each `$ref` is resolved
again. For the Kubernetes schemas that is about 3 ms for one Deployment and version, and a
stack is checked against seven versions. `compile_validity` turns a validator's schema, once,
into plain Python closures that answer only whether an instance is valid, which is what
`render --validate` needs for every manifest that passes: about a tenth of the time.

The closures implement exactly the keywords they meet, with jsonschema's own semantics for
Draft 2020-12 (its type checker's types, its `equal` for `enum`, `properties` and
`additionalProperties` only on objects, `items` only on arrays, `$ref` beside its siblings,
resolved by the validator's own resolver). A schema that uses any other asserting keyword
(`pattern`, `minimum`, `prefixItems`, a format checker, ...) or that they cannot resolve
compiles to None, and the caller asks jsonschema alone. A manifest the closures call invalid
is then validated by jsonschema, whose first error is the one reported, so the messages never
change; the closures may only answer "valid" where jsonschema does (tests/test_validity.py
compares the two on mutated manifests).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from jsonschema._utils import equal

Check = Callable[[Any], bool]

# Keywords the validator knows that assert nothing here: without a format checker, jsonschema does
# not assert formats. (Keywords it does not know, annotations such as `description`, are skipped.)
_NOT_ASSERTING = frozenset({"format"})


class _Unsupported(Exception):
    pass


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Number)


_TYPE_CHECKS: dict[str, Check] = {
    "array": lambda value: isinstance(value, list),
    "boolean": lambda value: isinstance(value, bool),
    "integer": _is_integer,
    "null": lambda value: value is None,
    "number": _is_number,
    "object": lambda value: isinstance(value, dict),
    "string": lambda value: isinstance(value, str),
}


# The exact Python types of JSON values, and the type names each one satisfies by itself.
_EXACT = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


def _type_check(types: Any) -> Check:
    names = [types] if isinstance(types, str) else list(types)
    if any(not isinstance(name, str) or name not in _TYPE_CHECKS for name in names):
        raise _Unsupported(f"type {types!r}")
    checks = [_TYPE_CHECKS[name] for name in names]
    # A value of a plain JSON type is answered by its type alone; anything else (a subclass, a
    # Decimal) by jsonschema's own predicates above.
    accepted = {kind for kind, name in _EXACT.items() if name in names}
    if "number" in names:
        accepted |= {int, float}
    elif "integer" in names:
        accepted.add(int)
    integral_float = "integer" in names and "number" not in names
    plain = frozenset({*_EXACT, int, float})

    def check(value: Any) -> bool:
        kind = type(value)
        if kind in accepted:
            return True
        if kind is float and integral_float:
            return value.is_integer()
        if kind in plain:
            return False
        return any(each(value) for each in checks)

    return check


def _enum_check(values: Any) -> Check:
    if not isinstance(values, list):
        raise _Unsupported("enum")
    if all(isinstance(value, str) for value in values):
        # equal() compares a string with == only, and a string is never equal to a non-string.
        allowed = frozenset(values)
        return lambda value: isinstance(value, str) and value in allowed
    return lambda value: any(equal(each, value) for each in values)


def _always(_value: Any) -> bool:
    return True


def _never(_value: Any) -> bool:
    return False


def _late(cell: list[Check]) -> Check:
    """The check a recursive schema will have, once compiled."""
    return lambda value: cell[0](value)  # noqa: PLW0108 - cell[0] is set after this returns


def _all_of(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)

    def check(value: Any) -> bool:
        for each in checks:  # noqa: SIM110 - a loop, not all() over a generator: this runs for every node
            if not each(value):
                return False
        return True

    return check


def _negation(inner: Check) -> Check:
    return lambda value: not inner(value)


class _Compiler:
    def __init__(self, validator: Any):
        if getattr(validator, "format_checker", None) is not None:
            raise _Unsupported("a format checker")
        self.keywords = frozenset(validator.VALIDATORS)
        self.compiled: dict[int, Check] = {}
        self.pending: dict[int, list[Check]] = {}

    def compile(self, schema: Any, resolver: Any, root: bool = False) -> Check:
        """The check of `schema`, whose references `resolver` resolves; `root`: the validator's own
        schema, whose `$id` and `$schema` the validator and its resolver already stand for."""
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict):
            raise _Unsupported(f"schema {schema!r}")
        key = id(schema)
        if key in self.compiled:
            return self.compiled[key]
        if key in self.pending:  # a recursive schema: look the check up when it runs
            return _late(self.pending[key])
        if not root and any(keyword in schema for keyword in ("$id", "$schema", "$anchor", "$dynamicAnchor")):
            # jsonschema would move to another base URI or dialect here.
            raise _Unsupported("a subschema with its own $id, $schema or anchor")
        cell: list[Check] = []
        self.pending[key] = cell
        check = self._compile_keywords(schema, resolver)
        cell.append(check)
        self.compiled[key] = check
        del self.pending[key]
        return check

    def _compile_keywords(self, schema: dict[str, Any], resolver: Any) -> Check:
        checks: list[Check] = []
        object_keywords = ("properties", "additionalProperties", "required")
        for keyword, value in schema.items():
            if keyword not in self.keywords or keyword in _NOT_ASSERTING or keyword in object_keywords:
                continue
            if keyword == "type":
                checks.append(_type_check(value))
            elif keyword == "enum":
                checks.append(_enum_check(value))
            elif keyword == "$ref":
                resolved = resolver.lookup(value)
                checks.append(self.compile(resolved.contents, resolved.resolver))
            elif keyword == "items":
                if "prefixItems" in schema:
                    raise _Unsupported("prefixItems")
                checks.append(self._items(self.compile(value, resolver)))
            elif keyword in ("allOf", "anyOf", "oneOf"):
                if not isinstance(value, list):
                    raise _Unsupported(keyword)
                checks.append(self._combination(keyword, [self.compile(each, resolver) for each in value]))
            elif keyword == "not":
                checks.append(_negation(self.compile(value, resolver)))
            else:
                raise _Unsupported(keyword)
        if any(keyword in schema for keyword in object_keywords):
            checks.append(self._object(schema, resolver))
        return _all_of(checks)

    def _object(self, schema: dict[str, Any], resolver: Any) -> Check:
        if "patternProperties" in schema:
            raise _Unsupported("patternProperties")
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise _Unsupported("properties or required")
        checks = {name: self.compile(sub, resolver) for name, sub in properties.items()}
        required_names = tuple(required)
        additional = schema.get("additionalProperties", True)
        # True (or absent): any other key; False: none; a schema: each other key's value.
        other: Check | None = None if additional is True else self.compile(additional, resolver)

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for name in required_names:
                if name not in value:
                    return False
            for name, item in value.items():
                known = checks.get(name)
                if known is not None:
                    if not known(item):
                        return False
                elif other is not None and not other(item):
                    return False
            return True

        return check

    @staticmethod
    def _items(each: Check) -> Check:
        def check(value: Any) -> bool:
            if isinstance(value, list):
                for item in value:
                    if not each(item):
                        return False
            return True

        return check

    @staticmethod
    def _combination(keyword: str, checks: list[Check]) -> Check:
        if keyword == "allOf":
            return _all_of(checks)
        if keyword == "anyOf":
            return lambda value: any(check(value) for check in checks)
        return lambda value: sum(1 for check in checks if check(value)) == 1


def compile_validity(validator: Any) -> Check | None:
    """A check that answers jsonschema's `validator.is_valid` for its schema, or None when the
    schema uses what the check does not implement."""
    try:
        return _Compiler(validator).compile(validator.schema, validator._resolver, root=True)
    except Exception:  # _Unsupported, or a reference the resolver cannot resolve: jsonschema decides
        return None
