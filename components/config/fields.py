"""Field parsers shared by the whole schema: the one quantity parser, one validator per
Kubernetes name kind, durations, environment variable names.

Every pattern is matched with `re.fullmatch`: `re.match` with a trailing `$` also accepts
a value that ends in a newline, which Kubernetes then refuses at apply time.
"""

from __future__ import annotations

import json
import math
import re
from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, field_validator

# The text a number or boolean key may be written as: what `pulumi config set` stores for a value
# set without --path (always a string), and a quoted number in a stack file. One source for the
# program (StrictModel) and the editor schema (vllm_serving/schema.py), so that both accept the
# same: pydantic's own lax parsing would also take "yes", "on", "nan", "1_000" or " 1 ".
SCALAR_STRING_FORMS = {
    "integer": r"^-?[0-9]+$",
    "number": r"^-?[0-9]+(\.[0-9]+)?$",
    "boolean": r"^(true|false)$",
}
_SCALAR_KINDS = {int: "integer", float: "number", bool: "boolean"}


def _scalar_kinds(annotation: Any) -> set[str]:
    """The JSON kinds among a field's types (int, float, bool, or an Optional/Union of them)."""
    options = [annotation, *getattr(annotation, "__args__", ())]
    return {_SCALAR_KINDS[option] for option in options if option in _SCALAR_KINDS}


class StrictModel(BaseModel):
    """Unknown keys are refused: a misspelt key would otherwise be silently ignored. A number or
    boolean written as text is taken only in the forms of SCALAR_STRING_FORMS."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _scalar_text(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, (str, bool)) or info.field_name is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        kinds = _scalar_kinds(annotation)
        if not kinds or str in getattr(annotation, "__args__", ()):
            return value
        if isinstance(value, bool):
            # pydantic's lax int takes true as 1; a count or size written as true is a mistake.
            if "boolean" in kinds:
                return value
            raise ValueError(f"{json.dumps(value)} is not {' or '.join(sorted(kinds))}")
        if any(re.fullmatch(SCALAR_STRING_FORMS[kind], value) for kind in kinds):
            return value
        wanted = {"integer": "a whole number such as 2", "number": "a number such as 0.5", "boolean": "true or false"}
        raise ValueError(f"{shown(value)} is not {' or '.join(wanted[kind] for kind in sorted(kinds))}")


# --- quantities ---------------------------------------------------------------------------------

_QUANTITY = re.compile(r"[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?", re.ASCII)
# What people write when they mean a Kubernetes suffix.
_QUANTITY_HINTS = {
    "kb": "Ki", "kib": "Ki", "mb": "Mi", "mib": "Mi", "gb": "Gi", "gib": "Gi",
    "tb": "Ti", "tib": "Ti", "pb": "Pi", "pib": "Pi", "g": "Gi", "t": "Ti",
}
_SUFFIX_FACTORS = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}


# Kubernetes holds a quantity as at most 2^63-1 in magnitude with at most three decimal places, and
# caps or rounds up anything else (k8s.io/apimachinery/pkg/api/resource/quantity.go, the Quantity
# type's comment: "Numbers larger or more precise will be capped or rounded up"): the cluster would
# hold another value than the stack, and every preview would show the difference again.
_MAX_QUANTITY = Decimal(2**63 - 1)
_EXACT_FACTORS = {
    suffix: Decimal(factor) if isinstance(factor, int) else Decimal(10) ** round(math.log10(factor))
    for suffix, factor in _SUFFIX_FACTORS.items()
}


def quantity_value(text: str) -> Decimal:
    """The exact value of a Kubernetes quantity, e.g. 1.5Ki -> 1536; ValueError if it is none."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, suffix = Decimal(match.group(1)), match.group(3) or ""
    if suffix[:1] in ("e", "E") and suffix[1:].lstrip("+-").isdigit():
        return number.scaleb(int(suffix[1:]))
    return number * _EXACT_FACTORS[suffix]


