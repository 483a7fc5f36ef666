"""Kubernetes manifests as plain data: the shape `kubectl apply -f` and the schemas expect."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import yaml

_TOP_LEVEL_ORDER = ("apiVersion", "kind", "metadata", "spec", "data")


# How Pulumi's wire format marks a secret value: {SECRET_SIGNATURE_KEY: SECRET_SIGNATURE, "value": ...}.
SECRET_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"
SECRET_PLACEHOLDER = "[secret]"
# What an offline rendering knows of a `secure:` value in a stack file: a checksum of its
# ciphertext, which is public in that file. Shown even inside a Pulumi secret, so that `diff` sees a
# changed secret (and what rolls because of it) without anything of its plaintext.
_OFFLINE_SECRET = re.compile(r"\[secret [0-9a-f]{12}\]")


def offline_secret_placeholder(ciphertext: str) -> str:
    return f"[secret {hashlib.sha256(ciphertext.encode()).hexdigest()[:12]}]"


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, str) and _OFFLINE_SECRET.fullmatch(value):
        return value
    return SECRET_PLACEHOLDER


def normalize(value: Any) -> Any:
    """Plain data for output: Pulumi secrets masked (a rendering is printed and posted in reviews), and
    integers as integers (the wire format carries every number as a double)."""
    if isinstance(value, dict) and value.get(SECRET_SIGNATURE_KEY) == SECRET_SIGNATURE:
        return _masked(value.get("value"))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def ordered(manifest: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata, spec first, then every nested map by key, as kubectl prints:
    the wire format's map order is arbitrary, and a diff of two renderings must show only changes."""
    manifest = _sorted(manifest)
    first = {key: manifest[key] for key in _TOP_LEVEL_ORDER if key in manifest}
    return {**first, **{key: value for key, value in manifest.items() if key not in first}}


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Scripts in a ConfigMap read as scripts, not as one escaped line.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    return yaml.dump_all(
        [ordered(normalize(manifest)) for manifest in manifests],
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=120,
    )


def file_name(manifest: dict[str, Any], index: int) -> str:
    kind = manifest.get("kind", "Resource").lower()
    name = manifest.get("metadata", {}).get("name", f"resource-{index}")
    return f"{index:02d}-{kind}-{name}.yaml"


# What a reviewer reads first: the workload and how it is reached, then its storage and download,
# then the optional features; the download scripts' ConfigMap, most of the output's lines, last.
READING_ORDER = (
    "Deployment", "Service", "PersistentVolumeClaim", "Job", "Ingress", "HTTPRoute", "InferencePool", "ScaledObject",
    "ServiceMonitor", "PodMonitor", "PodDisruptionBudget", "NetworkPolicy", "Secret", "ConfigMap",
)


def in_reading_order(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Manifests sorted by READING_ORDER of their kind (other kinds just before the ConfigMaps),
    each kind in the order the program created them."""
    other = READING_ORDER.index("ConfigMap")
    rank = {kind: index for index, kind in enumerate(READING_ORDER)}
    return sorted(manifests, key=lambda manifest: rank.get(manifest.get("kind", ""), other - 0.5))


class SelectionError(Exception):
    """A --kind or --name that matches no manifest: most likely a typo, so it is refused by name."""


def select(manifests: list[dict[str, Any]], kinds: Sequence[str] = (), names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The manifests of any of `kinds` (case ignored) and any of `names`; an empty filter selects all."""
    _check_each_matches("kind", kinds, {m.get("kind", "") for m in manifests}, str.lower)
    _check_each_matches("name", names, {m.get("metadata", {}).get("name", "") for m in manifests}, str)
    wanted_kinds = {kind.lower() for kind in kinds}
    return [
        manifest for manifest in manifests
        if (not kinds or manifest.get("kind", "").lower() in wanted_kinds)
        and (not names or manifest.get("metadata", {}).get("name", "") in names)
    ]


def _check_each_matches(what: str, wanted: Sequence[str], present: set[str], fold: Callable[[str], str]) -> None:
    missing = [value for value in wanted if fold(value) not in {fold(item) for item in present}]
    if missing:
        raise SelectionError(
            f"no manifest with {what} {', '.join(missing)}; {what}s here: {', '.join(sorted(present))}"
        )
