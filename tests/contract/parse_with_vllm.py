"""Runs inside the vLLM contract environment (not the project's), with one release's `vllm` first
on PYTHONPATH: parse each argv with that release's own parser.

Reads a JSON list of {"name", "argv", "parse_only"?} on stdin and prints {"version": vllm's own
__version__, "results": [{"name", "error"}]} (error None when vLLM accepts the argv). It uses the
parser `vllm serve` and the OpenAI api_server build (`make_arg_parser` on a
`FlexibleArgumentParser`: vllm/entrypoints/common/cli_args.py from 0.33,
vllm/entrypoints/launchers/cli_args.py in 0.32), then, unless parse_only, the checks `vllm serve`
runs on the parsed arguments before starting (`validate_parsed_serve_args`) and the conversion to
engine arguments (`AsyncEngineArgs.from_cli_args`). It stops short of `create_engine_config`,
which reads the model's config.json from /model.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def main() -> None:
    import vllm
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    try:
        from vllm.entrypoints.common.cli_args import make_arg_parser, validate_parsed_serve_args
    except ImportError:  # 0.32
        from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args

    results = []
    for case in json.load(sys.stdin):
        parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
        stderr = io.StringIO()
        try:
            # argparse reports a bad argv on stderr and exits; both are the case's error.
            with contextlib.redirect_stderr(stderr):
                args = parser.parse_args(case["argv"])
            if not case.get("parse_only"):
                validate_parsed_serve_args(args)
                AsyncEngineArgs.from_cli_args(args)
            error = None
        except SystemExit as exit_:
            error = f"argparse refused it (exit {exit_.code}): {stderr.getvalue().strip().splitlines()[-1:]}"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        results.append({"name": case["name"], "error": error})
    json.dump({"version": vllm.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
