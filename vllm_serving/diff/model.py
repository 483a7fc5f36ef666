"""The diff's data: the two renderings, each field change and its effects, and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What a field change does, beyond being changed.
REPLACE, RESTART, REFUSED, NOTE = "replace", "restart", "refused", "note"

FieldPath = tuple  # segments: str keys, int indexes, values.Item names


@dataclass
class Side:
    """One rendering as `render --format json` prints it, keyed by URN in registration order."""

    label: str
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    # Why a side is empty, when it is (no stack file at that revision).
    absent: str = ""


def side_from_rendering(label: str, rendering: dict[str, Any]) -> Side:
    """A Side from the JSON shape `render --format json` prints (`rendering_as_json`)."""
    return Side(label, {r["urn"]: r for r in rendering.get("resources", [])}, rendering.get("outputs") or {})


@dataclass(frozen=True)
class Effect:
    kind: str
    why: str


@dataclass
class FieldChange:
    path: FieldPath
    old: Any
    new: Any
    effects: list[Effect] = field(default_factory=list)


@dataclass
class ResourceChange:
    urn: str
    action: str  # create, delete, update, replace
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    fields: list[FieldChange] = field(default_factory=list)
    options: list[FieldChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def has(self, kind: str) -> bool:
        return any(effect.kind == kind for change in self.fields for effect in change.effects)

    @property
    def restarts(self) -> bool:
        return self.has(RESTART) or (self.action == REPLACE and self.kind in ("Deployment", "StatefulSet", "DaemonSet"))

    @property
    def kind(self) -> str:
        return ((self.new or self.old or {}).get("manifest") or {}).get("kind", "")

    @property
    def delete_first(self) -> bool:
        if self.action != REPLACE:
            return False
        if (self.new or {}).get("options", {}).get("deleteBeforeReplace"):
            return True
        old_meta = ((self.old or {}).get("manifest") or {}).get("metadata", {})
        new_meta = ((self.new or {}).get("manifest") or {}).get("metadata", {})
        # pulumi-kubernetes: an explicitly named object that keeps its name and namespace cannot
        # exist twice, so the old one is deleted before the new one is created.
        return bool(new_meta.get("name")) and all(old_meta.get(k) == new_meta.get(k) for k in ("name", "namespace"))


@dataclass
class Report:
    stack: str
    base: Side
    work: Side
    resources: list[ResourceChange]
    outputs: list[FieldChange]

    @property
    def changed(self) -> bool:
        return bool(self.resources or self.outputs)

    def count(self, action: str) -> int:
        return sum(1 for r in self.resources if r.action == action)

    def summary(self) -> str:
        if not self.changed:
            return "no changes"
        replaced = self.count(REPLACE)
        changed = self.count("update") + replaced
        parts = []
        if self.count("create"):
            parts.append(f"{self.count('create')} to add")
        if changed:
            parts.append(f"{changed} to change" + (f" ({replaced} replace)" if replaced else ""))
        if self.count("delete"):
            parts.append(f"{self.count('delete')} to remove")
        text = ", ".join(parts) or "resources unchanged"
        notes = []
        if any(r.restarts for r in self.resources if r.action in ("update", REPLACE)):
            notes.append("server pods restart")
        if any(r.has(REFUSED) for r in self.resources):
            notes.append("Kubernetes will refuse a change")
        if self.outputs:
            notes.append("outputs change")
        return "; ".join([text, *notes])
