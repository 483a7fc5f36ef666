"""The `vllm-serving import-values` command: read the values, check the result, write the stack."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from components.config import ConfigError, parse_config

from ..project import current_project, shown
from ..stack_file import StackFileError
from .stack_document import stack_document
from .translate import translate

EXIT_OK = 0
EXIT_INVALID = 2

_STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


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
    for path, reason in translation.left_out:
        print(f"left out: {path}: {reason}", file=sys.stderr)
    for note in translation.notes:
        print(f"note: {note}", file=sys.stderr)
    for warning in translation.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        parse_config(translation.config)
    except ConfigError as error:
        print(f"error: {values_path} does not make a valid stack, nothing written: {error}", file=sys.stderr)
        return EXIT_INVALID

    target = stacks_dir / f"Pulumi.{stack}.yaml"
    if target.exists() and not force:
        raise ImportFailure(f"{shown(target)} already exists: pass --force to overwrite it")
    existed = target.exists()
    stacks_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(stack_document(translation, str(values_path)))
    dropped = len(translation.dropped)
    summary = f" ({dropped} key{'s' if dropped != 1 else ''} not carried over, listed above)" if dropped else ""
    print(f"{'overwrote' if existed else 'wrote'} {shown(target)}{summary}", file=sys.stderr)
    print(
        f"next: vllm-serving render {shown(target)}; then pulumi stack init {stack} && pulumi up --stack {stack}; "
        f"then vllm-serving verify --stack {stack}",
        file=sys.stderr,
    )
    return EXIT_OK


def _import_values_command(args: argparse.Namespace) -> int:
    try:
        stacks_dir = Path(args.stacks_dir) if args.stacks_dir else current_project().stacks_dir
        return import_values(Path(args.values), args.stack, stacks_dir, args.force)
    except (ImportFailure, StackFileError) as failure:
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
        "--stacks-dir", metavar="DIR",
        help="where stack files live (default: the project's stack directory, stacks/ of the nearest "
        "directory with Pulumi.yaml from here upwards)",
    )
    parser.set_defaults(handler=_import_values_command)
