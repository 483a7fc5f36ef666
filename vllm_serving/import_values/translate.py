"""From chart values to the stack config that means the same: what is carried, dropped, noted."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from components.config import CONFIG_NAMESPACE, DEFAULT_VLLM_TAG, ServingConfig

from .chart_fields import CHART_DEFAULT_TAG, CHART_FIELDS, KNOWN_REASONS, LEAF, OPAQUE

_PLACEHOLDER = re.compile(r"^<[^<>]+>$")


def _key(path: str, key: str) -> str:
    # Quote keys with dots, as the chart's README writes resources.limits."nvidia.com/gpu".
    part = f'"{key}"' if "." in key or not key else key
    return f"{path}.{part}" if path else part


def _project_key(path: list[str]) -> bool:
    """Whether the stack schema has a key at this path, to point a user at it."""
    current: Any = ServingConfig
    for part in path:
        fields = getattr(current, "model_fields", None)
        if fields is None:
            return False
        found = next((f for n, f in fields.items() if (f.alias or n) == part), None)
        if found is None:
            return False
        annotation = found.annotation
        candidates = [annotation, *(getattr(annotation, "__args__", ()) or ())]
        current = next((c for c in candidates if isinstance(c, type) and hasattr(c, "model_fields")), None)
    return True


@dataclass
class Translation:
    config: dict[str, Any]
    # (key path in the values file, why it was not carried over)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # What the stack needs before it is safe to deploy: printed as `warning:`, first in the header.
    warnings: list[str] = field(default_factory=list)
    # (key path, why): the chart example's `<...>` placeholders, which no deployment may carry.
    left_out: list[tuple[str, str]] = field(default_factory=list)


def _carry(value: Any, schema: Any, path: str, keys: list[str], out: Translation) -> Any:
    if schema in (LEAF, OPAQUE):
        return value
    if isinstance(schema, list):
        if not isinstance(value, list):
            return value  # the wrong shape: validation names it
        return [_carry(item, schema[0], f"{path}[{index}]", keys, out) for index, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    carried = {}
    for key, item in value.items():
        key_path = _key(path, str(key))
        if key not in schema:
            reason = KNOWN_REASONS.get(key_path)
            if reason is None:
                # Helm ignores values its templates never read, so leaving it out keeps what the chart did.
                reason = f"unknown key, which the chart ignored; the chart's keys here: {', '.join(schema)}"
                if _project_key([*keys, str(key)]):
                    reason += f"; this project has {CONFIG_NAMESPACE}:{key_path}: set it by hand to use it"
            out.dropped.append((key_path, reason))
            continue
        if item is None:
            # Helm drops a null from the values, so the chart's default applies, as it does here.
            continue
        carried[key] = _carry(item, schema[key], key_path, [*keys, str(key)], out)
    return carried


def _placeholders(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [hit for key, item in value.items() for hit in _placeholders(item, _key(path, str(key)))]
    if isinstance(value, list):
        return [hit for index, item in enumerate(value) for hit in _placeholders(item, f"{path}[{index}]")]
    return [(path, value)] if isinstance(value, str) and _PLACEHOLDER.match(value.strip()) else []


def _leave_out_placeholders(out: Translation) -> None:
    """A value in the chart README's `<...>` form is left out, never deployed: an env entry as a
    whole (a proxy variable set to `<YOUR_HTTP_PROXY>` would break every download), any other key alone."""
    env = out.config.get("env")
    for path, value in _placeholders(out.config):
        reason = f"{value!r} is a placeholder from the chart's example, which nothing may deploy; add the real value by hand"
        entry = re.match(r"^env\[(\d+)\]", path)
        if entry and isinstance(env, list):
            item = env[int(entry[1])]
            name = item.get("name") if isinstance(item, dict) else None
            out.left_out.append((f"env[{entry[1]}]" + (f" ({name})" if name else ""), reason))
            env[int(entry[1])] = None
            continue
        out.left_out.append((path, reason))
        _remove(out.config, path)
    if isinstance(env, list):
        kept = [item for item in env if item is not None]
        if kept:
            out.config["env"] = kept
        else:
            del out.config["env"]


def _remove(config: dict[str, Any], path: str) -> None:
    """Delete the key at a dotted path as _key writes it (quoted parts for keys with dots)."""
    parts = [quoted or plain for quoted, plain in re.findall(r'"([^"]*)"|([^.\[\]]+)', path)]
    current: Any = config
    for part in parts[:-1]:
        current = current.get(part) if isinstance(current, dict) else None
    if isinstance(current, dict):
        current.pop(parts[-1], None)


def translate(values: dict[str, Any]) -> Translation:
    """The stack config (keys without the namespace) that means what these chart values meant."""
    out = Translation(config={})
    out.config = _carry(values, CHART_FIELDS, "", [], out)

    image = out.config.get("image")
    if image is None or isinstance(image, dict):
        image = dict(image or {})
        tag = image.get("tag")
        if tag is None:
            # This project's default is newer; importing a default must not silently upgrade the server.
            image["tag"] = CHART_DEFAULT_TAG
            out.notes.append(
                f"image.tag is not set: the chart's default {CHART_DEFAULT_TAG!r} is written out, so the stack "
                f"serves what the chart served; this project recommends its pinned {DEFAULT_VLLM_TAG!r}"
            )
        elif str(tag) != DEFAULT_VLLM_TAG:
            out.notes.append(
                f"image.tag {str(tag)!r} is carried over as given; this project recommends its pinned "
                f"{DEFAULT_VLLM_TAG!r} (set {CONFIG_NAMESPACE}:image.tag once the import is verified)"
            )
        if "image" in out.config:
            out.config["image"] = image
        else:
            # Where the chart's own example puts it: after replicaCount.
            rest = dict(out.config)
            head = {"replicaCount": rest.pop("replicaCount")} if "replicaCount" in rest else {}
            out.config = {**head, "image": image, **rest}

    _leave_out_placeholders(out)
    model = out.config.get("model")
    if isinstance(model, dict) and not model.get("size"):
        out.warnings.append(
            f"model.size is not set (the chart has no such key): without it the volume is not checked against "
            f"the model (two copies coexist during a model change) and the cold start is not predicted; set "
            f"{CONFIG_NAMESPACE}:model.size to the weights' size, e.g. 13.5G"
        )
    out.notes.append(
        f"the Helm release's namespace is not part of its values: the stack uses {CONFIG_NAMESPACE}:namespace "
        f"'default'; set it if the release lived elsewhere"
    )
    return out
