"""`vllm-serving schema`: the JSON Schema of a whole stack file, generated from the config models.

Editors (yaml-language-server: VS Code's YAML extension, Neovim, JetBrains, Helix) use it for
completion, hover documentation and validation of `stacks/Pulumi.<stack>.yaml`. It is built from
`ServingConfig.model_json_schema()`, so every field's description, default and allowed values
come from the models, then shaped as a stack file holds them:

- each top-level field is a key `vllm-serving:<field>` of `config:`; other namespaces'
  keys (`kubernetes:context`, ...) are left alone, an unknown `vllm-serving:` key is refused;
- a number or boolean, at any depth, may be written as text in the forms the program takes
  (components/config/fields.py, SCALAR_STRING_FORMS): what `pulumi config set` stores for a
  top-level value, and a quoted number;
- a value that may be a secret (`apiKey`, which must be; `env[].value`) may be `{secure: ...}`;
- a string whose validator converts YAML numbers (quantities such as `cpu: 4`) accepts numbers.

Rules across keys (e.g. tensor x pipeline parallel = GPUs, replicas on a ReadWriteOnce volume)
and rules that live in validators rather than in the field types (quantity syntax, DNS names, a
pinned image tag) are not in the schema; `vllm-serving render` checks them all.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast, get_args

from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import SchemaValidator, core_schema
from typing_extensions import override

from components.config import CONFIG_NAMESPACE, ServingConfig
from components.config.fields import SCALAR_STRING_FORMS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SECURE_REF = {"$ref": "#/$defs/Secure"}
SECURE = {
    "type": "object",
    "description": "A Pulumi secret, encrypted by `pulumi config set --secret` (`--path` for a nested value).",
    "properties": {"secure": {"type": "string"}},
    "required": ["secure"],
    "additionalProperties": False,
}


class _ModelSchema(GenerateJsonSchema):
    """Pydantic's schema, plus what a before-validator lets through where the type says string."""

    @override
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # pydantic's titles ("Replicacount") only add noise to an editor's hover

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> dict[str, Any]:
        # Pydantic leaves out a default made by a factory; editors should show it like any other.
        if "default_factory" in schema and not schema.get("default_factory_takes_data"):
            # Without default_factory_takes_data the factory takes no arguments.
            make_default = cast(Callable[[], Any], schema["default_factory"])
            schema = {**schema, "default": make_default()}
            del schema["default_factory"]
        return super().default_schema(schema)

    # A number or boolean key, at any depth, also takes the text StrictModel takes for it.
    def int_schema(self, schema: core_schema.IntSchema) -> dict[str, Any]:
        return _or_text(super().int_schema(schema), "integer")

    def float_schema(self, schema: core_schema.FloatSchema) -> dict[str, Any]:
        return _or_text(super().float_schema(schema), "number")

    def bool_schema(self, schema: core_schema.BoolSchema) -> dict[str, Any]:
        return _or_text(super().bool_schema(schema), "boolean")

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> dict[str, Any]:
        inner = super().function_before_schema(schema)
        # A number as small as 4 and as large as 2^36 (a memory quantity in bytes, above its floor).
        probes = {"number": (4, 2**36), "boolean": (True,)}
        accepted = [kind for kind, values in probes.items() if any(_accepts(schema, value) for value in values)]
        if not accepted:
            return inner
        if inner.get("type") == "string":
            return {**inner, "type": ["string", *accepted]}
        options = inner.get("anyOf", [])
        if any(option.get("type") in ("integer", "number", "boolean") for option in options):
            return inner  # a number or boolean key with its text form (_or_text): nothing to widen
        if any(option.get("type") == "string" for option in options):
            return {**inner, "anyOf": [*inner["anyOf"], *({"type": kind} for kind in accepted)]}
        return inner


# An integer's text with the sign its bounds allow: "-1" for a count is refused by both sides.
_NON_NEGATIVE, _POSITIVE = r"^[0-9]+$", r"^0*[1-9][0-9]*$"


def _signed_pattern(minimum: Any) -> str:
    if minimum is not None and minimum >= 1:
        return _POSITIVE
    return _NON_NEGATIVE if minimum is not None and minimum >= 0 else SCALAR_STRING_FORMS["integer"]


def _or_text(inner: dict[str, Any], kind: str) -> dict[str, Any]:
    pattern = _signed_pattern(inner.get("minimum")) if kind == "integer" else SCALAR_STRING_FORMS[kind]
    return {"anyOf": [inner, {"type": "string", "pattern": pattern}]}


