"""`vllm-serving import-values`: turn a T9k vLLM chart values file into a stack file.

The stack schema keeps the chart's field names and meanings, so the translation is a
copy of the chart's fields under the `vllm-serving:` namespace. What needs care is
everything else: keys the chart does not have are reported, not guessed at, and the one
default that differs (image.tag) is written out so the stack serves what the chart did.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config import CONFIG_NAMESPACE, DEFAULT_VLLM_TAG, ConfigError, ServingConfig, parse_config

from .stack_file import STACKS_DIR

EXIT_OK = 0
EXIT_INVALID = 2

# The chart's default image tag: a values file without image.tag ran this release.
CHART_DEFAULT_TAG = "v0.3.3"

_LEAF = "leaf"
# Kubernetes' own shape (secretKeyRef, configMapKeyRef, ...), passed to the pods unchanged.
_OPAQUE = "opaque"
_ENV_ITEM = {"name": _LEAF, "value": _LEAF, "valueFrom": _OPAQUE}

# Every field of the chart's values (its README's field table), as a tree.
CHART_FIELDS: dict[str, Any] = {
    "replicaCount": _LEAF,
    "image": {"registry": _LEAF, "repository": _LEAF, "tag": _LEAF, "pullPolicy": _LEAF},
    "resources": {"limits": {"cpu": _LEAF, "memory": _LEAF, "nvidia.com/gpu": _LEAF}},
    "model": {
        "deployName": _LEAF,
        "volume": {
            "storageClass": _LEAF,
            "size": _LEAF,
            "accessModes": _LEAF,
            "existingClaim": _LEAF,
            "subPath": _LEAF,
        },
        "source": _LEAF,
        "huggingface": {"id": _LEAF, "files": _LEAF, "existingSecret": _LEAF},
        "git": {"url": _LEAF, "ref": _LEAF, "existingSecret": _LEAF},
        "s3": {"url": _LEAF, "existingSecret": _LEAF},
    },
    "env": [_ENV_ITEM],
}

# Keys people carry over from other charts, with what this project does instead.
_KNOWN_REASONS = {
    "resources.requests": "the chart has no requests; this project sets them equal to resources.limits",
}

_PLACEHOLDER = re.compile(r"^<[^<>]+>$")
_STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _key(path: str, key: str) -> str:
    # Quote keys with dots, as the chart's README writes resources.limits."nvidia.com/gpu".
    part = f'"{key}"' if "." in key or not key else key
    return f"{path}.{part}" if path else part


def _project_key(path: list[str]) -> bool:
    """Whether the stack schema has a key at this path, to point a user at it."""
    current: Any = ServingConfig
    for part in path:
        fields = getattr(current, "model_fields", None)
        if fields is None:
            return False
        found = next((f for n, f in fields.items() if (f.alias or n) == part), None)
        if found is None:
            return False
        annotation = found.annotation
        candidates = [annotation, *(getattr(annotation, "__args__", ()) or ())]
        current = next((c for c in candidates if isinstance(c, type) and hasattr(c, "model_fields")), None)
    return True


@dataclass
class Translation:
    config: dict[str, Any]
    # (key path in the values file, why it was not carried over)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _carry(value: Any, schema: Any, path: str, keys: list[str], out: Translation) -> Any:
    if schema == _LEAF or schema == _OPAQUE:
        return value
    if isinstance(schema, list):
        if not isinstance(value, list):
            return value  # the wrong shape: validation names it
        return [_carry(item, schema[0], f"{path}[{index}]", keys, out) for index, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    carried = {}
    for key, item in value.items():
        key_path = _key(path, str(key))
        if key not in schema:
            reason = _KNOWN_REASONS.get(key_path)
            if reason is None:
                # Helm ignores values its templates never read, so leaving it out keeps what the chart did.
                reason = f"unknown key, which the chart ignored; the chart's keys here: {', '.join(schema)}"
                if _project_key([*keys, str(key)]):
                    reason += f"; this project has {CONFIG_NAMESPACE}:{key_path}: set it by hand to use it"
            out.dropped.append((key_path, reason))
            continue
        if item is None:
            # Helm drops a null from the values, so the chart's default applies, as it does here.
            continue
        carried[key] = _carry(item, schema[key], key_path, [*keys, str(key)], out)
    return carried


def _placeholders(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [hit for key, item in value.items() for hit in _placeholders(item, _key(path, str(key)))]
    if isinstance(value, list):
        return [hit for index, item in enumerate(value) for hit in _placeholders(item, f"{path}[{index}]")]
    return [(path, value)] if isinstance(value, str) and _PLACEHOLDER.match(value.strip()) else []


def translate(values: dict[str, Any]) -> Translation:
    """The stack config (keys without the namespace) that means what these chart values meant."""
    out = Translation(config={})
    out.config = _carry(values, CHART_FIELDS, "", [], out)

    image = out.config.get("image")
    if image is None or isinstance(image, dict):
        image = dict(image or {})
        tag = image.get("tag")
        if tag is None:
            # This project's default is newer; importing a default must not silently upgrade the server.
            image["tag"] = CHART_DEFAULT_TAG
            out.notes.append(
                f"image.tag is not set: the chart's default {CHART_DEFAULT_TAG!r} is written out, so the stack "
                f"serves what the chart served; this project recommends its pinned {DEFAULT_VLLM_TAG!r}"
            )
        elif str(tag) != DEFAULT_VLLM_TAG:
            out.notes.append(
                f"image.tag {str(tag)!r} is carried over as given; this project recommends its pinned "
                f"{DEFAULT_VLLM_TAG!r} (set {CONFIG_NAMESPACE}:image.tag once the import is verified)"
            )
        if "image" in out.config:
            out.config["image"] = image
        else:
            # Where the chart's own example puts it: after replicaCount.
            rest = dict(out.config)
            head = {"replicaCount": rest.pop("replicaCount")} if "replicaCount" in rest else {}
            out.config = {**head, "image": image, **rest}

    for path, value in _placeholders(out.config):
        out.notes.append(f"{path} is {value!r}, a placeholder from the chart's example: fill it in or remove it")
    out.notes.append(
        f"the Helm release's namespace is not part of its values: the stack uses {CONFIG_NAMESPACE}:namespace "
        f"'default'; set it if the release lived elsewhere"
    )
    return out


# --- writing the stack file ---------------------------------------------------------------------


class _StackDumper(yaml.SafeDumper):
    """The layout of the hand-written stack files: list items indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # The chart writes empty strings as "", and so do the stack files.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if value == "" else None)


