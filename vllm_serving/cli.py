"""`vllm-serving`: see what a stack would create, without a Pulumi CLI or a cluster."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from components.config import ConfigError

from .manifests import SelectionError, file_name, in_reading_order, normalize, ordered, select, to_yaml
from .render import render, rendering_as_json
from .stack_file import StackFileError, stack_name, stack_path

EXIT_INVALID = 2


def stack_arguments(args: argparse.Namespace) -> list[str]:
    """The stacks a command was given: names and files as listed, or with --all every stack of the
    current project (its stackConfigDir)."""
    if args.all == bool(args.stack):
        raise StackFileError("give stack names or files, or --all (not both)")
    if args.all:
        from .project import current_project

        return [str(path) for path in sorted(current_project().stacks_dir.glob("Pulumi.*.yaml"))]
    return list(args.stack)


def _write_manifests(manifests: list[dict], out_dir: Path | None, header: str) -> None:
    """The rendering's output: one file per manifest in out_dir, else YAML on stdout (after
    `header`, a comment naming the stack, when several stacks share the stream)."""
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for index, manifest in enumerate(manifests, start=1):
            (out_dir / file_name(manifest, index)).write_text(to_yaml([manifest]))
        print(f"wrote {len(manifests)} manifests to {out_dir}", file=sys.stderr)
    else:
        sys.stdout.write(header + to_yaml(manifests))


def _render_one(stack: str, args: argparse.Namespace, several: bool) -> int:
    """Render one stack as the arguments ask: 0 done, 1 schema violations; raises on a config error."""
    path = stack_path(stack)
    name = stack_name(path)
    if several:
        # Warnings the program logs follow the header of the stack they belong to.
        print(f"--- stack {name} ({path})", file=sys.stderr)
    rendering = render(path, Path(args.program) if args.program else None)
    if args.format == "json":
        document = rendering_as_json(rendering)
        # One stack: one indented document, as always; several: one document per line (JSON Lines).
        sys.stdout.write((json.dumps(document) if several else json.dumps(document, indent=2)) + "\n")
        return 0
    every = [ordered(normalize(m)) for m in rendering.manifests]
    manifests = select(in_reading_order(every), args.kind, args.name)
    _print_cold_start(path)  # before the validation's summary, which ends the stack's report
    if args.validate:
        from .validate import validate_manifests, validation_summary

        # Every manifest of the stack, whatever is printed: a filter must not hide a broken one.
        failures = validate_manifests(every)
        if failures:
            prefix = f"stack {name}: " if several else ""
            print("\n".join(prefix + failure for failure in failures), file=sys.stderr)
            return 1
        print(validation_summary(every), file=sys.stderr)
    out_dir = Path(args.output) / name if args.output and several else Path(args.output) if args.output else None
    # A stack's documents start a new YAML document, so the stream stays one valid multi-document file.
    _write_manifests(manifests, out_dir, f"---\n# Stack: {name} ({path})\n" if several else "")
    return 0


def _print_cold_start(path: Path) -> None:
    """The stack's predicted cold start, on stderr (README, "Cold start")."""
    from components.config import decode_engine_config, parse_config
    from components.options.routing import routing_line
    from components.server.cold_start import cold_start_line

    from .stack_file import load_engine_config

    config, _ = load_engine_config(path)
    serving = parse_config(decode_engine_config(config))
    print(cold_start_line(serving), file=sys.stderr)
    # With routing: the picker's queue limit next to the predicted start of a replica (docs/routing.md).
    if line := routing_line(serving):
        print(line, file=sys.stderr)


def _render_failed(stack: str, args: argparse.Namespace, error: BaseException, several: bool) -> None:
    """Report one stack's failure in a batch, in its format; the other stacks still render."""
    message = str(error) if isinstance(error, (ConfigError, StackFileError)) else traceback.format_exc().rstrip()
    if several and args.format == "json":
        sys.stdout.write(json.dumps({"stack": stack, "error": message}) + "\n")
    print(f"error: stack {stack}: {message}" if several else f"error: {message}", file=sys.stderr)


def _render_command(args: argparse.Namespace) -> int:
    """Every stack in one process (the start-up is paid once); the exit status is the worst of them."""
    stacks = stack_arguments(args)
    several = len(stacks) > 1 or args.all
    worst = 0
    for stack in stacks:
        try:
            status = _render_one(stack, args, several)
        except (ConfigError, StackFileError) as error:
            if not several:
                raise  # main() reports it, as for every command
            _render_failed(stack, args, error, several)
            status = EXIT_INVALID
        except Exception as error:  # one broken stack must not hide the others' results
            if not several:
                raise
            _render_failed(stack, args, error, several)
            status = EXIT_INVALID
        worst = max(worst, status)
    return worst


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The stacks a command works on: one or more names or files, or --all."""
    parser.add_argument(
        "stack", nargs="*",
        help="stack names in the project's stack directory (stacks/; the project is the nearest directory with "
        "Pulumi.yaml, from here upwards) or stack config files; several are done in one process",
    )
    parser.add_argument("--all", action="store_true", help="every stack of the project")


def _add_render(commands: argparse._SubParsersAction) -> None:
    render_parser = commands.add_parser(
        "render", help="print every Kubernetes resource a stack would create, as multi-document YAML"
    )
    add_stack_arguments(render_parser)
    render_parser.add_argument(
        "--format",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml: the Kubernetes manifests; json: every Pulumi resource with its options, and the stack outputs "
        "(with several stacks, one JSON document per line)",
    )
    render_parser.add_argument(
        "--program",
        metavar="PATH",
        help="the Pulumi program to run (default: the program of the stack file's project, the nearest "
        "directory with Pulumi.yaml above it, else of the project here, as `pulumi up` runs it)",
    )
    render_parser.add_argument(
        "-o", "--output", metavar="DIR", help="write one file per resource into DIR (DIR/STACK/ with several stacks)"
    )
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


# Each command's module, by the command's name: a run imports only the module of its own command
# (render: none of these), which keeps their imports out of a render's start-up.
_COMMAND_MODULES = {
    "verify": "vllm_serving.verify.command",
    "import-values": "vllm_serving.import_values.command",
    "diff": "vllm_serving.diff.command",
    "schema": "vllm_serving.schema",
}


def _command_adders(command: str | None = None) -> list:
    """Each command module contributes `add_parser(commands)`; render lives here. With `command`,
    only that one's (every command's for --help, or a name that is none of them)."""
    import importlib

    if command == "render":
        return [_add_render]
    names = [command] if command in _COMMAND_MODULES else list(_COMMAND_MODULES)
    modules = [importlib.import_module(_COMMAND_MODULES[name]) for name in names]
    return ([] if command in _COMMAND_MODULES else [_add_render]) + [module.add_parser for module in modules]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vllm-serving", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in _command_adders(command):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Every failure is exit 2 and a bounded message on stderr; a traceback never reaches the user."""
    from .failure import bounded, unexpected

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, StackFileError, SelectionError) as error:
        print(bounded(f"error: {error}"), file=sys.stderr)
    except Exception as error:
        print(bounded(f"error: {unexpected(error)}"), file=sys.stderr)
    return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
