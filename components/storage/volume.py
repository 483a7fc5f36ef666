"""The volume that holds the model's files: a new PersistentVolumeClaim or an existing one."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..config import VolumeConfig
from ..labels import common_labels

MODEL_BYTES_ANNOTATION = "vllm-serving/model-bytes"
# How many copies of those bytes the claim must hold at once (VolumeConfig.copies_during_change).
MODEL_COPIES_ANNOTATION = "vllm-serving/model-copies"


@dataclass(frozen=True)
class ModelVolumeArgs:
    deploy_name: str
    # The claim's name (ServingConfig.claim_name): the existing claim's, or the one to create.
    claim_name: str
    namespace: str
    volume: VolumeConfig
    version: str
    # Expected bytes of the weights, when known: an annotation policies can check the size against.
    model_bytes: int | None = None


class ModelVolume(pulumi.ComponentResource):
    """Outputs `claim_name`, the claim to mount."""

    claim_name: pulumi.Output[str]
    claim: k8s.core.v1.PersistentVolumeClaim | None

    def __init__(self, name: str, args: ModelVolumeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:ModelVolume", name, None, opts)
        volume = args.volume
        self.claim = None
        if volume.existingClaim:
            self.claim_name = pulumi.Output.from_input(args.claim_name)
        else:
            self.claim = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-claim",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=args.claim_name,
                    namespace=args.namespace,
                    labels=common_labels(args.deploy_name, "model-volume", args.version),
                    annotations=_size_annotations(args),
                ),
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=list(volume.accessModes),
                    # An empty storageClassName means "no class" to Kubernetes; leaving it out means
                    # the cluster's default class, which is what the chart's "" meant.
                    storage_class_name=volume.storageClass or None,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": volume.size}),
                ),
                # Hundreds of GB that took an hour to download outlive the stack: with retainOnDelete
                # Pulumi drops the claim from its state without deleting it, so `pulumi destroy` still
                # deletes everything else (where `protect` would stop the whole destroy).
                opts=pulumi.ResourceOptions(
                    parent=self, protect=volume.protect, retain_on_delete=volume.retainOnDelete
                ),
            )
            self.claim_name = self.claim.metadata.name
        self.register_outputs({"claimName": self.claim_name})


def _size_annotations(args: ModelVolumeArgs) -> dict[str, str] | None:
    """What policies compare the claim's size with: bytes of one copy, and copies held at once."""
    if not args.model_bytes:
        return None
    return {
        MODEL_BYTES_ANNOTATION: str(args.model_bytes),
        MODEL_COPIES_ANNOTATION: str(args.volume.copies_during_change),
    }
