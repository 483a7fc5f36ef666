"""Names and labels shared by every resource of one served model."""

from __future__ import annotations

PART_OF = "vllm-serving"
MODEL_MOUNT = "/model"
COMPLETION_MARKER = ".vllm-serving-complete"
SERVER_PORT = 8000
VERSION_LABEL = "app.kubernetes.io/version"


def selector_labels(deploy_name: str, component: str) -> dict[str, str]:
    """Labels that pick one component of one model; never changes for a stack's lifetime."""
    return {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": deploy_name,
        "app.kubernetes.io/component": component,
    }


def common_labels(deploy_name: str, component: str, version: str) -> dict[str, str]:
    return {
        **selector_labels(deploy_name, component),
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        VERSION_LABEL: version[:63].strip("-_."),
    }
