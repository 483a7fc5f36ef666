"""server.extraArgs read against the parser of the release the stack runs (components/engine).

An option the release does not have, one its parser finds ambiguous, a switch given a value and a
value argparse would not convert stop vLLM at start-up ("unrecognized arguments", "invalid int
value", "invalid choice"): the pod crash-loops and `pulumi up` waits out the rollout. With a profile
of the release itself they are refused here; with only the nearest one (a custom tag, a release
without a profile) they are warnings, since the image's own parser may differ.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from ..engine import EngineChoice, EngineProfile, engine_choice, profile_having
from .fields import shown
from .server import ENGINE_FLAGS
from .stack import ServingConfig
from .vllm_flags import Reading, normalized, read_argument

# vllm/utils/argparse_utils.py, human_readable_int: a number with a decimal (k, m, g, t) or binary
# (K, M, G, T) suffix; decimals only with a decimal suffix.
_HUMAN = re.compile(r"(\d+(?:\.\d+)?)([kKmMgGtT])")


def _explicit_value(argument: str, option: str) -> str | None:
    """The value written in the same item: after '=', or glued to a one-dash option (-qawq)."""
    text = normalized(argument)
    if "=" in text:
        return text.split("=", 1)[1]
    if not text.startswith("--") and option == text[:2] and len(text) > 2:
        return text[2:]
    return None


def _converts(value: str, spec: Mapping[str, Any]) -> bool:
    """Whether argparse's type and choices accept `value` (engine/arg_utils.py, _compute_kwargs)."""
    if spec.get("optional") and value in ("", "None"):  # optional_type: both mean None
        return True
    if "choices" in spec:
        choices = spec["choices"]
        try:
            return type(choices[0])(value) in choices
        except ValueError:
            return False
    kind = spec.get("type")
    try:
        if kind == "float":
            float(value)
        elif kind == "int":
            int(value)
        elif kind in ("human_int", "human_int_or_auto"):
            stripped = value.strip()
            if kind == "human_int_or_auto" and (stripped == "-1" or stripped.lower() == "auto"):
                return True
            match = _HUMAN.fullmatch(stripped)
            if match:
                return match.group(2).islower() or "." not in match.group(1)
            int(stripped)
    except ValueError:
        return False
    return True


def _wanted(spec: Mapping[str, Any]) -> str:
    if "choices" in spec:
        return "one of " + ", ".join(str(choice) for choice in spec["choices"])
    return {
        "int": "an integer",
        "float": "a number",
        "human_int": "an integer (k/m/g/t multiply by 1000, K/M/G/T by 1024)",
        "human_int_or_auto": "an integer (k/m/g/t multiply by 1000, K/M/G/T by 1024), or auto / -1",
    }[spec["type"]]


def _unknown(reading: Reading, profile: EngineProfile, release: str) -> str:
    name = normalized(reading.written)
    close = difflib.get_close_matches(name, [o for o in profile.option_strings if o.startswith("--")], n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else ""
    other = profile_having(name, profile)
    elsewhere = f" ({other.name} has it: set image.tag to v{other.version} to use it)" if other else ""
    return f"{shown(reading.written)} is not an option of {release}{elsewhere}: it would stop at start-up with 'unrecognized arguments'{hint}"


def release_problem(argument: str, reading: Reading, profile: EngineProfile, named_by: str = "") -> str | None:
    """Why `profile`'s parser refuses the extraArgs item, or None. The value is never shown (a
    mistyped item may hold a secret). `named_by` says where the release came from (image.tag ...)."""
    release = f"{profile.name} ({named_by})" if named_by else profile.name
    if not reading.options:
        return _unknown(reading, profile, release)
    if reading.ambiguous:
        others = ", ".join(reading.options[:5]) + (", ..." if len(reading.options) > 5 else "")
        return f"{shown(reading.written)} is ambiguous to the parser of {release} ({others}), which refuses to start; write the option in full"
    (option,) = reading.options
    spec = profile.options[option]
    value = _explicit_value(argument, option)
    if spec.get("flag"):
        if value is None:
            return None
        return f"{option} is a switch in {release} and takes no value (argparse: 'ignored explicit argument'); write {option} alone"
    wanted = spec.get("value")
    if wanted is None:
        return None
    if value is None:
        return f"{option} needs a value in the same item ({option}=...): in {release} it takes {_wanted(wanted)}"
    if not _converts(value, wanted):
        return f"the value of {option} is not one {release} accepts: it takes {_wanted(wanted)}"
    return None


def release_findings(config: ServingConfig) -> list[tuple[str, str]]:
    """(server.extraArgs.N, why) for each flag item the release's parser would refuse."""
    choice = engine_choice(config)
    profile = choice.profile
    findings = []
    for index, argument in enumerate(config.server.extraArgs):
        if not argument.startswith("-"):
            continue  # a bare item is refused on its own (rules.py)
        why = release_problem(argument, read_argument(argument, profile.option_strings), profile, f"the nearest profile to {choice.named_by}")
        if why:
            findings.append((f"server.extraArgs.{index}", why))
    return findings


def typed_flag_findings(config: ServingConfig) -> list[tuple[str, str]]:
    """(typed key, why) for each flag a typed key renders that the release's parser would refuse:
    e.g. lora.maxLoraRank 12, which vLLM's --max-lora-rank does not take (its choices are 1, 8,
    16, ...), or a flag the release does not have."""
    from ..server.args import server_args  # the command line is the server's; config is imported by it

    choice = engine_choice(config)
    profile = choice.profile
    rendered = server_args(config)
    findings = []
    for argument in rendered[: len(rendered) - len(config.server.extraArgs)]:
        reading = read_argument(argument, profile.option_strings)
        key = next((ENGINE_FLAGS[option] for option in reading.options if option in ENGINE_FLAGS), None)
        if key is None or key.startswith("apiKey"):
            continue  # a flag the program always sets (--model, --host, ...), not a user's value
        why = release_problem(argument, reading, profile, choice.named_by)
        if why:
            findings.append((key, f"renders {normalized(argument).split('=', 1)[0]}, and {why}"))
    return findings


def engine_warnings(config: ServingConfig) -> list[str]:
    """What the server component warns about: the profile is only the nearest, and what that
    profile would have refused."""
    choice: EngineChoice = engine_choice(config)
    if choice.exact:
        return []
    findings = [*release_findings(config), *typed_flag_findings(config)]
    return [choice.warning or "", *(f"{path}: {why}" for path, why in findings)]
