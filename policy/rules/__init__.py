"""The checks of the vllm-serving policy pack, as plain functions.

Each check takes a resource's Pulumi type token and its input properties (the
Kubernetes object in its own camelCase shape) and returns one message per
violation. Nothing here needs a Pulumi engine or pulumi_policy: the pack's
__main__.py wires these into ResourceValidationPolicies, and the tests feed them
resources directly.

One module a concern: props.py reads pod specs and containers, quantity.py parses
Kubernetes quantities, and images.py, servers.py, resources.py and secrets.py hold the
checks. The package imports nothing outside this directory (see quantity.py for why), and
only relative imports within it, so it loads both as `policy.rules` (the tests) and as a
top-level `rules` (the analyzer runs the pack with policy/ itself on sys.path).
"""

from __future__ import annotations

from dataclasses import dataclass

from .images import check_image_pinned, split_image
from .props import (
    GPU_RESOURCE,
    MODEL_BYTES_ANNOTATION,
    MODEL_COPIES_ANNOTATION,
    POD_SPEC_PATHS,
    PVC_TYPE,
    Check,
    Props,
    containers,
    pod_spec,
)
from .quantity import QuantityError, parse_quantity
from .resources import check_model_volume_size, check_requests_within_limits
from .secrets import TOKEN_FORMATS, check_no_plaintext_secrets, find_tokens
from .servers import check_vllm_gpu, check_vllm_probes, runs_vllm_server, server_containers

__all__ = [
    "GPU_RESOURCE",
    "MODEL_BYTES_ANNOTATION",
    "MODEL_COPIES_ANNOTATION",
    "POD_SPEC_PATHS",
    "PVC_TYPE",
    "RULES",
    "TOKEN_FORMATS",
    "Check",
    "Props",
    "QuantityError",
    "Rule",
    "check_image_pinned",
    "check_model_volume_size",
    "check_no_plaintext_secrets",
    "check_requests_within_limits",
    "check_vllm_gpu",
    "check_vllm_probes",
    "containers",
    "find_tokens",
    "parse_quantity",
    "pod_spec",
    "runs_vllm_server",
    "server_containers",
    "split_image",
    "violations",
]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Check


RULES: tuple[Rule, ...] = (
    Rule(
        "pinned-images",
        "Containers run a pinned image: a tag other than latest, or a @sha256 digest.",
        check_image_pinned,
    ),
    Rule(
        "vllm-server-gpu",
        "A container running vLLM has an integral nvidia.com/gpu limit of at least 1.",
        check_vllm_gpu,
    ),
    Rule(
        "vllm-server-probes",
        "A container running vLLM has startup, readiness and liveness probes.",
        check_vllm_probes,
    ),
    Rule(
        "requests-within-limits",
        "No container requests more memory (or any other resource) than its limit.",
        check_requests_within_limits,
    ),
    Rule(
        "no-plaintext-secrets",
        "Credentials come from Secrets (valueFrom), not literal env values or command-line arguments.",
        check_no_plaintext_secrets,
    ),
    Rule(
        "model-volume-fits-model",
        f"A PersistentVolumeClaim annotated {MODEL_BYTES_ANNOTATION} requests at least that many bytes "
        f"times {MODEL_COPIES_ANNOTATION}, the copies that coexist during a model change.",
        check_model_volume_size,
    ),
)


def violations(resource_type: str, props: Props) -> dict[str, list[str]]:
    """Every rule's violations for one resource, by rule name; rules without any are left out."""
    found = {rule.name: rule.check(resource_type, props) for rule in RULES}
    return {name: messages for name, messages in found.items() if messages}