def _field_minimums(node: Any) -> None:
    """A bound a field declares beside its type (json_schema_extra, e.g. nvidia.com/gpu's minimum 1)
    lands next to the anyOf: give it to the number option and the integer text's pattern too."""
    if isinstance(node, dict):
        if "minimum" in node and "anyOf" in node:
            for option in node["anyOf"]:
                if option.get("type") == "integer":
                    option.setdefault("minimum", node["minimum"])
                elif option.get("type") == "string" and option.get("pattern") == SCALAR_STRING_FORMS["integer"]:
                    option["pattern"] = _signed_pattern(node["minimum"])
        for value in node.values():
            _field_minimums(value)
    elif isinstance(node, list):
        for item in node:
            _field_minimums(item)


def _accepts(schema: core_schema.CoreSchema, probe: Any) -> bool:
    """Whether the field's own validation turns a YAML number or boolean into a string."""
    try:
        SchemaValidator(schema).validate_python(probe)
    except Exception:  # refused, or a validator that cannot run outside its model: not widened
        return False
    return True


def model_schema() -> dict[str, Any]:
    """ServingConfig's JSON Schema: descriptions, defaults, enums, bounds, unknown keys refused."""
    return ServingConfig.model_json_schema(by_alias=True, schema_generator=_ModelSchema)


def _is_secret_field(node: dict[str, Any]) -> bool:
    options = node.get("anyOf", [node])
    return any(option.get("format") == "password" for option in options)


def _allow_extra(node: dict[str, Any], extra: list[dict[str, Any]]) -> dict[str, Any]:
    kept = {k: v for k, v in node.items() if k in ("description", "default", "title")}
    options = node.get("anyOf", [{k: v for k, v in node.items() if k not in kept}])
    return {**kept, "anyOf": [*options, *extra]}


def _env_value_secure(defs: dict[str, Any]) -> None:
    """Environment values may be secrets (a proxy URL with a password, a token)."""
    (env_items,) = get_args(ServingConfig.model_fields["env"].annotation)  # list[EnvVar]
    value = defs[env_items.__name__]["properties"]["value"]
    defs[env_items.__name__]["properties"]["value"] = _allow_extra(value, [SECURE_REF])


def _top_level_key(node: dict[str, Any]) -> dict[str, Any]:
    if _is_secret_field(node):
        # A plain API key is refused by the program: it would sit in clear text in the stack file.
        kept = {k: v for k, v in node.items() if k in ("description", "title")}
        return {**kept, **SECURE_REF}
    return node


def stack_file_schema() -> dict[str, Any]:
    """The JSON Schema of a `Pulumi.<stack>.yaml` that uses this program."""
    config = model_schema()
    _field_minimums(config)
    defs = config.pop("$defs", {})
    _env_value_secure(defs)
    defs["Secure"] = SECURE
    keys = {f"{CONFIG_NAMESPACE}:{name}": _top_level_key(node) for name, node in config["properties"].items()}
    known = "|".join(name.replace(".", r"\.") for name in config["properties"])
    return {
        "$schema": DIALECT,
        "title": "vllm-serving stack file",
        "description": "A Pulumi stack config file (stacks/Pulumi.<stack>.yaml) for the vllm-serving program. "
        "Rules across keys are checked by `vllm-serving render`, not by this schema.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "description": f"Stack config; this program's keys are `{CONFIG_NAMESPACE}:<key>`.",
                "properties": keys,
                "required": [f"{CONFIG_NAMESPACE}:{name}" for name in config.get("required", [])],
                # Keys of other namespaces are other programs' and providers' business.
                "patternProperties": {f"^{CONFIG_NAMESPACE}:(?!(?:{known})$)": False},
                "propertyNames": {"pattern": "^[^:]+:.+$"},
            },
        },
        "required": ["config"],
        "$defs": defs,
    }


def _schema_command(args: argparse.Namespace) -> int:
    from . import config_reference

    if args.readme:
        changed = config_reference.update_readme(Path(args.readme))
        print(f"{args.readme}: {'config reference regenerated' if changed else 'already current'}", file=sys.stderr)
    elif args.markdown:
        sys.stdout.write(config_reference.markdown())
    else:
        sys.stdout.write(json.dumps(stack_file_schema(), indent=2, ensure_ascii=False) + "\n")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "schema",
        help="print the JSON Schema of a stack file (for editors), or the config reference as markdown",
    )
    parser.add_argument("--markdown", action="store_true", help="print the config reference tables instead")
    parser.add_argument(
        "--readme",
        metavar="PATH",
        help="with --markdown: regenerate the tables in PATH in place, keeping its hand-written meanings",
    )
    parser.set_defaults(handler=_schema_command)
