"""What the command prints when it fails: a bounded message, never a traceback or a value.

Every message goes through `bounded`: a quoted value longer than VALUE_LIMIT is cut to that many
characters, a line longer than LINE_LIMIT is cut, and lines stop once the message reaches
SIZE_LIMIT, so that stderr stays under 4 KB whatever the config held (a 10 MB value, thousands
of problems) while the key path each problem line starts with survives.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path

VALUE_LIMIT = 80
LINE_LIMIT = 600
SIZE_LIMIT = 3500
# A quoted value in a message (repr or JSON style) longer than VALUE_LIMIT: its opening quote
# follows a space or bracket, so that the prose between two short quoted values is left alone.
_LONG_QUOTED = re.compile(r"(?:^|(?<=[\s(\[{:=,]))(['\"])([^'\"\n]{" + str(VALUE_LIMIT) + r"})[^'\"\n]+\1")
# For developers only: print the traceback of an unexpected failure as well.
TRACEBACK_VARIABLE = "VLLM_SERVING_TRACEBACK"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def bounded(message: str) -> str:
    message = _LONG_QUOTED.sub(lambda match: f"{match[1]}{match[2]}…{match[1]}", message)
    lines = message.splitlines() or [""]
    kept: list[str] = []
    size = 0
    for whole in lines:
        line = whole if len(whole) <= LINE_LIMIT else whole[:LINE_LIMIT] + "… (cut)"
        if size + len(line) > SIZE_LIMIT:
            kept.append(f"  … and {len(lines) - len(kept)} more lines")
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


def _where(error: BaseException) -> str:
    """The innermost frame of this project's own code (else the innermost), as `file:line in function`."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(PACKAGE_ROOT)) and "/.venv/" not in f.filename]
    if not (ours or frames):
        return "an unknown place"
    frame = (ours or frames)[-1]
    name = Path(frame.filename)
    shown = name.relative_to(PACKAGE_ROOT) if frame in ours else name.name
    return f"{shown}:{frame.lineno} in {frame.name}"


def unexpected(error: BaseException) -> str:
    """One line for a failure no check anticipated. The exception's own text is left out: it may
    quote a config value, and a config value may be a secret."""
    if os.environ.get(TRACEBACK_VARIABLE):
        traceback.print_exception(error, file=sys.stderr)
    return (
        f"unexpected {type(error).__name__} at {_where(error)} (a bug: please report it with the stack file, "
        f"secrets removed; {TRACEBACK_VARIABLE}=1 prints the traceback)"
    )