def quantity(value: Any, what: str, minimum: tuple[str, str] | None = None) -> str:
    """A Kubernetes quantity as config may give it (number or text), or ValueError with a hint.

    More than 0, held by Kubernetes as written, and at least `minimum` = (quantity, why) when given:
    below it the container cannot start (a number without a suffix is bytes: `memory: 64` is 64 bytes)."""
    text = str(value).strip() if isinstance(value, (int, float, str)) else None
    if text is None or isinstance(value, bool) or not _QUANTITY.fullmatch(text):
        hint = ""
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)", text or "")
        if match and match.group(2).lower() in _QUANTITY_HINTS:
            hint = f'; did you mean "{match.group(1)}{_QUANTITY_HINTS[match.group(2).lower()]}"?'
        raise ValueError(
            f"{shown(value)} is not a Kubernetes quantity for {what} "
            f"(a number with an optional suffix Ki, Mi, Gi, Ti, or k, M, G, T, e.g. 24Gi){hint}"
        )
    amount = quantity_value(text)
    if amount > _MAX_QUANTITY:
        raise ValueError(
            f"{shown(value)} for {what} is more than Kubernetes holds (2^63-1, just under 8Ei): it would cap it, "
            "and the cluster would hold another value than the stack"
        )
    if amount <= 0:
        raise ValueError(f"{shown(value)} for {what} must be more than 0")
    if amount != amount.quantize(Decimal("0.001"), rounding=ROUND_CEILING):
        raise ValueError(
            f"{shown(value)} for {what} is finer than a thousandth (1m), which Kubernetes rounds up "
            "(0.1m becomes 1m): write it with at most three decimal places"
        )
    if minimum is not None and amount < quantity_value(minimum[0]):
        raise ValueError(f"{shown(value)} for {what} is less than {minimum[0]}, too little to start: {minimum[1]}")
    return text


# CPU as a field type; memory has a floor of its own per container (config/chart.py, config/server.py).
CpuQuantity = Annotated[str, BeforeValidator(lambda value: quantity(value, "CPU"))]


def quantity_bytes(value: str) -> float:
    """The value of a Kubernetes quantity, e.g. 24Gi -> 25769803776; ValueError if it is none."""
    return float(quantity_value(value))


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
            f"{shown(value)} is not a valid {what}: it must be a DNS-1035 label of at most {max_len} characters "
            "(lower-case letters, digits and '-', starting with a letter, ending with a letter or digit)"
        )
    return value


def dns1123_label(value: str, what: str) -> str:
    """Namespaces: may start with a digit."""
    if not value or not is_dns1123_label(value):
        raise ValueError(
            f"{shown(value)} is not a valid {what}: it must be a DNS-1123 label of at most 63 characters "
            "(lower-case letters, digits and '-', starting with a letter or digit, ending with a letter or digit)"
        )
    return value


def dns1123_subdomain(value: str, what: str) -> str:
    """Most object names (claims, Secrets, classes) and host names; empty means unset."""
    if value and (len(value) > 253 or not _DNS_1123_SUBDOMAIN.fullmatch(value)):
        raise ValueError(
            f"{shown(value)} is not a valid {what}: it must be a DNS-1123 subdomain of at most 253 characters "
            "(lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
        )
    return value


# --- what a message may show of a value ---------------------------------------------------------

SHOWN_CHARS = 80


