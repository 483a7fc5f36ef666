"""PrePullImage: a DaemonSet that pulls the server image onto the server's nodes while the model downloads.

The server's Deployment is created only after the download Jobs complete (VllmServing keeps that
dependency: during a model change the old pods go on serving the old model until the new one is
complete), so without this the node pulls the vLLM image (about 12 GB) only after the download.
The DaemonSet is created beside the download Job, with nothing to wait for: on each node the
server may run on (the server's nodeSelector, tolerations and affinity), an init container of the
server image runs `true`, so the kubelet pulls the image, and a pause container keeps the pod,
and the image in use, on the node at the smallest request Kubernetes allows.

Pulumi does not wait for it: pulumi-kubernetes awaits a DaemonSet until every pod is ready, for
at most 10 minutes by default (provider/pkg/await/daemonset.go, `_defaultDaemonSetTimeout`),
which a 12 GB pull can outlast, and nothing depends on it. `pulumi.com/skipAwait` turns that off.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..config import ServingConfig
from ..labels import common_labels, selector_labels
from ..storage.placement import node_placement

# The Kubernetes pause image: a few hundred KB, does nothing, never exits.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
_TINY = k8s.core.v1.ResourceRequirementsArgs(requests={"cpu": "1m", "memory": "8Mi"}, limits={"memory": "16Mi"})


def pre_pull_name(deploy_name: str) -> str:
    return f"{deploy_name}-pre-pull"


class PrePullImage(pulumi.ComponentResource):
    daemon_set: k8s.apps.v1.DaemonSet

    def __init__(self, name: str, config: ServingConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:PrePullImage", name, None, opts)
        deploy_name, image = config.model.deployName, config.image
        labels = common_labels(deploy_name, "pre-pull", image.tag)
        placement = node_placement(config)
        self.daemon_set = k8s.apps.v1.DaemonSet(
            f"{name}-daemonset",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=pre_pull_name(deploy_name), namespace=config.namespace, labels=labels,
                annotations={"pulumi.com/skipAwait": "true"},
            ),
            spec=k8s.apps.v1.DaemonSetSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(deploy_name, "pre-pull")),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        init_containers=[k8s.core.v1.ContainerArgs(
                            name="pull-server-image", image=image.reference, image_pull_policy=image.pullPolicy,
                            command=["true"], resources=_TINY,
                        )],
                        containers=[k8s.core.v1.ContainerArgs(name="pause", image=PAUSE_IMAGE, resources=_TINY)],
                        node_selector=placement.node_selector or None,
                        tolerations=placement.tolerations or None,  # type: ignore[arg-type]  # Kubernetes-shaped dicts, which the provider takes as they are
                        affinity=placement.affinity or None,  # type: ignore[arg-type]  # Kubernetes-shaped dicts, which the provider takes as they are
                        image_pull_secrets=[k8s.core.v1.LocalObjectReferenceArgs(name=secret) for secret in config.imagePullSecrets] or None,
                        termination_grace_period_seconds=0,
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"daemonSetName": self.daemon_set.metadata.name})
