"""Offline proof that rendered manifests are valid Kubernetes objects, per supported version.

Strict schemas: an unknown field (a typo, or a field a version does not have yet) is an
error, as it would be under server-side apply's field validation. Custom resources (KEDA,
Prometheus Operator, Gateway API, LeaderWorkerSet) are checked against the published CRD schemas shipped in
vllm_serving/crd_schemas, which do not change with the Kubernetes version.

kubernetes-validate's own `validate()` reads and parses its schema files (the kind's file and
the version's `_definitions.json`, several MB) and builds a new validator on every call: about
15 ms per manifest and version. Here each validator is built once per (schema version, apiVersion,
kind) and reused, with the same schema files, the same resolution of a version to the schema
directory and the same first error reported, so validating many stacks in one process costs the
checks alone. A manifest is first checked by the validator's schema compiled to plain closures
(validity.py, about ten times faster than jsonschema's walk); only one they find invalid goes
through jsonschema, for the first error it reports.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import all_versions, major_minor, schema_contents
from referencing import Registry, Resource

from .crd_schemas import schema_for, validate_custom_resource
from .crd_schemas.picker_config import PICKER_CONFIG_FILE, check_picker_config_text
from .validity import compile_validity

SUPPORTED_KUBERNETES_VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0")


@cache
def _schema_dir(version: str) -> str:
    """The strict schema directory kubernetes-validate uses for `version`: the newest one not newer."""
    wanted = major_minor(version.lstrip("v"))
    if wanted > major_minor(all_versions()[-1]):
        raise kubernetes_validate.VersionNotSupportedError(version=wanted)
    newest = [known for known in all_versions() if major_minor(known) <= wanted][-1]
    return f"v{newest}-local-strict"


@cache
def _definitions(schema_dir: str) -> Resource:
    return Resource.from_contents(schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", schema_dir))


@cache
def _validator(version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator:
    """kubernetes_validate.validate(..., strict=True)'s validator for one kind, built once."""
    schema_dir = _schema_dir(version)
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(
            version=major_minor(version), kind=kind, api_version=api_version
        ) from None
    registry = _definitions(schema_dir) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


_uses: dict[tuple[str, str, str], int] = {}


def _validity(version: str, api_version: str, kind: str) -> Callable[[Any], bool] | None:
    """_validator's verdict alone, compiled (validity.py) once the validator is used a second
    time: compiling costs about one jsonschema validation, so one stack alone is not slowed
    down; None: ask the validator."""
    key = (version, api_version, kind)
    _uses[key] = _uses.get(key, 0) + 1
    return _compiled_validity(*key) if _uses[key] > 1 else None


@cache
def _compiled_validity(version: str, api_version: str, kind: str) -> Callable[[Any], bool] | None:
    return compile_validity(_validator(version, api_version, kind))


def _kubernetes_failure(manifest: dict[str, Any], version: str) -> str:
    """The first violation of `manifest` against Kubernetes `version`'s strict schema, or ''."""
    api_version, kind = manifest.get("apiVersion", ""), manifest.get("kind", "")
    try:
        validator = _validator(version, api_version, kind)
    except kubernetes_validate.SchemaNotFoundError as error:
        return f"no schema: {error}"
    valid = _validity(version, api_version, kind)
    if valid is not None and valid(manifest):
        return ""  # jsonschema finds nothing either; only a manifest it rejects needs its first error
    try:
        validator.validate(manifest)
    except jsonschema.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return f"{path or '<root>'}: {error.message}"
    return ""


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
            failure = _kubernetes_failure(manifest, version)
            if failure:
                failures.append(f"{label} (Kubernetes {version}): {failure}")
        picker_config = (manifest.get("data") or {}).get(PICKER_CONFIG_FILE) if manifest.get("kind") == "ConfigMap" else None
        if picker_config is not None:
            # The endpoint picker's config, against the pinned release's plugins (crd_schemas/picker_config.py).
            failures += [f"{label} (endpoint picker config): {line}" for line in check_picker_config_text(picker_config)]
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