def shown(value: Any) -> str:
    """A config value as a message may show it: repr'd and cut to SHOWN_CHARS, so that a 10 MB
    value does not become a 10 MB message."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS - 1]}…"


# --- Kubernetes metadata: label keys and values, annotations -------------------------------------

_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
# apimachinery's TotalAnnotationSizeLimitB: keys and values of one object together.
ANNOTATIONS_TOTAL_BYTES = 256 * 1024


def qualified_key(value: str, what: str) -> str:
    """Label, annotation, nodeSelector and toleration keys: an optional DNS-1123 subdomain
    prefix of at most 253 characters and '/', then a name of at most 63 (apimachinery's
    IsQualifiedName)."""
    prefix, _, name = value.rpartition("/")
    if "/" in value and (not prefix or len(prefix) > 253 or not _DNS_1123_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(f"{shown(value)} is not a valid {what}: its prefix before '/' must be a DNS-1123 subdomain")
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        raise ValueError(
            f"{shown(value)} is not a valid {what}: [prefix/]name where name has at most 63 characters "
            "(letters, digits, '-', '_' and '.', starting and ending with a letter or digit)"
        )
    return value


def label_value(value: str, what: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a valid {what}: at most 63 characters, letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit (or empty)"
        )
    return value


def labels(value: dict[str, str], what: str) -> dict[str, str]:
    for key, item in value.items():
        qualified_key(key, f"{what} key")
        label_value(item, f"{what} value (of {key})")
    return value


def annotation_map(value: dict[str, str], what: str) -> dict[str, str]:
    for key in value:
        qualified_key(key, f"{what} key")
    size = sum(len(key.encode()) + len(item.encode()) for key, item in value.items())
    if size > ANNOTATIONS_TOTAL_BYTES:
        raise ValueError(f"{what} hold {size} bytes; Kubernetes allows {ANNOTATIONS_TOTAL_BYTES} per object")
    return value


_SECRET_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def secret_data_key(value: str, what: str) -> str:
    """A key of a Secret's or ConfigMap's data (apimachinery's IsConfigMapKey)."""
    if len(value) > 253 or not _SECRET_DATA_KEY.fullmatch(value) or value in (".", ".."):
        raise ValueError(f"{shown(value)} is not a valid {what}: letters, digits, '-', '_' and '.', at most 253")
    return value


# --- integers and durations ---------------------------------------------------------------------

INT32_MAX = 2**31 - 1


def int32(value: int, what: str) -> int:
    """Every integer that becomes a Kubernetes int32 (replicas, seconds, thresholds)."""
    if not -(2**31) <= value <= INT32_MAX:
        raise ValueError(f"{value} is out of range for {what}: Kubernetes stores it as a 32-bit integer (≤ {INT32_MAX})")
    return value


# The custom resources' own duration patterns (vllm_serving/crd_schemas/), so that `render` refuses
# exactly what the API server and `render --validate` would: whole numbers only, units combined.
GATEWAY_DURATION = re.compile(r"([0-9]{1,5}(h|m|s|ms)){1,4}")  # HTTPRoute rules[].timeouts
PROMETHEUS_DURATION = re.compile(  # ServiceMonitor and PodMonitor endpoints' interval
    r"0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?"
)


def duration(value: str, pattern: re.Pattern[str], example: str) -> str:
    """A duration the custom resource's `pattern` accepts; `example` completes the message."""
    if not value or not pattern.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a {example}")
    return value


# --- images -------------------------------------------------------------------------------------

# The grammar of distribution/reference (Docker's): domain[:port], path components, tag.
_REGISTRY = re.compile(r"([A-Za-z0-9]|[A-Za-z0-9][-A-Za-z0-9]*[A-Za-z0-9])(\.([A-Za-z0-9]|[A-Za-z0-9][-A-Za-z0-9]*[A-Za-z0-9]))*(:[0-9]{1,5})?")
_PATH_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_PATH_COMPONENT}(/{_PATH_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


def image_registry(value: str) -> str:
    if value and (len(value) > 253 or not _REGISTRY.fullmatch(value)):
        raise ValueError(f"{shown(value)} is not an image registry: a host name with an optional :port, e.g. docker.io")
    return value


def image_repository(value: str) -> str:
    if len(value) > 255 or not _REPOSITORY.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not an image repository: lower-case path components separated by '/', "
            "e.g. vllm/vllm-openai"
        )
    return value


def image_tag(value: str, example: str) -> str:
    if not _TAG.fullmatch(value):
        raise ValueError(f"{shown(value)} is not an image tag: up to 128 of letters, digits, '_', '.' and '-', not starting with '.' or '-'")
    if value == "latest":
        raise ValueError(
            f"{shown(value)} is not a pinned tag: use a release such as {example!r}, "
            "so that every `pulumi up` runs the same image"
        )
    return value


def image_reference(value: str) -> str:
    """A whole image reference: [registry/]repository[:tag][@sha256:digest], tag or digest required."""
    rest, _, digest = value.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise ValueError(f"{shown(value)} is not an image reference: the digest must be sha256:<64 hex digits>")
    name, _, tag = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
    first, _, path = name.partition("/")
    registry_given = path and ("." in first or ":" in first or first == "localhost")
    try:
        if registry_given:
            image_registry(first)
        image_repository(path if registry_given else name)
        if tag or not digest:
            image_tag(tag, "docker.io/alpine/git:v2.49.1")
    except ValueError as error:
        raise ValueError(f"{shown(value)} is not a pinned image reference ([registry/]repository:tag): {error}") from None
    return value


# --- sources: Hugging Face, git, URLs -------------------------------------------------------------

_HF_NAME = r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_HF_REPO_ID = re.compile(rf"({_HF_NAME}/)?{_HF_NAME}")


def hf_repo_id(value: str) -> str:
    """huggingface_hub's validate_repo_id: [namespace/]name of letters, digits, '-', '_' and '.',
    at most 96, no '--' or '..', not ending in .git."""
    if not _HF_REPO_ID.fullmatch(value) or "--" in value or ".." in value or value.endswith(".git"):
        raise ValueError(
            f"{shown(value)} is not a Hugging Face repository id: [namespace/]name of letters, digits, '-', '_' and "
            "'.' (at most 96 each), without '--' or '..', e.g. codellama/CodeLlama-7b-Instruct-hf"
        )
    return value


_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


def git_ref(value: str, what: str) -> str:
    """A branch, tag or commit as `git check-ref-format --allow-onelevel` accepts it, and never
    an option: a leading '-' would make git read it as one."""
    parts = value.split("/")
    bad = (
        len(value) > 255
        or value.startswith("-")
        or value == "@"
        or value.endswith((".", "/"))
        or _REF_FORBIDDEN.search(value) is not None
        or any(not part or part.startswith(".") or part.endswith(".lock") for part in parts)
    )
    if bad:
        raise ValueError(
            f"{shown(value)} is not a valid {what}: a branch, tag or commit as git check-ref-format defines it "
            "(no spaces, control characters, '~^:?*[\\', '..', '@{', '//'; no part starting with '.' or ending "
            "in .lock; not starting with '-')"
        )
    return value


_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f\"'`\\<>{}|^]")


