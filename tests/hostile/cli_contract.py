"""The contract every refused stack file is held to, checked on a real `vllm-serving render` process.

A process of its own, as a user runs it: an uncaught exception would print its traceback there,
and a runaway read would be stopped by the address-space limit set in the child before it starts.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vllm_serving.stack_file import PROJECT_ROOT

EXIT_INVALID = 2
MEMORY_LIMIT = 2 << 30  # bytes of address space; a refused stack needs a fraction of it
TIME_LIMIT = 8.0  # seconds, with room for a loaded 2-core machine: the slowest case measured 2.8 s
STDERR_LIMIT = 4096  # bytes


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def render_in_a_process(path: Path) -> Outcome:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "vllm_serving", "render", str(path)],
        cwd=PROJECT_ROOT, capture_output=True, stdin=subprocess.DEVNULL, timeout=120, preexec_fn=_limit_memory,
    )
    seconds = time.monotonic() - started
    return Outcome(result.returncode, result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace"), seconds)


def contract_violations(outcome: Outcome, names: tuple[str, ...], absent: tuple[str, ...] = ()) -> list[str]:
    """What is wrong with how a hostile stack was refused; empty when it was refused cleanly."""
    problems = []
    if outcome.code != EXIT_INVALID:
        problems.append(f"exit {outcome.code}, not {EXIT_INVALID}")
    if outcome.stdout:
        problems.append(f"printed {len(outcome.stdout)} characters on stdout")
    for marker in ("Traceback", "MemoryError", "RecursionError", "unexpected "):
        if marker in outcome.stderr:
            problems.append(f"{marker!r} in stderr")
    if len(outcome.stderr.encode()) > STDERR_LIMIT:
        problems.append(f"{len(outcome.stderr.encode())} bytes of stderr (limit {STDERR_LIMIT})")
    if outcome.seconds > TIME_LIMIT:
        problems.append(f"took {outcome.seconds:.1f} s (limit {TIME_LIMIT} s)")
    problems += [f"does not name {name!r}" for name in names if name not in outcome.stderr]
    problems += [f"echoes {text[:40]!r}" for text in absent if text in outcome.stderr]
    return problems
