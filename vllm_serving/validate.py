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
