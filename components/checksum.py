"""One-way checksums of secret values, for what must change when a secret does but is shown in
plain text (a pod template annotation, a Job's name).

PBKDF2 rather than a bare hash: the checksum sits in manifests that more people can read than
the Secret itself, and 100 000 iterations make guessing a weak value from it slow. The salt is
the value's purpose (and stack), so equal values used for different things do not match.
"""

from __future__ import annotations

import hashlib

ITERATIONS = 100_000
PREFIX = "vllm-serving/"


def secret_checksum(value: str, purpose: str) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", value.encode(), f"{PREFIX}{purpose}".encode(), ITERATIONS)
    return digest.hex()[:32]
