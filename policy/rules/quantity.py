"""Kubernetes quantities, exact.

The program's own parser (components.config.quantity_bytes) cannot serve here: the pack
runs in its own virtualenv (policy/.venv: pulumi and pulumi-policy only, no pydantic, and
pulumi-policy pins an older protobuf than the program's), with only this directory on
sys.path, so it can import nothing of the program. tests/test_policy.py proves the two
parsers agree on the same inputs.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[numkMGTPE])|[eE](?P<exponent>[+-]?\d+))?"
)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}

_DECIMAL: dict[str, int | Fraction] = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 10**3),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}



class QuantityError(ValueError):
    pass


def parse_quantity(value: Any) -> Fraction:
    """A Kubernetes resource.Quantity as an exact number (bytes, cores, devices).

    Exact, because "1Gi" vs "1073741824" or "0.5" vs "500m" must compare equal;
    numbers are accepted because Pulumi's wire format carries YAML's `gpu: 1` as 1.0.
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a Kubernetes quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a Kubernetes quantity")
        return Fraction(repr(value))
    if not isinstance(value, str):
        raise QuantityError(f"{value!r} is not a Kubernetes quantity")
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise QuantityError(
            f"{value!r} is not a Kubernetes quantity (a number with an optional suffix Ki, Mi, Gi, Ti, "
            "Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent, e.g. 24Gi)"
        )
    number = Fraction(match["number"])
    if match["binary"]:
        return number * _BINARY[match["binary"]]
    if match["decimal"]:
        return number * _DECIMAL[match["decimal"]]
    if match["exponent"]:
        return number * Fraction(f"1e{match['exponent']}")
    return number


def format_bytes(value: Fraction | int) -> str:
    return f"{float(value) / 2**30:.1f}Gi ({int(value)} bytes)"
