"""A PodDisruptionBudget for node drains: how many server pods a voluntary disruption may take."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from ..config import PodDisruptionBudgetConfig
from ..labels import common_labels, selector_labels


def wants_budget(budget: PodDisruptionBudgetConfig, max_replicas: int) -> bool:
    """max_replicas: ServingConfig.max_replicas."""
    # With a single replica, a budget either blocks every drain (maxUnavailable 0) or allows
    # what it would without one: only when replicas can share the load does it protect anything.
    return budget.enabled and max_replicas > 1


@dataclass(frozen=True)
class PodDisruptionBudgetArgs:
    deploy_name: str
    namespace: str
    version: str
    budget: PodDisruptionBudgetConfig
    # Earlier URNs of the budget, so that an existing stack's budget is adopted, not replaced.
    aliases: Sequence[pulumi.Input[str]] = field(default_factory=tuple)


class PodDisruptionBudget(pulumi.ComponentResource):
    pod_disruption_budget: k8s.policy.v1.PodDisruptionBudget

    def __init__(self, name: str, args: PodDisruptionBudgetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:PodDisruptionBudget", name, None, opts)
        self.pod_disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            name,  # the component holds only this resource: the same name, under its own type
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.deploy_name,
                namespace=args.namespace,
                labels=common_labels(args.deploy_name, "server", args.version),
            ),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=args.budget.maxUnavailable,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(args.deploy_name, "server")),
            ),
            opts=pulumi.ResourceOptions(parent=self, aliases=list(args.aliases)),
        )
        self.register_outputs({})
