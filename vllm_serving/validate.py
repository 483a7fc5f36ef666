"""Offline proof that rendered manifests are valid Kubernetes objects, per supported version.

Strict schemas: an unknown field (a typo, or a field a version does not have yet) is an
error, as it would be under server-side apply's field validation. Custom resources (KEDA,
Prometheus Operator, Gateway API, LeaderWorkerSet) are checked against the published CRD schemas shipped in
vllm_serving/crd_schemas, which do not change with the Kubernetes version.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from .crd_schemas import schema_for, validate_custom_resource

SUPPORTED_KUBERNETES_VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0")


def validate_manifests(manifests: list[dict[str, Any]], versions: tuple[str, ...] = SUPPORTED_KUBERNETES_VERSIONS) -> list[str]:
    """One line per (manifest, version) that fails its schema, per violation for a custom
    resource; empty when all pass."""
    failures = []
    for manifest in manifests:
        label = f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"
        if schema_for(manifest.get("apiVersion", ""), manifest.get("kind", "")):
            failures += [f"{label} ({manifest['apiVersion']} CRD): {line}" for line in validate_custom_resource(manifest)]
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(part) for part in error.path)
                failures.append(f"{label} (Kubernetes {version}): {path or '<root>'}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                failures.append(f"{label} (Kubernetes {version}): no schema: {error}")
    return failures


def _version_range(versions: tuple[str, ...]) -> str:
    minor = [version.rsplit(".", 1)[0] for version in versions]
    return minor[0] if len(minor) == 1 else f"{minor[0]}–{minor[-1]}"


def validation_summary(manifests: list[dict[str, Any]], versions: tuple[str, ...] = SUPPORTED_KUBERNETES_VERSIONS) -> str:
    """The one line `render --validate` prints when every manifest passed: what was checked against what."""
    custom = sorted({m.get("kind", "") for m in manifests if schema_for(m.get("apiVersion", ""), m.get("kind", ""))})
    built_in = sum(1 for m in manifests if not schema_for(m.get("apiVersion", ""), m.get("kind", "")))
    checked = f"validated {len(manifests)} manifest{'s' if len(manifests) != 1 else ''}"
    against = f"the Kubernetes {_version_range(versions)} schemas"
    if not custom:
        return f"{checked} against {against}: all valid"
    return (
        f"{checked}: {built_in} against {against}, {len(manifests) - built_in} against the CRD "
        f"schema{'s' if len(custom) != 1 else ''} of {', '.join(custom)}: all valid"
    )
