"""requests-within-limits and model-volume-fits-model: the quantities a pod and a claim ask for."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .props import MODEL_BYTES_ANNOTATION, MODEL_COPIES_ANNOTATION, PVC_TYPE, Props, containers, get
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


def _whole_number(annotations: Any, name: str, default: int | None) -> tuple[int | None, list[str]]:
    """An annotation holding a whole number: (the number or default when absent, violations)."""
    value = get(annotations, name)
    if value is None:
        return default, []
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"\d+", text):
        return None, [f"annotation {name} is {value!r}; it must be a whole number"]
    return int(text), []


def _copies_needed(annotations: Any) -> tuple[tuple[int, int] | None, list[str]]:
    """(bytes of one copy, copies held at once) from the claim's annotations, or the violations;
    (None, []) when the model's size is not annotated."""
    model_bytes, bad_bytes = _whole_number(annotations, MODEL_BYTES_ANNOTATION, None)
    if model_bytes is None:
        return None, [message.replace("whole number", "whole number of bytes") for message in bad_bytes]
    copies, bad_copies = _whole_number(annotations, MODEL_COPIES_ANNOTATION, 1)
    return (None, bad_copies) if copies is None else ((model_bytes, copies), [])


def check_model_volume_size(resource_type: str, props: Props) -> list[str]:
    """A claim annotated with the model's size holds every copy that coexists during a model change:
    model-bytes × model-copies (one copy when the count is absent)."""
    if resource_type != PVC_TYPE:
        return []
    # Not annotated: the size is not known (an existing claim, or a program that does not annotate).
    needed, bad_annotations = _copies_needed(get(props, "metadata", "annotations"))
    if needed is None:
        return bad_annotations
    model_bytes, copies = needed
    total = model_bytes * copies
    storage = get(props, "spec", "resources", "requests", "storage")
    if storage is None:
        return [f"the claim requests no storage, but the model needs {format_bytes(total)}"]
    try:
        size = parse_quantity(storage)
    except QuantityError as error:
        return [f"spec.resources.requests.storage: {error}"]
    if size >= total:
        return []
    held = (
        f"the {copies} copies × {format_bytes(model_bytes)} = {format_bytes(total)} that coexist during a model change"
        if copies > 1
        else f"the model's {format_bytes(total)}"
    )
    return [
        (f"the claim requests {storage!r} = {format_bytes(size)}, less than {held}: the download would fail with "
        "a full disk after hours of work; raise model.volume.size (or lower model.volume.keepPreviousVersions)")
    ]
