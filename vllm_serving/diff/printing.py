"""The diff report as text (the terminal) or markdown (a pull-request comment)."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from .model import NOTE, REFUSED, REPLACE, FieldChange, Report, ResourceChange
from .values import MISSING, render_path

_SYMBOL = {"create": "+", "delete": "-", "update": "~", REPLACE: "+-"}


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _field_lines(change: FieldChange, indent: str, replaced: bool = False) -> list[str]:
    tags = "".join(f"  [{e.kind}]" for e in change.effects if e.kind != NOTE)
    # A note on how a field updates in place is moot when the whole object is replaced.
    notes = [] if replaced else [f"{indent}    ({e.why})" for e in change.effects if e.kind == NOTE]
    path = render_path(change.path)
    old, new = change.old, change.new
    multiline = any(isinstance(v, str) and "\n" in v for v in (old, new))
    if multiline and old is not MISSING and new is not MISSING:
        lines = [f"{indent}~ {path}:{tags}"]
        for line in difflib.unified_diff(str(old).splitlines(), str(new).splitlines(), lineterm="", n=1):
            if not line.startswith(("---", "+++")):
                lines.append(f"{indent}    {line}")
        return lines + notes
    if isinstance(old, str) and isinstance(new, str) and max(len(old), len(new)) > 100:
        # One above the other, unquoted: a changed hash inside a long command is easy to spot.
        return [f"{indent}~ {path}:{tags}", f"{indent}    - {old}", f"{indent}    + {new}", *notes]
    if multiline:
        value = old if new is MISSING else new
        shown = f"{_value(value.splitlines()[0])}… ({len(value.splitlines())} lines)"
        return [f"{indent}{'-' if new is MISSING else '+'} {path}: {shown}{tags}", *notes]
    if old is MISSING:
        return [f"{indent}+ {path}: {_value(new)}{tags}", *notes]
    if new is MISSING:
        return [f"{indent}- {path}: {_value(old)}{tags}", *notes]
    return [f"{indent}~ {path}: {_value(old)} → {_value(new)}{tags}", *notes]


def _object(resource: dict[str, Any]) -> str:
    metadata = (resource.get("manifest") or {}).get("metadata", {})
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}".lstrip("/")


def _heading(change: ResourceChange) -> str:
    resource = change.new or change.old
    assert resource is not None, "a change has an old side, a new side, or both"
    manifest = resource.get("manifest")
    if manifest is None:
        return f"{_SYMBOL[change.action]} {resource['type']} {resource['name']}"
    name = _object(resource)
    if change.old and change.new and _object(change.old) != _object(change.new):
        name = f"{_object(change.old)} → {_object(change.new)}"
    return f"{_SYMBOL[change.action]} {manifest.get('kind')} {name}  (pulumi: {resource['name']})"


def _consequence(change: ResourceChange) -> list[str]:  # noqa: PLR0912 - one sentence per kind of change
    lines = []
    kind = change.kind or "resource"
    if change.action == REPLACE:
        if change.delete_first:
            lines.append(f"replace: delete the old {kind} first, then create the new one")
            if kind == "PersistentVolumeClaim":
                lines.append("  the claim's volume, and the model on it, go with it (per its reclaim policy)")
        else:
            lines.append(f"replace: create the new {kind}, then delete the old one")
        reasons = []
        for field_change in change.fields:
            for effect in field_change.effects:
                if effect.kind == REPLACE and effect.why not in reasons:
                    reasons.append(effect.why)
        lines += [f"  because {why}" for why in reasons]
    if change.restarts and change.action == REPLACE:
        if change.delete_first:
            lines.append("restarts the server pods: the server is down until the new pods are ready")
        else:
            # Both workloads exist for a while: the new pods need GPUs beside the old ones.
            lines.append("restarts the server pods: the new pods start while the old ones still hold their GPUs")
    elif change.restarts and change.action == "update":
        strategy = ((change.new or {}).get("manifest") or {}).get("spec", {}).get("strategy") or {}
        detail = ""
        if strategy.get("type") == "Recreate":
            detail = ": every server pod stops before the new ones start"
        elif (strategy.get("rollingUpdate") or {}).get("maxSurge") == 0:
            detail = ": one at a time, each stopping before its replacement starts"
        lines.append(f"restarts the server pods{detail}")
    if change.has(REFUSED):
        lines.append("Kubernetes will refuse this update: " + "; ".join(sorted({
            e.why for c in change.fields for e in c.effects if e.kind == REFUSED
        })))
    return lines + change.warnings


def render_text(report: Report, header: bool = True) -> str:
    lines = []
    if header:
        lines += [f"stack {report.stack}: {report.base.label} → {report.work.label}", report.summary()]
    for side in (report.base, report.work):
        if side.absent:
            lines.append(f"({side.absent})")
    if report.base.absent and not report.work.absent and report.work.resources:
        # A new stack: every resource is an addition, so say first what they add up to.
        from .overview import overview

        lines += ["", "What the new stack deploys:", *(f"    {line}" for line in overview(report.work))]
    for change in report.resources:
        lines += ["", _heading(change)]
        lines += [f"    {line}" for line in _consequence(change)]
        for field_change in [*change.fields, *change.options]:
            lines += _field_lines(field_change, "    ", replaced=change.action == REPLACE)
    if report.outputs:
        lines += ["", "Outputs:"]
        for output in report.outputs:
            lines += _field_lines(output, "    ")
    return "\n".join(lines).lstrip("\n") + "\n"


def render_markdown(report: Report) -> str:
    body = render_text(report, header=False)
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", body)), default=0))
    heading = f"#### Stack `{report.stack}`: {report.summary()}\n<sub>{report.base.label} → {report.work.label}</sub>\n"
    if not report.changed:
        return heading
    return f"{heading}\n{fence}text\n{body}{fence}\n"


def render_violations_markdown(failures: list[str]) -> str:
    """`diff --validate`'s schema violations of one stack, in its section of the comment."""
    body = "".join(f"{failure}\n" for failure in failures)
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", body)), default=0))
    return f"\nSchema violations of the working tree's manifests (`--validate`):\n{fence}text\n{body}{fence}\n"
