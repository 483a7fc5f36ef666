"""Published CRD schemas of the custom resources this program renders, and a strict validator.

kubernetes-validate knows only the built-in kinds. The custom resources (KEDA's ScaledObject,
prometheus-operator's ServiceMonitor and PodMonitor, Gateway API's HTTPRoute, the Inference
Extension's InferencePool, LeaderWorkerSet) are checked here
against the openAPIV3Schema of their published CustomResourceDefinitions, shipped as JSON
beside this file (see README.md there for where each one comes from and what was left out).

The API server treats a CRD's schema as structural: a field the schema does not declare is an
error under strict field validation, unless the schema says `x-kubernetes-preserve-unknown-fields`
or gives `additionalProperties`. The conversion below makes that explicit for JSON Schema, so a
misspelt field fails here as it would in the cluster. CEL rules (`x-kubernetes-validations`) are
shipped with the schemas but not evaluated: no CEL interpreter is needed to render.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent


@dataclass(frozen=True)
class CrdSchema:
    api_version: str
    kind: str
    file: str
    # Where the schema was taken from, to update it deliberately.
    source: str


SCHEMAS = {
    (schema.api_version, schema.kind): schema
    for schema in (
        CrdSchema(
            "keda.sh/v1alpha1", "ScaledObject", "keda.sh_v1alpha1_ScaledObject.json",
            "kedacore/charts keda/templates/crds/crd-scaledobjects.yaml @1b607d9 (controller-gen v0.16.5)",
        ),
        CrdSchema(
            "monitoring.coreos.com/v1", "ServiceMonitor", "monitoring.coreos.com_v1_ServiceMonitor.json",
            "prometheus-operator/prometheus-operator example/prometheus-operator-crd/"
            "monitoring.coreos.com_servicemonitors.yaml @c5bfb15 (operator 0.87.0)",
        ),
        CrdSchema(
            "monitoring.coreos.com/v1", "PodMonitor", "monitoring.coreos.com_v1_PodMonitor.json",
            "prometheus-operator/prometheus-operator example/prometheus-operator-crd/"
            "monitoring.coreos.com_podmonitors.yaml @0ff52b3 (operator 0.87.0)",
        ),
        CrdSchema(
            "gateway.networking.k8s.io/v1", "HTTPRoute", "gateway.networking.k8s.io_v1_HTTPRoute.json",
            "Gateway API v1.4.0 standard channel, config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
        ),
        CrdSchema(
            "inference.networking.k8s.io/v1", "InferencePool", "inference.networking.k8s.io_v1_InferencePool.json",
            "kubernetes-sigs/gateway-api-inference-extension v1.5.0 @df9f890 "
            "config/crd/bases/inference.networking.k8s.io_inferencepools.yaml",
        ),
        CrdSchema(
            "leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", "leaderworkerset.x-k8s.io_v1_LeaderWorkerSet.json",
            "kubernetes-sigs/lws v0.10.0 @2161f38 config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml "
            "(controller-gen v0.17.2)",
        ),
    )
}

# What the API server checks of any object's metadata, enough to catch a bad name or label.
_DNS_1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_METADATA_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": _DNS_1123_SUBDOMAIN},
        "namespace": {"type": "string", "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": {
            "type": "object",
            "additionalProperties": {
                "type": "string",
                "maxLength": 63,
                "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
            },
        },
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def schema_for(api_version: str, kind: str) -> CrdSchema | None:
    return SCHEMAS.get((api_version, kind))


@cache
def _openapi_schema(file: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / file).read_text())


def openapi_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The shipped openAPIV3Schema, as published less its descriptions."""
    found = schema_for(api_version, kind)
    if found is None:
        raise KeyError(f"no shipped CRD schema for {kind} {api_version}")
    return copy.deepcopy(_openapi_schema(found.file))


def to_json_schema(node: Any) -> Any:
    """A structural OpenAPI v3 schema as a strict JSON Schema (draft 7)."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: to_json_schema(value)
        for key, value in node.items()
        # CEL rules are not evaluated offline; defaults and list/map markers change no validity.
        if not key.startswith("x-kubernetes-") and key not in ("default", "description", "properties")
    }
    if "properties" in node:
        converted["properties"] = {name: to_json_schema(sub) for name, sub in node["properties"].items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            converted["additionalProperties"] = False
    if node.get("nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    converted.pop("nullable", None)
    return converted


def validation_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The Draft 7 schema a custom resource of a shipped CRD is validated against."""
    schema = to_json_schema(openapi_schema(api_version, kind))
    schema["properties"]["metadata"] = _METADATA_SCHEMA
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    schema["properties"]["apiVersion"] = {"const": api_version}
    schema["properties"]["kind"] = {"const": kind}
    return schema


@cache
def _validator(api_version: str, kind: str):
    import jsonschema

    # Each shipped schema is checked against Draft 7's metaschema by the tests
    # (tests/test_exposure.py), not on every run: for LeaderWorkerSet that costs 0.16 s.
    return jsonschema.Draft7Validator(validation_schema(api_version, kind))


def validate_custom_resource(manifest: dict[str, Any]) -> list[str]:
    """One line per schema violation of a custom resource with a shipped schema; empty when valid."""
    api_version, kind = manifest.get("apiVersion", ""), manifest.get("kind", "")
    if schema_for(api_version, kind) is None:
        raise KeyError(f"no shipped CRD schema for {kind} {api_version}")
    errors = sorted(_validator(api_version, kind).iter_errors(manifest), key=lambda e: list(map(str, e.path)))
    return [f"{'.'.join(str(part) for part in error.path) or '<root>'}: {_message(error)}" for error in errors]


def _message(error: Any) -> str:
    if error.validator == "additionalProperties" and error.validator_value is False:
        # Say which fields, as kubectl's strict validation does, rather than jsonschema's phrasing.
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field(s) {', '.join(repr(name) for name in unknown)}"
    return error.message