_StackDumper.add_representer(str, _represent_str)


def _comment(text: str) -> str:
    return "\n".join(f"# {line}".rstrip() for line in text.splitlines())


def stack_document(translation: Translation, source: str) -> str:
    header = [
        f"Imported by `vllm-serving import-values` from the T9k vLLM chart values file {source}.",
        "Every key keeps the chart's name and meaning; see docs/day2-verify-and-migrate.md.",
    ]
    if translation.dropped:
        header.append("Not carried over:")
        header += [f"  {path}: {reason}" for path, reason in translation.dropped]
    if translation.notes:
        header.append("Notes:")
        header += [f"  {note}" for note in translation.notes]
    config = {f"{CONFIG_NAMESPACE}:{key}": value for key, value in translation.config.items()}
    body = yaml.dump({"config": config}, Dumper=_StackDumper, sort_keys=False, default_flow_style=False, width=120)
    return _comment("\n".join(header)) + "\n" + body


# --- the command ----------------------------------------------------------------------------


class ImportFailure(Exception):
    pass


def read_values(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise ImportFailure(f"cannot read {path}: {error.strerror or error}") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ImportFailure(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ImportFailure(f"{path}: expected a mapping of chart values, got {type(values).__name__}")
    return values


def import_values(values_path: Path, stack: str, stacks_dir: Path, force: bool) -> int:
    if not _STACK_NAME.match(stack):
        raise ImportFailure(
            f"{stack!r} is not a stack name (letters, digits, '-', '_' and '.', starting with a letter or digit)"
        )
    translation = translate(read_values(values_path))
    for path, reason in translation.dropped:
        print(f"not carried over: {path}: {reason}", file=sys.stderr)
    for note in translation.notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        parse_config(translation.config)
    except ConfigError as error:
        print(f"error: {values_path} does not make a valid stack, nothing written: {error}", file=sys.stderr)
        return EXIT_INVALID

    target = stacks_dir / f"Pulumi.{stack}.yaml"
    if target.exists() and not force:
        raise ImportFailure(f"{target} already exists: pass --force to overwrite it")
    existed = target.exists()
    stacks_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(stack_document(translation, str(values_path)))
    dropped = len(translation.dropped)
    summary = f" ({dropped} key{'s' if dropped != 1 else ''} not carried over, listed above)" if dropped else ""
    print(f"{'overwrote' if existed else 'wrote'} {target}{summary}", file=sys.stderr)
    print(
        f"next: vllm-serving render {target}; then pulumi stack init {stack} && pulumi up --stack {stack}; "
        f"then vllm-serving verify --stack {stack}",
        file=sys.stderr,
    )
    return EXIT_OK


def _import_values_command(args: argparse.Namespace) -> int:
    try:
        return import_values(Path(args.values), args.stack, Path(args.stacks_dir), args.force)
    except ImportFailure as failure:
        print(f"error: {failure}", file=sys.stderr)
        return EXIT_INVALID


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "import-values",
        help="turn a T9k vLLM chart values file into stacks/Pulumi.NAME.yaml",
        description=(
            "Carry a values file of the T9k vLLM Helm chart over into a stack file. Keys the chart does not "
            "have are reported on stderr and left out. Exit codes: 0 written, 2 invalid values, an unreadable "
            "file, or an existing stack file without --force (nothing written)."
        ),
    )
    parser.add_argument("values", metavar="VALUES.yaml", help="the chart values file (as passed to helm -f)")
    parser.add_argument("--stack", required=True, metavar="NAME", help="the stack to write: <stacks-dir>/Pulumi.NAME.yaml")
    parser.add_argument("--force", action="store_true", help="overwrite an existing stack file")
    parser.add_argument(
        "--stacks-dir", metavar="DIR", default=str(STACKS_DIR), help=f"where stack files live (default {STACKS_DIR})"
    )
    parser.set_defaults(handler=_import_values_command)
