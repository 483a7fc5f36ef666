"""pinned-images: every container names a fixed image."""

from __future__ import annotations

import re
from typing import Any

from .props import Props, containers

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def split_image(image: str) -> tuple[str, str, str | None, str | None]:
    """(registry, repository, tag, digest) of an image reference; registry "" when implicit."""
    name, _, digest = image.partition("@")
    # A ':' after the last '/' starts the tag; one before it is a registry port.
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    first, _, rest = name.partition("/")
    # Docker's rule: the first component is a registry only if it looks like a host.
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = "", name
    return registry, repository, tag, (digest if "@" in image else None)


def _image_problem(image: Any) -> str | None:
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    _, repository, tag, digest = split_image(image.strip())
    if digest is not None:
        # A digest names the exact bytes, whatever tag rides along with it.
        if _DIGEST.fullmatch(digest):
            return None
        return f"image {image!r} has a malformed digest (expected @sha256:<64 hex digits>)"
    if not repository:
        return f"image {image!r} has no repository"
    if tag is None:
        return f"image {image!r} has no tag, so it means :latest"
    if not tag:
        return f"image {image!r} has an empty tag"
    if tag.lower() == "latest":
        return f"image {image!r} uses the moving tag :latest"
    return None


def check_image_pinned(resource_type: str, props: Props) -> list[str]:
    """Every container names a fixed image: a tag other than latest, or a digest."""
    violations = []
    for where, container in containers(resource_type, props):
        problem = _image_problem(container.get("image"))
        if problem:
            violations.append(
                f"{where} {problem}: a restart or a new node could then pull a different server than the one "
                "reviewed; pin a release tag (e.g. vllm/vllm-openai:v0.33.0) or a digest (@sha256:...)"
            )
    return violations