def http_url(value: str, what: str) -> str:
    """An http(s) URL with a host and no user:password@ (a token belongs in a Secret)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or len(value) > 2048 or _URL_UNSAFE.search(value) or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{shown(value)} is not a valid {what}: an http:// or https:// URL with a host, without spaces or quotes")
    if "@" in parts.netloc:
        raise ValueError(
            f"the {what} holds credentials (user:password@); put the token in a Secret instead "
            "(existingSecret), so it is not in plain text in the stack, the state and the Job"
        )
    return value


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def s3_url(value: str) -> str:
    """s3://bucket/prefix with a valid bucket name and a prefix without '..' or control characters."""
    match = re.fullmatch(r"s3://([^/]*)(/.*)?", value, re.DOTALL)
    bucket = match.group(1) if match else ""
    if not match or not _BUCKET.fullmatch(bucket) or ".." in bucket or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
        raise ValueError(
            f"{shown(value)} must look like s3://bucket/prefix, with a bucket name of 3-63 lower-case letters, "
            "digits, '.' and '-'"
        )
    prefix = match.group(2) or ""
    # An empty or '..' part names no object, or another prefix's; the download would skip it.
    if len(value) > 1024 or _URL_UNSAFE.search(prefix) or ".." in prefix.split("/") or "//" in prefix:
        raise ValueError(f"{shown(value)}: the prefix must not hold spaces, control characters, quotes, '//' or '..' parts")
    return value


_GATEWAY_HOSTNAME = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*")


def gateway_hostname(value: str) -> str:
    """Gateway API's Hostname: a DNS-1123 subdomain, optionally with a leading '*.' wildcard."""
    if len(value) > 253 or not _GATEWAY_HOSTNAME.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a valid host name: a DNS-1123 subdomain, optionally starting with '*.'")
    return value


def is_http_url(value: str) -> bool:
    try:
        http_url(value, "URL")
    except ValueError:
        return False
    return True


# --- paths and free strings ---------------------------------------------------------------------

# ingress-nginx's strict path validation: Prefix paths hold no regex characters.
_URL_PATH = re.compile(r"/|(/[A-Za-z0-9._~-]+)+/?")


def url_path(value: str, what: str) -> str:
    """An absolute HTTP path as an Ingress or HTTPRoute prefix: no spaces, control characters or regex."""
    if len(value) > 1024 or not _URL_PATH.fullmatch(value) or ".." in value.split("/"):
        raise ValueError(
            f"{shown(value)} is not a valid {what}: an absolute path such as /v1 or /llm/v1 "
            "(letters, digits and -._~ between '/', no spaces or '..')"
        )
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_FREE_STRING = 4096


def bounded_text(value: str, what: str, max_len: int = MAX_FREE_STRING, secret: bool = False) -> str:
    """Any free string: at most max_len characters, no control characters but tab and newline.
    secret: the value may be one, so the message does not show it."""
    if len(value) > max_len:
        raise ValueError(f"{what} is {len(value)} characters long; at most {max_len} are allowed")
    if _CONTROL.search(value):
        raise ValueError(f"{'the value' if secret else shown(value)}: {what} must not hold control characters")
    return value


_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


def env_name(value: str) -> str:
    if len(value) > 255 or not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a valid environment variable name")
    return value


def kubernetes_string(value: Any) -> Any:
    """A number or boolean where Kubernetes wants a string (label, annotation, selector, env value),
    as its string form: `pulumi config set --path` stores `3` and `true` as a number and a boolean
    (its help: "integers are treated as numbers"), and YAML reads `tier: 3` the same way."""
    return json.dumps(value) if isinstance(value, (bool, int, float)) else value


# A label, annotation or node selector value.
KubernetesString = Annotated[str, BeforeValidator(kubernetes_string)]
