"""The `vllm-serving diff` command: its arguments, its exit status, and the run that ties the parts."""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from ..stack_file import StackFileError, stack_name
from .checkout import DiffError, render_many_sides, resolve_stack
from .compare import compare
from .model import Side
from .printing import render_markdown, render_text, render_violations_markdown

EXIT_SAME, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2


def _report_error(  # noqa: PLR0917 - private, one call site
    stack: str, error: BaseException, output_format: str, several: bool, out: TextIO, err: TextIO) -> None:
    if isinstance(error, (DiffError, StackFileError)):
        message = str(error)
    else:
        # An uncaught exception would exit with 1, which here means "changed".
        message = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
    print(f"error: stack {stack}: {message}" if several else f"error: {message}", file=err)
    if output_format == "markdown":
        # The comment CI posts shows each stack's error where that stack's diff would be.
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", message)), default=0))
        out.write(f"#### Stack `{stack}`: error\n{fence}text\n{message}\n{fence}\n")


def _validate(  # noqa: PLR0917 - private, one call site
    name: str, work: Side, output_format: str, several: bool, out: TextIO, err: TextIO,
) -> int:
    """`--validate`: the working tree's manifests, the ones the diff just rendered, against the
    schemas, as `render --validate` checks them; EXIT_ERROR on a violation."""
    from ..validate import validate_manifests, validation_summary

    manifests = [resource["manifest"] for resource in work.resources.values() if resource.get("manifest") is not None]
    failures = validate_manifests(manifests)
    prefix = f"stack {name}: " if several else ""
    if not failures:
        print(prefix + validation_summary(manifests), file=err)
        return EXIT_SAME
    print("\n".join(prefix + failure for failure in failures), file=err)
    if output_format == "markdown":
        out.write(render_violations_markdown(failures))
    return EXIT_ERROR


def run_many(  # noqa: PLR0917 - the tests pass the leading three by position
    stacks: Sequence[str], base: str = "HEAD", output_format: str = "text",
    out: TextIO | None = None, err: TextIO | None = None, validate: bool = False,
) -> int:
    """Diff every stack in one process (one base subprocess per project, unless the base's code
    is this code): the worst exit status. `validate`: also check each working tree rendering
    against the schemas (EXIT_ERROR on a violation)."""
    out, err = out or sys.stdout, err or sys.stderr
    several = len(stacks) > 1
    try:
        results = render_many_sides(stacks, base)
    except Exception as error:
        for stack in stacks:
            _report_error(stack, error, output_format, several, out, err)
        return EXIT_ERROR
    worst = EXIT_SAME
    for index, (stack, result) in enumerate(zip(stacks, results, strict=False)):
        name = stack_name(resolve_stack(stack))
        if several and index and output_format == "text":
            out.write("\n")
        if isinstance(result, Exception):
            _report_error(name, result, output_format, several, out, err)
            worst = EXIT_ERROR
            continue
        report = compare(name, *result)
        if several and output_format == "markdown" and index:
            out.write("\n")
        out.write(render_markdown(report) if output_format == "markdown" else render_text(report))
        worst = max(worst, EXIT_CHANGED if report.changed else EXIT_SAME)
        if validate and not report.work.absent:
            worst = max(worst, _validate(name, report.work, output_format, several, out, err))
    return worst


def run(  # noqa: PLR0917 - as run_many
    stack: str, base: str = "HEAD", output_format: str = "text", out: TextIO | None = None,
    err: TextIO | None = None, validate: bool = False,
) -> int:
    return run_many([stack], base, output_format, out, err, validate)


def _diff_command(args: argparse.Namespace) -> int:
    from ..cli import stack_arguments

    return run_many(stack_arguments(args), args.base, args.format, validate=args.validate)


def add_parser(commands: argparse._SubParsersAction) -> None:
    from ..cli import add_stack_arguments

    parser = commands.add_parser(
        "diff",
        help="show what a stack change would do (add, change, replace, restart), against a git revision",
        description=(
            "Render each stack at a git revision (by that revision's own code, in one subprocess for all "
            "stacks) and in the working tree, and print per resource what is added, removed or changed, "
            "field by field, marking changes that replace a resource or restart the server pods. Exit "
            "status, the worst of the stacks: 0 no change, 1 changes, 2 error (or, with --validate, a "
            "schema violation)."
        ),
    )
    add_stack_arguments(parser)
    parser.add_argument("--base", default="HEAD", help="the git revision to compare against (default: HEAD)")
    parser.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text: plain text; markdown: a summary heading and the text in a fenced block, for a PR comment",
    )
    parser.add_argument(
        "--validate",
        action="store_true",
        help="also check every manifest of the working tree against the Kubernetes OpenAPI schemas of each "
        "supported version, as `render --validate` does, from the same rendering (exit status 2 on a violation)",
    )
    parser.set_defaults(handler=_diff_command)
