"""The T9k vLLM chart's values, as the tree of fields its README documents."""

from __future__ import annotations

from typing import Any

# The chart's default image tag: a values file without image.tag ran this release.
CHART_DEFAULT_TAG = "v0.3.3"

LEAF = "leaf"
# Kubernetes' own shape (secretKeyRef, configMapKeyRef, ...), passed to the pods unchanged.
OPAQUE = "opaque"
_ENV_ITEM = {"name": LEAF, "value": LEAF, "valueFrom": OPAQUE}

# Every field of the chart's values (its README's field table), as a tree.
CHART_FIELDS: dict[str, Any] = {
    "replicaCount": LEAF,
    "image": {"registry": LEAF, "repository": LEAF, "tag": LEAF, "pullPolicy": LEAF},
    "resources": {"limits": {"cpu": LEAF, "memory": LEAF, "nvidia.com/gpu": LEAF}},
    "model": {
        "deployName": LEAF,
        "volume": {
            "storageClass": LEAF,
            "size": LEAF,
            "accessModes": LEAF,
            "existingClaim": LEAF,
            "subPath": LEAF,
        },
        "source": LEAF,
        "huggingface": {"id": LEAF, "files": LEAF, "existingSecret": LEAF},
        "git": {"url": LEAF, "ref": LEAF, "existingSecret": LEAF},
        "s3": {"url": LEAF, "existingSecret": LEAF},
    },
    "env": [_ENV_ITEM],
}


# Keys people carry over from other charts, with what this project does instead.
KNOWN_REASONS = {
    "resources.requests": "the chart has no requests; this project sets them equal to resources.limits",
}
