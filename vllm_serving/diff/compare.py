"""Pair two renderings' resources by URN and say what becomes of each."""

from __future__ import annotations

from typing import Any

from .model import REPLACE, FieldChange, Report, ResourceChange, Side
from .replacement import classify
from .values import diff_values


def _short_urn(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _option_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    options = list(diff_values(old.get("options", {}), new.get("options", {}), ("options",)))
    old_deps = sorted(_short_urn(u) for u in old.get("dependencies", []))
    new_deps = sorted(_short_urn(u) for u in new.get("dependencies", []))
    return options + (list(diff_values(old_deps, new_deps, ("dependsOn",))) if old_deps != new_deps else [])


def _deleted(urn: str, old: dict[str, Any]) -> ResourceChange:
    change = ResourceChange(urn, "delete", old, None)
    if old.get("options", {}).get("protect"):
        change.warnings.append("protected: `pulumi up` refuses to delete it until `protect` is lifted")
    elif old.get("options", {}).get("retainOnDelete"):
        change.warnings.append("retained: Pulumi drops it from the stack's state and leaves it in the cluster")
    return change


def _updated(urn: str, old: dict[str, Any], new: dict[str, Any]) -> ResourceChange | None:
    old_manifest, new_manifest = old.get("manifest") or {}, new.get("manifest") or {}
    kind = new_manifest.get("kind") or old_manifest.get("kind", "")
    fields = list(diff_values(old_manifest, new_manifest))
    for change in fields:
        classify(kind, old_manifest, new_manifest, change, new.get("options", {}).get("replaceOnChanges", []))
    options = _option_changes(old, new)
    if not fields and not options:
        return None
    action = REPLACE if any(e.kind == REPLACE for c in fields for e in c.effects) else "update"
    resource = ResourceChange(urn, action, old, new, fields, options)
    # The engine lets one update both unprotect and replace; it refuses only if both say protect.
    if action == REPLACE and old.get("options", {}).get("protect") and new.get("options", {}).get("protect"):
        resource.warnings.append("protected: `pulumi up` refuses to replace it until `protect` is lifted")
    elif action == REPLACE and resource.delete_first and old.get("options", {}).get("retainOnDelete"):
        resource.warnings.append(
            "retained: Pulumi leaves the old one in the cluster, so creating the new one fails (`already exists`) "
            "until the old one is deleted by hand"
        )
    return resource


def compare(stack: str, base: Side, work: Side) -> Report:
    changes = []
    order = [*work.resources, *(urn for urn in base.resources if urn not in work.resources)]
    for urn in order:
        old, new = base.resources.get(urn), work.resources.get(urn)
        if old is None:
            changes.append(ResourceChange(urn, "create", None, new))
        elif new is None:
            changes.append(_deleted(urn, old))
        else:
            updated = _updated(urn, old, new)
            if updated is not None:
                changes.append(updated)
    return Report(stack, base, work, changes, list(diff_values(base.outputs, work.outputs)))
