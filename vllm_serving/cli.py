"""`vllm-serving`: see what a stack would create, without a Pulumi CLI or a cluster."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from components.config import ConfigError

from .manifests import SelectionError, file_name, in_reading_order, normalize, ordered, select, to_yaml
from .render import render, rendering_as_json
from .stack_file import StackFileError, stack_path

EXIT_INVALID = 2


def _render_command(args: argparse.Namespace) -> int:
    rendering = render(stack_path(args.stack), Path(args.program) if args.program else None)
    if args.format == "json":
        sys.stdout.write(json.dumps(rendering_as_json(rendering), indent=2) + "\n")
        return 0
    every = [ordered(normalize(m)) for m in rendering.manifests]
    manifests = select(in_reading_order(every), args.kind, args.name)
    if args.validate:
        from .validate import validate_manifests, validation_summary

        # Every manifest of the stack, whatever is printed: a filter must not hide a broken one.
        failures = validate_manifests(every)
        if failures:
            print("\n".join(failures), file=sys.stderr)
            return 1
        print(validation_summary(every), file=sys.stderr)
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        for index, manifest in enumerate(manifests, start=1):
            (out / file_name(manifest, index)).write_text(to_yaml([manifest]))
        print(f"wrote {len(manifests)} manifests to {out}", file=sys.stderr)
    else:
        sys.stdout.write(to_yaml(manifests))
    return 0


def _add_render(commands: argparse._SubParsersAction) -> None:
    render_parser = commands.add_parser(
        "render", help="print every Kubernetes resource a stack would create, as multi-document YAML"
    )
    render_parser.add_argument("stack", help="a stack name under stacks/ (e.g. codellama-7b) or a stack config file")
    render_parser.add_argument(
        "--format",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml: the Kubernetes manifests; json: every Pulumi resource with its options, and the stack outputs",
    )
    render_parser.add_argument(
        "--program",
        metavar="PATH",
        help="the Pulumi program to run (default: this repository's __main__.py); "
        "e.g. __main__.py in a project made from templates/vllm-serving",
    )
    render_parser.add_argument("-o", "--output", metavar="DIR", help="write one file per resource into DIR")
    render_parser.add_argument(
        "--kind", action="append", default=[], metavar="KIND",
        help="only manifests of this kind (e.g. Deployment; case ignored); repeat for several",
    )
    render_parser.add_argument(
        "--name", action="append", default=[], metavar="NAME",
        help="only manifests with this metadata.name; repeat for several; with --kind, both must match",
    )
    render_parser.add_argument(
        "--validate",
        action="store_true",
        help="also check every manifest against the Kubernetes OpenAPI schemas of each supported version",
    )
    render_parser.set_defaults(handler=_render_command)


def _command_adders() -> list:
    """Each command module contributes `add_parser(commands)`; render lives here."""
    adders = [_add_render]
    from .import_values.command import add_parser as add_import_values
    from .verify.command import add_parser as add_verify

    adders += [add_verify, add_import_values]
    from .diff.command import add_parser as add_diff

    adders.append(add_diff)
    from .schema import add_parser as add_schema

    adders.append(add_schema)
    return adders


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vllm-serving", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in _command_adders():
        add(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Every failure is exit 2 and a bounded message on stderr; a traceback never reaches the user."""
    from .failure import bounded, unexpected

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, StackFileError, SelectionError) as error:
        print(bounded(f"error: {error}"), file=sys.stderr)
    except Exception as error:  # noqa: BLE001 - the one place where anything unexpected is caught
        print(bounded(f"error: {unexpected(error)}"), file=sys.stderr)
    return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
