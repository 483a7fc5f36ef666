"""What may interrupt the server: a PodDisruptionBudget for node drains, and a NetworkPolicy for
who may call it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from ..config import NetworkPolicyConfig, PodDisruptionBudgetConfig
from ..labels import SERVER_PORT, common_labels, selector_labels

# Set by Kubernetes (1.21+) on every namespace: selects a namespace by its name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def wants_budget(budget: PodDisruptionBudgetConfig, max_replicas: int) -> bool:
    """max_replicas: ServingConfig.max_replicas."""
    # With a single replica, a budget either blocks every drain (maxUnavailable 0) or allows
    # what it would without one: only when replicas can share the load does it protect anything.
    return budget.enabled and max_replicas > 1


def admitted_namespaces(namespace: str, policy: NetworkPolicyConfig) -> list[str]:
    """The server's own namespace first, then the listed ones, each once."""
    return list(dict.fromkeys([namespace, *policy.allowedNamespaces]))


@dataclass(frozen=True)
class DisruptionArgs:
    deploy_name: str
    namespace: str
    version: str
    max_replicas: int
    pod_disruption_budget: PodDisruptionBudgetConfig
    network_policy: NetworkPolicyConfig


class Disruption(pulumi.ComponentResource):
    pod_disruption_budget: Optional[k8s.policy.v1.PodDisruptionBudget]
    network_policy: Optional[k8s.networking.v1.NetworkPolicy]

    def __init__(self, name: str, args: DisruptionArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("vllm-serving:index:Disruption", name, None, opts)
        metadata = k8s.meta.v1.ObjectMetaArgs(
            name=args.deploy_name,
            namespace=args.namespace,
            labels=common_labels(args.deploy_name, "server", args.version),
        )
        server_pods = k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(args.deploy_name, "server"))
        self.pod_disruption_budget = None
        self.network_policy = None
        if wants_budget(args.pod_disruption_budget, args.max_replicas):
            self.pod_disruption_budget = k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=metadata,
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=args.pod_disruption_budget.maxUnavailable,
                    selector=server_pods,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        if args.network_policy.enabled:
            namespaces = admitted_namespaces(args.namespace, args.network_policy)
            self.network_policy = k8s.networking.v1.NetworkPolicy(
                f"{name}-networkpolicy",
                metadata=metadata,
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=server_pods,
                    # Only ingress is restricted: the pods still reach DNS, the Hub or S3 as before.
                    policy_types=["Ingress"],
                    ingress=[
                        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                            from_=[
                                k8s.networking.v1.NetworkPolicyPeerArgs(
                                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                        match_expressions=[
                                            k8s.meta.v1.LabelSelectorRequirementArgs(
                                                key=NAMESPACE_NAME_LABEL, operator="In", values=namespaces
                                            )
                                        ]
                                    )
                                )
                            ],
                            ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=SERVER_PORT, protocol="TCP")],
                        )
                    ],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})
