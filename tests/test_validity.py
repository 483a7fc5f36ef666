"""The compiled validity check answers what jsonschema answers, on the manifests the examples render
and on thousands of mutations of them; where it says valid, jsonschema must too."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from tests.examples import EXAMPLE_STACK_FILES
from vllm_serving import validate
from vllm_serving.crd_schemas import schema_for
from vllm_serving.manifests import normalize, ordered
from vllm_serving.render import render
from vllm_serving.validity import compile_validity

VERSIONS = (validate.SUPPORTED_KUBERNETES_VERSIONS[0], validate.SUPPORTED_KUBERNETES_VERSIONS[-1])
VALUES: tuple[Any, ...] = (
    None, True, False, 0, 1, 2.0, 2.5, -1, "", "x", "1Gi", [], ["x"], [1], [{}], {}, {"x": 1}, {"name": "x"},
)


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    rendered = [ordered(normalize(m)) for path in EXAMPLE_STACK_FILES for m in render(path).manifests]
    built_in = [m for m in rendered if not schema_for(m["apiVersion"], m["kind"])]
    # One of each kind is enough: the mutations reach every field of it.
    return list({m["kind"]: m for m in built_in}.values())


def _places(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path into `value`: map keys and list indexes."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _places(item, (*path, index))
    return found


def _mutated(manifest: dict[str, Any], chance: random.Random) -> dict[str, Any]:
    mutant = copy.deepcopy(manifest)
    path = chance.choice(_places(mutant)[1:])
    parent = mutant
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = chance.randrange(4)
    if action == 0 and isinstance(parent, dict):
        del parent[last]  # maybe a required field
    elif action == 1 and isinstance(parent[last], dict):
        parent[last][chance.choice(["unknownField", "name", "x-extra"])] = chance.choice(VALUES)
    elif action == 2 and isinstance(parent[last], list):
        parent[last].append(chance.choice(VALUES))
    else:
        parent[last] = copy.deepcopy(chance.choice(VALUES))
    return mutant


def test_every_kind_the_examples_render_compiles(manifests):
    for manifest in manifests:
        for version in validate.SUPPORTED_KUBERNETES_VERSIONS:
            validator = validate._validator(version, manifest["apiVersion"], manifest["kind"])
            assert compile_validity(validator) is not None, (manifest["kind"], version)


def test_the_check_agrees_with_jsonschema_on_mutated_manifests(manifests):
    chance = random.Random(13)
    disagreements, invalid = [], 0
    for manifest in manifests:
        for version in VERSIONS:
            validator = validate._validator(version, manifest["apiVersion"], manifest["kind"])
            check = compile_validity(validator)
            assert check is not None
            assert check(manifest) and validator.is_valid(manifest)
            for _ in range(150):
                mutant = _mutated(manifest, chance)
                expected = validator.is_valid(mutant)
                invalid += not expected
                if check(mutant) != expected:
                    disagreements.append((manifest["kind"], version, mutant))
    assert not disagreements, disagreements[:3]
    assert invalid > 500  # the mutations do reach what the schemas refuse


@pytest.mark.parametrize(("schema", "instances"), [
    ({"type": "integer"}, [1, 2.0, 2.5, True, "1", None]),
    ({"type": "number"}, [1, 2.5, True, "1"]),
    ({"type": ["string", "null"], "enum": ["a"]}, ["a", "b", None, 1]),
    ({"enum": [1, True, None, [1]]}, [1, 1.0, True, False, 0, None, [1], [True]]),
    ({"oneOf": [{"type": "string"}, {"type": "string", "enum": ["a"]}]}, ["a", "b", 1]),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}], "not": {"enum": ["x"]}}, ["a", "x", 1, 1.5]),
    ({"properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": {"type": "integer"}},
     [{"a": "x"}, {"a": 1}, {}, {"a": "x", "b": 2}, {"a": "x", "b": "2"}, "not an object"]),
    ({"items": {"type": "string"}, "type": "array"}, [[], ["a"], ["a", 1], "a"]),
    ({"$defs": {"n": {"properties": {"next": {"$ref": "#/$defs/n"}}, "additionalProperties": False}},
      "$ref": "#/$defs/n"}, [{}, {"next": {"next": {}}}, {"next": {"other": 1}}]),
])
def test_each_keyword_is_jsonschemas(schema, instances):
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    check = compile_validity(validator)
    assert check is not None
    assert [check(instance) for instance in instances] == [validator.is_valid(instance) for instance in instances]


@pytest.mark.parametrize("schema", [
    {"type": "string", "pattern": "^a"}, {"minimum": 1}, {"prefixItems": [{}], "items": False},
    {"properties": {"a": {"$id": "other", "type": "string"}}}, {"$ref": "#/nowhere"},
])
def test_what_it_does_not_implement_is_left_to_jsonschema(schema):
    import jsonschema

    assert compile_validity(jsonschema.Draft202012Validator(schema)) is None
    assert compile_validity(jsonschema.Draft202012Validator({}, format_checker=jsonschema.FormatChecker())) is None


def test_a_violation_reads_the_same_whether_or_not_the_compiled_check_is_in_use(manifests):
    deployment = copy.deepcopy(next(m for m in manifests if m["kind"] == "Deployment"))
    deployment["spec"]["replicas"] = "two"
    # The first use of a validator is jsonschema's alone, later ones go through the compiled check first.
    first, second = validate.validate_manifests([deployment]), validate.validate_manifests([deployment])
    assert first == second and len(first) == len(validate.SUPPORTED_KUBERNETES_VERSIONS)
    assert first[0].endswith("spec.replicas: 'two' is not of type 'integer', 'null'")
    assert validate.validate_manifests(manifests) == validate.validate_manifests(manifests) == []
