"""`routing`: the stack's replicas behind an InferencePool and llm-d's endpoint picker (docs/routing.md).

Off by default: a stack without `routing` renders exactly as before. Each field follows the
pinned upstream release it configures (components/options/routing.py says which file).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .fields import INT32_MAX, StrictModel, image_reference, quantity

# llm-d's router (the endpoint picker, "EPP"): ghcr.io/llm-d/<repository name>:<tag>, as its
# release workflow names the image (llm-d/llm-d-inference-scheduler v0.8.0,
# .github/workflows/ci-release.yaml: project_name = the repository's name, tag = the git tag).
DEFAULT_PICKER_IMAGE = "ghcr.io/llm-d/llm-d-inference-scheduler:v0.8.0"
# An adapter name as LoraAdapter allows it (it also names a directory the resolver reads).
_ADAPTER_NAME = re.compile(r"[a-z]([-a-z0-9]{0,18}[a-z0-9])?")


class PickerConfig(StrictModel):
    image: str = Field(DEFAULT_PICKER_IMAGE, description="The endpoint picker's image: llm-d's router, pinned.")
    replicas: int = Field(
        1, ge=1, le=5,
        description="Endpoint picker pods; more than 1 run with leader election (one active, the others on standby).",
    )
    cpu: str = Field("2", description="CPU the picker requests.")
    memory: str = Field("4Gi", description="Memory the picker requests, and its limit.")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        return image_reference(value)

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _quantity(cls, value: object) -> str:
        return quantity(value, "quantity")


class ScorerWeights(StrictModel):
    """Weights of the picker's scorers in its one scheduling profile; 0 leaves a scorer out."""

    prefixCache: int = Field(3, ge=0, le=100, description="prefix-cache-scorer: prefer the replica that holds the prompt's prefix.")
    kvCacheUtilization: int = Field(2, ge=0, le=100, description="kv-cache-utilization-scorer: prefer free KV cache.")
    queueDepth: int = Field(2, ge=0, le=100, description="queue-scorer: prefer the replica with the fewest waiting requests.")
    loraAffinity: int = Field(
        1, ge=0, le=100,
        description="lora-affinity-scorer: prefer a replica that has the adapter loaded (only with LoRA adapters).",
    )


class FlowControlConfig(StrictModel):
    enabled: bool = Field(
        False,
        description="Hold requests in the picker's queue while the pool is saturated or has no ready replica "
        "(required for autoscaling.minReplicas 0).",
    )
    queueTimeoutSeconds: int | None = Field(
        None, ge=1, le=INT32_MAX,
        description="How long a request may wait in the queue; unset: twice the predicted start of a replica "
        "(needs model.size).",
    )
    maxRequests: int | None = Field(None, ge=1, le=INT32_MAX, description="Most requests the queue holds; unset: no limit.")


class RuntimeLoraConfig(StrictModel):
    enabled: bool = Field(
        False,
        description="Load LoRA adapters without a restart: a request names an adapter in the volume's lora-runtime/ "
        "directory (beside model.volume.subPath) and vLLM's filesystem resolver loads it. The load/unload API is never routed.",
    )
    adapterNames: list[str] = Field(
        default_factory=list,
        description="Adapters that may be loaded at runtime, so that routing.routeByModel sends their requests here.",
    )

    @field_validator("adapterNames")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _ADAPTER_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a valid adapter name: lower-case letters, digits and '-', starting with a letter, "
                    "at most 20 characters"
                )
        return value


class RoutingConfig(StrictModel):
    enabled: bool = Field(
        False,
        description="Route through an InferencePool and llm-d's endpoint picker (prefix-cache, KV-cache and "
        "queue aware) on the Gateways of httpRoute.parentRefs.",
    )
    failureMode: Literal["FailOpen", "FailClose"] = Field(
        "FailOpen",
        description="What the Gateway does when the picker does not answer: FailOpen sends the request to a "
        "replica of its own choosing, FailClose refuses it.",
    )
    routeByModel: bool = Field(
        False,
        description="Match requests by the `model` field of their body (the Body-Based Router sets it as a "
        "header), so that several stacks share one Gateway.",
    )
    picker: PickerConfig = Field(default_factory=PickerConfig, description="The endpoint picker's pods.")
    scorers: ScorerWeights = Field(default_factory=ScorerWeights, description="The picker's scorer weights.")
    flowControl: FlowControlConfig = Field(default_factory=FlowControlConfig, description="The picker's request queue.")
    runtimeLora: RuntimeLoraConfig = Field(default_factory=RuntimeLoraConfig, description="LoRA adapters loaded at runtime.")
