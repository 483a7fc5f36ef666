"""The `vllm-serving diff` command: its arguments, its exit status, and the run that ties the parts."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Optional, TextIO

from ..stack_file import StackFileError, stack_name
from .checkout import DiffError, render_sides, resolve_stack
from .compare import compare
from .printing import render_markdown, render_text

EXIT_SAME, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2


def run(
    stack: str, base: str = "HEAD", output_format: str = "text", out: Optional[TextIO] = None, err: Optional[TextIO] = None
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        old, new = render_sides(stack, base)
    except (DiffError, StackFileError) as error:
        print(f"error: {error}", file=err)
        return EXIT_ERROR
    except Exception:
        # An uncaught exception would exit with 1, which here means "changed".
        traceback.print_exc(file=err)
        return EXIT_ERROR
    report = compare(stack_name(resolve_stack(stack)), old, new)
    out.write(render_markdown(report) if output_format == "markdown" else render_text(report))
    return EXIT_CHANGED if report.changed else EXIT_SAME


def _diff_command(args: argparse.Namespace) -> int:
    return run(args.stack, args.base, args.format)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "diff",
        help="show what a stack change would do (add, change, replace, restart), against a git revision",
        description=(
            "Render the stack at a git revision (by that revision's own code) and in the working tree, and "
            "print per resource what is added, removed or changed, field by field, marking changes that "
            "replace a resource or restart the server pods. Exit status: 0 no change, 1 changes, 2 error."
        ),
    )
    parser.add_argument("stack", help="a stack name under stacks/ (e.g. codellama-7b) or a stack config file")
    parser.add_argument("--base", default="HEAD", help="the git revision to compare against (default: HEAD)")
    parser.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text: plain text; markdown: a summary heading and the text in a fenced block, for a PR comment",
    )
    parser.set_defaults(handler=_diff_command)
