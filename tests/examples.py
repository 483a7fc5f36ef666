"""The example stacks this repository ships, in one place.

Tests about the examples (the README lists them, the snapshot pins their URNs) read this
list, not every file in stacks/: a stack a user adds by hand or with `import-values` is
rendered and checked like any other, but never needs a README entry or a snapshot.
"""

from __future__ import annotations

from vllm_serving.stack_file import STACKS_DIR

EXAMPLE_STACKS = (
    "codellama-7b",
    "llama-3-8b-existing-claim",
    "qwen-git",
    "mistral-s3",
    "llama-3-70b-production",
    "llama-3-1-405b-multinode",
    "llama-3-8b-routed",
    "qwen-routed",
)
EXAMPLE_STACK_FILES = sorted(STACKS_DIR / f"Pulumi.{name}.yaml" for name in EXAMPLE_STACKS)
