"""Runs inside the vLLM 0.33 environment (not the project's): parse each argv with vLLM's own parser.

Reads a JSON list of {"name", "argv"} on stdin and prints a JSON list of {"name", "error"} (error
None when vLLM accepts the argv). It uses the parser `vllm serve` and the OpenAI api_server build
(vllm/entrypoints/common/cli_args.py, `make_arg_parser` on a `FlexibleArgumentParser`), then the
checks `vllm serve` runs on the parsed arguments before starting (`validate_parsed_serve_args`)
and the conversion to engine arguments (`AsyncEngineArgs.from_cli_args`). It stops short of
`create_engine_config`, which reads the model's config.json from /model.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def main() -> None:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.common.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    results = []
    for case in json.load(sys.stdin):
        parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
        stderr = io.StringIO()
        try:
            # argparse reports a bad argv on stderr and exits; both are the case's error.
            with contextlib.redirect_stderr(stderr):
                args = parser.parse_args(case["argv"])
            validate_parsed_serve_args(args)
            AsyncEngineArgs.from_cli_args(args)
            error = None
        except SystemExit as exit_:
            error = f"argparse refused it (exit {exit_.code}): {stderr.getvalue().strip().splitlines()[-1:]}"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        results.append({"name": case["name"], "error": error})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
