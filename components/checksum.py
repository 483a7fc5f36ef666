"""One-way checksums of secret values, for what must change when a secret does but is shown in
plain text (a pod template annotation, a Job's name).

PBKDF2 rather than a bare hash: the checksum sits in manifests that more people can read than
the Secret itself, and 100 000 iterations make guessing a weak value from it slow. The salt is
the value's purpose (and stack), so equal values used for different things do not match.

The iterations are the point, and they cost about 40 ms of CPU a checksum. One process that
renders a stack twice (`vllm-serving diff` renders the base and the working tree of a stack in
one process when their code is the same) computes each (value, purpose) once: the values are
in that process's memory already, as its config.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

ITERATIONS = 100_000
PREFIX = "vllm-serving/"


@lru_cache(maxsize=256)
def secret_checksum(value: str, purpose: str) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", value.encode(), f"{PREFIX}{purpose}".encode(), ITERATIONS)
    return digest.hex()[:32]
