"""What pulumi-kubernetes and Kubernetes do with a changed manifest field.

Which changes replace a resource follows pulumi-kubernetes' own table of replacement
fields (provider/pkg/provider/diff.go, `forceNewProperties`); whether the old object goes
first is decided on the report's ResourceChange (model.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.config import quantity_bytes

from .model import NOTE, REFUSED, REPLACE, RESTART, Effect, FieldChange, FieldPath
from .values import render_path

# (field prefix, effect, why) per kind; the first match wins. Replacement fields are
# pulumi-kubernetes' forceNewProperties for each kind; "restart" marks the pod template of
# a workload, whose every change rolls out new pods.
_ANY_KIND = [
    (("metadata", "name"), REPLACE, "a new name is a new object"),
    (("metadata", "namespace"), REPLACE, "a new namespace is a new object"),
]
_SELECTOR = (("spec", "selector"), REPLACE, "a workload's selector is immutable")
_TEMPLATE_RESTART = (("spec", "template"), RESTART, "the pod template changes, so new pods roll out")
_RULES: dict[str, list[tuple[tuple[str, ...], str, str]]] = {
    "Job": [
        (("spec", "template"), REPLACE, "a Job's pod template is immutable"),
        (("spec", "selector"), REPLACE, "a Job's selector is immutable"),
        (("spec", "completions"), REPLACE, "pulumi-kubernetes replaces a Job whose completions change"),
        (("spec", "parallelism"), REPLACE, "pulumi-kubernetes replaces a Job whose parallelism changes"),
    ],
    "PersistentVolumeClaim": [
        (("spec", "accessModes"), REPLACE, "a claim's access modes are immutable"),
        (("spec", "storageClassName"), REPLACE, "a claim's storage class is immutable"),
        (("spec", "volumeName"), REPLACE, "a claim's volume is immutable"),
        (("spec", "selector"), REPLACE, "a claim's selector is immutable"),
        (("spec", "resources"), "", ""),
        # Immutable in Kubernetes but not in pulumi-kubernetes' table: it patches, and the API refuses.
        (("spec",), REFUSED, "a bound claim's spec is immutable except resources.requests"),
    ],
    "Deployment": [_SELECTOR, _TEMPLATE_RESTART],
    "DaemonSet": [_SELECTOR, _TEMPLATE_RESTART],
    "StatefulSet": [
        _SELECTOR,
        (("spec", "serviceName"), REPLACE, "a StatefulSet's serviceName is immutable"),
        (("spec", "volumeClaimTemplates"), REPLACE, "a StatefulSet's volumeClaimTemplates are immutable"),
        (("spec", "podManagementPolicy"), REPLACE, "a StatefulSet's podManagementPolicy is immutable"),
        (("spec", "revisionHistoryLimit"), REPLACE, "pulumi-kubernetes replaces a StatefulSet on this field"),
        _TEMPLATE_RESTART,
    ],
    # LWS's revision hashes spec.leaderWorkerTemplate and spec.networkConfig (kubernetes-sigs/lws
    # pkg/utils/revision/revision_utils.go, getPatch): a change there rolls out new groups; replicas,
    # rolloutStrategy and startupPolicy change no revision, so the running groups stay.
    "LeaderWorkerSet": [
        (("spec", "leaderWorkerTemplate"), RESTART,
         ("the group template (leader/worker pod templates, size, restart policy) changes, so new groups roll out; "
         "each group restarts as a whole")),
        (("spec", "networkConfig"), RESTART, "the group's network config is part of its revision, so new groups roll out"),
    ],
    "Service": [(("spec", "clusterIP"), REPLACE, "a Service's clusterIP is immutable")],
    "Secret": [(("type",), REPLACE, "a Secret's type is immutable")],
}


def _immutable_data_rule(kind: str, old: dict, new: dict) -> list[tuple[tuple[str, ...], str, str]]:
    keys = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "stringData")}.get(kind)
    if not keys:
        return []
    if old.get("immutable") is True or new.get("immutable") is True:
        why = f"the {kind} is immutable: true"
    else:
        flag = "enableConfigMapMutable" if kind == "ConfigMap" else "enableSecretMutable"
        why = f"pulumi-kubernetes replaces a {kind} whose data changes (unless the provider sets {flag})"
    return [((key,), REPLACE, why) for key in keys]


def _quantity(value: Any) -> float | None:
    """A storage request's size, or None when it is not a quantity (left as a plain change)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    try:
        return quantity_bytes(str(value))
    except (AttributeError, KeyError, ValueError):
        # quantity_bytes expects a validated quantity and fails on anything else (its regex
        # finds no match); a base revision's manifest is not validated by today's code.
        return None

def _storage_effect(change: FieldChange) -> Effect | None:
    old, new = _quantity(change.old), _quantity(change.new)
    if old is None or new is None:
        return None
    if new < old:
        return Effect(REFUSED, "a claim can only grow: Kubernetes refuses a smaller storage request")
    return Effect(NOTE, "grows in place only if the claim's StorageClass sets allowVolumeExpansion")


def _matches_option(path: FieldPath, pattern: str) -> bool:
    text = render_path(path)
    return pattern in ("*", text) or text.startswith(pattern + ".") or text.startswith(pattern + "[")


def classify(kind: str, old: dict, new: dict, change: FieldChange, replace_on_changes: Sequence[str] = ()) -> None:
    """Attach to a manifest field change what pulumi-kubernetes and Kubernetes will do with it."""
    rules = [*_ANY_KIND, *_immutable_data_rule(kind, old, new), *_RULES.get(kind, [])]
    for prefix, effect, why in rules:
        if change.path[: len(prefix)] == prefix:
            if effect:
                change.effects.append(Effect(effect, why))
            break
    if kind == "PersistentVolumeClaim" and change.path == ("spec", "resources", "requests", "storage"):
        storage_effect = _storage_effect(change)
        if storage_effect:
            change.effects.append(storage_effect)
    listed = any(_matches_option(change.path, pattern) for pattern in replace_on_changes)
    if listed and not any(e.kind == REPLACE for e in change.effects):
            change.effects.append(Effect(REPLACE, "the resource's replaceOnChanges option lists this field"))
