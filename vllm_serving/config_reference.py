"""The README's config reference, generated from the config models.

Each row is one leaf key of `ServingConfig` (nested models are walked, so `model.volume.size`
is a row); its key and default come from the model, so the README cannot drift from the code.
The meaning column is the field's description, except where the README already has a
hand-written meaning for the key: regenerating keeps that text (the README's meanings are
richer than most descriptions today), so only keys and defaults are rewritten.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from components.config import ServingConfig

# The README's first table holds the chart's keys and the basics, in this order; every other
# top-level key (the production settings) goes to the second table, in the model's order.
BASIC_KEYS = ("replicaCount", "image", "resources", "model", "env", "namespace", "service", "server", "download")
SECTIONS = ("basic", "production")
REGENERATE_COMMAND = "./vllm-serving schema --markdown --readme README.md"
HEADER = "| key | default | meaning |\n| --- | --- | --- |"


@dataclass(frozen=True)
class Row:
    key: str
    default: str
    description: str


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _flow_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=math.inf).strip()


def format_default(value: Any, required: bool = False) -> str:
    """A default as the README writes it: `1`, `""`, `[ReadWriteOnce]`, unset, (required)."""
    if required:
        return "(required)"
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    if isinstance(value, (list, dict)):
        # Model items are shown by what differs from their own defaults, as one would write them.
        plain = [item.model_dump(exclude_defaults=True, by_alias=True) if isinstance(item, BaseModel) else item
                 for item in value] if isinstance(value, list) else value
        return f"`{_flow_yaml(plain)}`"
    return f"`{value}`"


def config_rows(model: type[BaseModel] = ServingConfig, prefix: str = "") -> Iterator[Row]:
    """Every leaf key of the model, depth first, in the model's field order."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        key = f'"{key}"' if "." in key else key
        nested = _nested_model(field.annotation)
        if nested is not None:
            yield from config_rows(nested, f"{prefix}{key}.")
            continue
        required = field.is_required()
        default = None if required else field.get_default(call_default_factory=True)
        yield Row(f"{prefix}{key}", format_default(default, required), field.description or "")


def section_rows(section: str) -> list[Row]:
    rows = list(config_rows())
    if section == "basic":
        return [row for top in BASIC_KEYS for row in rows if row.key.split(".")[0] == top]
    return [row for row in rows if row.key.split(".")[0] not in BASIC_KEYS]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(section: str, meanings: dict[str, str] | None = None) -> str:
    """The markdown table of a section; meanings (key -> text) override the descriptions."""
    meanings = meanings or {}
    lines = [HEADER]
    for row in section_rows(section):
        meaning = meanings.get(row.key) or _cell(row.description)
        lines.append(f"| `{row.key}` | {row.default} | {meaning} |")
    return "\n".join(lines)


def _markers(section: str) -> tuple[str, str]:
    return (f"<!-- config-reference:{section} (generated: {REGENERATE_COMMAND}) -->",
            f"<!-- /config-reference:{section} -->")


_ROW = re.compile(r"^\| `([^`]+)` \| (.*?) \| (.*) \|$")


def _block(text: str, section: str) -> tuple[int, int]:
    start_marker, end_marker = _markers(section)
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        raise ValueError(f"no {start_marker} ... {end_marker} block")
    return start + len(start_marker), end


def readme_table(text: str, section: str) -> str:
    """The table between a section's markers, as it stands."""
    start, end = _block(text, section)
    return text[start:end].strip("\n")


def readme_meanings(text: str, section: str) -> dict[str, str]:
    meanings = {}
    for line in readme_table(text, section).splitlines():
        match = _ROW.match(line)
        if match and match.group(3).strip():
            meanings[match.group(1)] = match.group(3).strip()
    return meanings


def regenerated(text: str) -> str:
    """The README with every section's table regenerated, its hand-written meanings kept."""
    for section in SECTIONS:
        start, end = _block(text, section)
        table = render_table(section, readme_meanings(text, section))
        # Blank lines around the table: a table directly against an HTML comment can fail to render.
        text = f"{text[:start]}\n\n{table}\n\n{text[end:]}"
    return text


def update_readme(path: Path) -> bool:
    """Rewrite the reference tables in place; True when something changed."""
    text = path.read_text()
    new = regenerated(text)
    if new != text:
        path.write_text(new)
    return new != text


def markdown() -> str:
    """Both tables, meanings from the field descriptions."""
    return "\n\n".join(render_table(section) for section in SECTIONS) + "\n"
