"""Field parsers shared by the whole schema: the one quantity parser, one validator per
Kubernetes name kind, durations, environment variable names.

Every pattern is matched with `re.fullmatch`: `re.match` with a trailing `$` also accepts
a value that ends in a newline, which Kubernetes then refuses at apply time.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are refused: a misspelt key would otherwise be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# --- quantities ---------------------------------------------------------------------------------

_QUANTITY = re.compile(r"[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?")
# What people write when they mean a Kubernetes suffix.
_QUANTITY_HINTS = {
    "kb": "Ki", "kib": "Ki", "mb": "Mi", "mib": "Mi", "gb": "Gi", "gib": "Gi",
    "tb": "Ti", "tib": "Ti", "pb": "Pi", "pib": "Pi", "g": "Gi", "t": "Ti",
}
_SUFFIX_FACTORS = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}


def quantity(value: Any, what: str) -> str:
    """A Kubernetes quantity as config may give it (number or text), or ValueError with a hint."""
    text = str(value).strip() if isinstance(value, (int, float, str)) else None
    if text is not None and not isinstance(value, bool) and _QUANTITY.fullmatch(text):
        return text
    hint = ""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)", text or "")
    if match and match.group(2).lower() in _QUANTITY_HINTS:
        hint = f'; did you mean "{match.group(1)}{_QUANTITY_HINTS[match.group(2).lower()]}"?'
    raise ValueError(
        f"{value!r} is not a Kubernetes quantity for {what} "
        f"(a number with an optional suffix Ki, Mi, Gi, Ti, or k, M, G, T, e.g. 24Gi){hint}"
    )


# The two quantities of every container's resources, as field types.
CpuQuantity = Annotated[str, BeforeValidator(lambda value: quantity(value, "CPU"))]
MemoryQuantity = Annotated[str, BeforeValidator(lambda value: quantity(value, "memory"))]


def quantity_bytes(value: str) -> float:
    """The value of a Kubernetes quantity, e.g. 24Gi -> 25769803776; ValueError if it is none."""
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    number, suffix = match.group(1), match.group(3) or ""
    if suffix[:1] in ("e", "E") and suffix[1:].lstrip("+-").isdigit():
        return float(number) * 10 ** int(suffix[1:])
    return float(number) * _SUFFIX_FACTORS[suffix]


# --- Kubernetes names: one validator per kind ---------------------------------------------------

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS_1123_LABEL = re.compile(_LABEL)
_DNS_1123_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and _DNS_1123_LABEL.fullmatch(value) is not None


def dns1035_label(value: str, what: str, max_len: int = 63) -> str:
    """Service and Deployment-derived names: must start with a letter."""
    if not value or len(value) > max_len or not _DNS_1035_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid {what}: it must be a DNS-1035 label of at most {max_len} characters "
            "(lower-case letters, digits and '-', starting with a letter, ending with a letter or digit)"
        )
    return value


def dns1123_label(value: str, what: str) -> str:
    """Namespaces: may start with a digit."""
    if not value or not is_dns1123_label(value):
        raise ValueError(
            f"{value!r} is not a valid {what}: it must be a DNS-1123 label of at most 63 characters "
            "(lower-case letters, digits and '-', starting with a letter or digit, ending with a letter or digit)"
        )
    return value


def dns1123_subdomain(value: str, what: str) -> str:
    """Most object names (claims, Secrets, classes) and host names; empty means unset."""
    if value and (len(value) > 253 or not _DNS_1123_SUBDOMAIN.fullmatch(value)):
        raise ValueError(
            f"{value!r} is not a valid {what}: it must be a DNS-1123 subdomain of at most 253 characters "
            "(lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
        )
    return value


# --- other fields -------------------------------------------------------------------------------

# The custom resources' own duration patterns (vllm_serving/crd_schemas/), so that `render` refuses
# exactly what the API server and `render --validate` would: whole numbers only, units combined.
GATEWAY_DURATION = re.compile(r"([0-9]{1,5}(h|m|s|ms)){1,4}")  # HTTPRoute rules[].timeouts
PROMETHEUS_DURATION = re.compile(  # ServiceMonitor and PodMonitor endpoints' interval
    r"0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?"
)
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


def duration(value: str, pattern: re.Pattern[str], example: str) -> str:
    """A duration the custom resource's `pattern` accepts; `example` completes the message."""
    if not value or not pattern.fullmatch(value):
        raise ValueError(f"{value!r} is not a {example}")
    return value


def env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid environment variable name")
    return value


def is_http_url(value: str) -> bool:
    return re.match(r"https?://", value) is not None


def kubernetes_string(value: Any) -> Any:
    """A number or boolean where Kubernetes wants a string (label, annotation, selector, env value),
    as its string form: `pulumi config set --path` stores `3` and `true` as a number and a boolean
    (its help: "integers are treated as numbers"), and YAML reads `tier: 3` the same way."""
    return json.dumps(value) if isinstance(value, (bool, int, float)) else value


# A label, annotation or node selector value.
KubernetesString = Annotated[str, BeforeValidator(kubernetes_string)]
