"""The Service in front of the vLLM server pods."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from ..config import ServiceConfig
from ..labels import SERVER_PORT, common_labels, selector_labels


def _await_annotations(replicas: int) -> dict[str, str]:
    # With no replicas no endpoint will ever be ready, so waiting for one could only time out.
    return {"pulumi.com/skipAwait": "true"} if replicas == 0 else {}


@dataclass(frozen=True)
class ModelServiceArgs:
    deploy_name: str
    namespace: str
    service: ServiceConfig
    version: str
    replicas: int
    # Labels a pod must also carry to receive traffic: a multi-node group's leader only.
    extra_selector: dict[str, str] = field(default_factory=dict)


class ModelService(pulumi.ComponentResource):
    service: k8s.core.v1.Service

    def __init__(
        self,
        name: str,
        args: ModelServiceArgs,
        opts: pulumi.ResourceOptions | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ):
        super().__init__("vllm-serving:index:ModelService", name, None, opts)
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.deploy_name,
                namespace=args.namespace,
                labels=common_labels(args.deploy_name, "server", args.version),
                annotations={**args.service.annotations, **_await_annotations(args.replicas)} or None,
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type=args.service.type,
                selector={**selector_labels(args.deploy_name, "server"), **args.extra_selector},
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=SERVER_PORT, target_port="http", protocol="TCP"
                    )
                ],
            ),
            # pulumi-kubernetes waits until the Service has ready endpoints, for 10 minutes: created
            # after the server is ready, it finds them at once instead of timing out during a model load.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        self.register_outputs({"serviceName": self.service.metadata.name})
