"""requests-within-limits and model-volume-fits-model: the quantities a pod and a claim ask for."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .props import MODEL_BYTES_ANNOTATION, PVC_TYPE, Props, containers, get
from .quantity import QuantityError, format_bytes, parse_quantity


def check_requests_within_limits(resource_type: str, props: Props) -> list[str]:
    """No container requests more of a resource than its limit (memory foremost)."""
    violations = []
    for where, container in containers(resource_type, props):
        requests = get(container, "resources", "requests")
        limits = get(container, "resources", "limits")
        if not isinstance(requests, Mapping) or not isinstance(limits, Mapping):
            continue
        for resource in requests:
            if resource not in limits:
                continue
            try:
                request, limit = parse_quantity(requests[resource]), parse_quantity(limits[resource])
            except QuantityError as error:
                violations.append(f"{where}: {resource}: {error}")
                continue
            if request > limit:
                violations.append(
                    f"{where} requests {requests[resource]!r} of {resource} but is limited to {limits[resource]!r}: "
                    "Kubernetes refuses the pod; raise the limit or lower the request"
                )
    return violations


def check_model_volume_size(resource_type: str, props: Props) -> list[str]:
    """A claim annotated with the model's size requests at least that much storage."""
    if resource_type != PVC_TYPE:
        return []
    annotation = get(props, "metadata", "annotations", MODEL_BYTES_ANNOTATION)
    if annotation is None:
        # The size is not known (an existing claim, or a program that does not annotate): nothing to compare.
        return []
    text = str(annotation).strip()
    if isinstance(annotation, bool) or not re.fullmatch(r"\d+", text):
        return [f"annotation {MODEL_BYTES_ANNOTATION} is {annotation!r}; it must be a whole number of bytes"]
    model_bytes = int(text)
    storage = get(props, "spec", "resources", "requests", "storage")
    if storage is None:
        return [f"the claim requests no storage, but the model needs {format_bytes(model_bytes)}"]
    try:
        size = parse_quantity(storage)
    except QuantityError as error:
        return [f"spec.resources.requests.storage: {error}"]
    if size < model_bytes:
        return [(
            f"the claim requests {storage!r} = {format_bytes(size)}, less than the model's "
            f"{format_bytes(model_bytes)}: the download would fail with a full disk after hours of work; "
            "raise model.volume.size"
        )]
    return []
