"""`vllm-serving schema`: the JSON Schema of a whole stack file, generated from the config models.

Editors (yaml-language-server: VS Code's YAML extension, Neovim, JetBrains, Helix) use it for
completion, hover documentation and validation of `stacks/Pulumi.<stack>.yaml`. It is built from
`ServingConfig.model_json_schema()`, so every field's description, default and allowed values
come from the models, then shaped as a stack file holds them:

- each top-level field is a key `vllm-serving:<field>` of `config:`; other namespaces'
  keys (`kubernetes:context`, ...) are left alone, an unknown `vllm-serving:` key is refused;
- a top-level number or boolean may be written as the string `pulumi config set` stores;
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

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SECURE_REF = {"$ref": "#/$defs/Secure"}
SECURE = {
    "type": "object",
    "description": "A Pulumi secret, encrypted by `pulumi config set --secret` (`--path` for a nested value).",
    "properties": {"secure": {"type": "string"}},
    "required": ["secure"],
    "additionalProperties": False,
}
# The string forms Pulumi writes for a top-level value set without --path.
_STRING_FORMS: dict[str, dict[str, Any]] = {
    "integer": {"type": "string", "pattern": r"^-?[0-9]+$"},
    "number": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"},
    "boolean": {"type": "string", "enum": ["true", "false"]},
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

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> dict[str, Any]:
        inner = super().function_before_schema(schema)
        accepted = [kind for kind, probe in (("number", 4), ("boolean", True)) if _accepts(schema, probe)]
        if not accepted:
            return inner
        if inner.get("type") == "string":
            return {**inner, "type": ["string", *accepted]}
        if any(option.get("type") == "string" for option in inner.get("anyOf", [])):
            return {**inner, "anyOf": [*inner["anyOf"], *({"type": kind} for kind in accepted)]}
        return inner


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


def _with_string_forms(node: dict[str, Any]) -> dict[str, Any]:
    options = node.get("anyOf", [node])
    forms = [_STRING_FORMS[o["type"]] for o in options if isinstance(o.get("type"), str) and o["type"] in _STRING_FORMS]
    if not forms:
        return node
    return _allow_extra(node, forms)


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
    return _with_string_forms(node)


def stack_file_schema() -> dict[str, Any]:
    """The JSON Schema of a `Pulumi.<stack>.yaml` that uses this program."""
    config = model_schema()
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
