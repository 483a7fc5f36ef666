"""A NetworkPolicy: which namespaces' pods may call the server's port, one rule per purpose.

The in-cluster clients (the server's own namespace and networkPolicy.allowedNamespaces), the
ingress controller or Gateway (networkPolicy.ingressNamespaces), and what scrapes /metrics
(networkPolicy.monitoringNamespaces) each get a rule of their own, so that the policy says why
each peer is there. A NetworkPolicy sees ports, not paths, and vLLM serves /metrics on the API's
port: what each peer may do there is the allow-list's to decide (components/server/surface.py),
where /metrics alone answers without the key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from ..config import NetworkPolicyConfig
from ..labels import SERVER_PORT, common_labels, selector_labels

# Set by Kubernetes (1.21+) on every namespace: selects a namespace by its name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def admitted_namespaces(namespace: str, policy: NetworkPolicyConfig) -> list[str]:
    """The in-cluster clients: the server's own namespace first, then the listed ones, each once."""
    return list(dict.fromkeys([namespace, *policy.allowedNamespaces]))


def admitted_by_purpose(namespace: str, policy: NetworkPolicyConfig) -> list[list[str]]:
    """The namespaces of each rule, in order: clients, ingress controller or Gateway, monitoring;
    a purpose with no namespace of its own adds no rule."""
    purposes = [admitted_namespaces(namespace, policy), policy.ingressNamespaces, policy.monitoringNamespaces]
    return [list(dict.fromkeys(namespaces)) for namespaces in purposes if namespaces]


@dataclass(frozen=True)
class NetworkPolicyArgs:
    deploy_name: str
    namespace: str
    version: str
    network_policy: NetworkPolicyConfig
    # A multi-node group's pods exchange NCCL/Gloo traffic with each other on ports of their choosing.
    admit_group_peers: bool = False
    # Earlier URNs of the policy, so that an existing stack's policy is adopted, not replaced.
    aliases: Sequence[pulumi.Input[str]] = field(default_factory=tuple)


def _admit_namespaces(namespaces: list[str]) -> k8s.networking.v1.NetworkPolicyIngressRuleArgs:
    return k8s.networking.v1.NetworkPolicyIngressRuleArgs(
        from_=[
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_expressions=[
                        k8s.meta.v1.LabelSelectorRequirementArgs(key=NAMESPACE_NAME_LABEL, operator="In", values=namespaces)
                    ]
                )
            )
        ],
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=SERVER_PORT, protocol="TCP")],
    )


def _admit_group_peers(deploy_name: str) -> k8s.networking.v1.NetworkPolicyIngressRuleArgs:
    """Every port, from the server's own pods only: torch.distributed's rendezvous, NCCL and Gloo."""
    return k8s.networking.v1.NetworkPolicyIngressRuleArgs(
        from_=[k8s.networking.v1.NetworkPolicyPeerArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(deploy_name, "server"))
        )]
    )


class NetworkPolicy(pulumi.ComponentResource):
    network_policy: k8s.networking.v1.NetworkPolicy

    def __init__(self, name: str, args: NetworkPolicyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:NetworkPolicy", name, None, opts)
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            name,  # the component holds only this resource: the same name, under its own type
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.deploy_name,
                namespace=args.namespace,
                labels=common_labels(args.deploy_name, "server", args.version),
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(args.deploy_name, "server")),
                # Only ingress is restricted: the pods still reach DNS, the Hub or S3 as before.
                policy_types=["Ingress"],
                ingress=[
                    *(_admit_namespaces(namespaces) for namespaces in admitted_by_purpose(args.namespace, args.network_policy)),
                    *([_admit_group_peers(args.deploy_name)] if args.admit_group_peers else []),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, aliases=list(args.aliases)),
        )
        self.register_outputs({})
