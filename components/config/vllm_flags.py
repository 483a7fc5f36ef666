"""Which vLLM option an extraArgs item sets, read the way the server's parser reads it.

The server's parser is vLLM's FlexibleArgumentParser (vllm/utils/argparse_utils.py), an
argparse.ArgumentParser that leaves allow_abbrev at its default, True. So the checks must:

- turn '_' into '-' in the name, from the `--` to the first '.' (FlexibleArgumentParser.parse_args;
  `--api-key.x=1` sets --api-key with a JSON value, so the name also ends at the first '.');
- take an exact option first, then the part before '=' if it is an exact option;
- otherwise take a unique prefix of the option strings (argparse's _get_option_tuples, Python
  3.12): `--api-ke=x` is --api-key and `--tensor-parallel=2` is --tensor-parallel-size; for one
  dash, an option equal to the first two characters (`-qawq` is -q awq) or starting with the
  whole argument (`-t 2` is -tp 2); more than one match is an error at start-up.

The option strings are those of the release the stack runs: its engine profile
(components/engine, generated from its source by scripts/vllm_options.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME_PART = re.compile(r"(?<=--)[^.]*")


@dataclass(frozen=True)
class Reading:
    """How the parser reads one argument: the option strings it may set (none: not an option)."""

    # The flag as the user wrote it (the argument up to '='), for messages.
    written: str
    options: tuple[str, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.options) > 1


def normalized(argument: str) -> str:
    """FlexibleArgumentParser's rewrite: '_' to '-' in the name, and the name ends at the first '.'."""
    if not argument.startswith("--"):
        return argument
    name, sep, value = argument.partition("=")
    name = _NAME_PART.sub(lambda match: match.group(0).replace("_", "-"), name, count=1)
    name = name.split(".", 1)[0]
    return f"{name}{sep}{value}"


def read_argument(argument: str, options: tuple[str, ...]) -> Reading:
    """The option strings `argument` may set, as argparse's _parse_optional finds them."""
    text = normalized(argument)
    name, written = text.split("=", 1)[0], argument.split("=", 1)[0]
    if len(text) < 2 or text[0] != "-":
        return Reading(written, ())
    if text in options:
        return Reading(written, (text,))
    if "=" in text and name in options:
        return Reading(written, (name,))
    if text[1] == "-":
        return Reading(written, tuple(option for option in options if option.startswith(name)))
    # One dash: `-qawq` is -q with awq; `-t` is any option starting with -t.
    return Reading(
        written,
        tuple(option for option in options if option == text[:2] or option.startswith(text)),
    )
