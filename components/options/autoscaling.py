"""Replicas that follow the load vLLM itself reports, through a KEDA ScaledObject.

Why KEDA and not a HorizontalPodAutoscaler on custom metrics: an HPA can only read pod metrics
through a metrics adapter (prometheus-adapter) configured cluster-wide with a rule per metric,
outside this program; KEDA takes the PromQL query in the ScaledObject itself, runs it against
the Prometheus named in the stack, and drives an HPA it creates and owns (keda-hpa-<name>).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..config import AutoscalingConfig
from ..labels import common_labels
from .routing import QUEUE_METRIC

# vLLM's own gauges, one series per server process, labelled model_name = --served-model-name.
WAITING_METRIC = "vllm:num_requests_waiting"
RUNNING_METRIC = "vllm:num_requests_running"
# The HPA's scale-down stabilization window may not exceed an hour.
MAX_STABILIZATION_SECONDS = 3600


def load_query(metric: str, namespace: str, served_model_name: str) -> str:
    """The total of one vLLM gauge over this model's server pods.

    KEDA divides it by the replica count (metricType AverageValue) and compares it to the
    threshold, so the threshold is a target per replica. `namespace` is the label Prometheus
    gives every target it discovers through a ServiceMonitor or PodMonitor; model_name keeps
    other models' servers in the namespace out.
    """
    return f'sum({metric}{{namespace="{namespace}",model_name="{served_model_name}"}})'


def queue_query(namespace: str, pool: str) -> str:
    """The requests the endpoint picker holds for this pool (components/options/routing.py,
    QUEUE_METRIC): the only load signal while no server pod runs."""
    return f'sum({QUEUE_METRIC}{{namespace="{namespace}",inference_pool="{pool}"}})'


def triggers(scaling: AutoscalingConfig, namespace: str, served_model_name: str, queued_pool: str | None = None) -> list[dict]:
    def trigger(name: str, query: str, target: int) -> dict:
        return {
            "type": "prometheus",
            "name": name,
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": scaling.prometheusAddress,
                "query": query,
                "threshold": str(target),
            },
        }

    found = [trigger("waiting-requests", load_query(WAITING_METRIC, namespace, served_model_name), scaling.targetWaitingRequests)]
    if scaling.targetRunningRequests > 0:
        # With two triggers the HPA takes the larger replica count of the two.
        found.append(trigger("running-requests", load_query(RUNNING_METRIC, namespace, served_model_name), scaling.targetRunningRequests))
    if queued_pool is not None:
        # KEDA activates a ScaledObject at zero replicas when a trigger's value is above its
        # activationThreshold (0 by default): one queued request starts the first replica.
        found.append(trigger("queued-requests", queue_query(namespace, queued_pool), scaling.targetWaitingRequests))
    return found


@dataclass(frozen=True)
class AutoscalingArgs:
    deploy_name: str
    namespace: str
    version: str
    # The Deployment to scale, and the name vLLM serves the model under (the metrics' model_name).
    deployment_name: pulumi.Input[str]
    served_model_name: str
    autoscaling: AutoscalingConfig
    # The InferencePool whose picker queues requests (flow control on), or None.
    queued_pool: str | None = None


class Autoscaling(pulumi.ComponentResource):
    scaled_object: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:Autoscaling", name, None, opts)
        scaling = args.autoscaling
        stabilization = min(scaling.cooldownSeconds, MAX_STABILIZATION_SECONDS)
        self.scaled_object = k8s.apiextensions.CustomResource(
            f"{name}-scaledobject",
            api_version="keda.sh/v1alpha1",
            kind="ScaledObject",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.deploy_name,
                namespace=args.namespace,
                labels=common_labels(args.deploy_name, "server", args.version),
            ),
            spec={
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": args.deployment_name},
                "minReplicaCount": scaling.minReplicas,
                "maxReplicaCount": scaling.maxReplicas,
                # KEDA's cooldownPeriod only delays the last step, to zero replicas ...
                "cooldownPeriod": scaling.cooldownSeconds,
                # ... every other step down is the HPA's, after its stabilization window. Both wait:
                # a replica removed too early costs a full model load when the load comes back.
                "advanced": {
                    "horizontalPodAutoscalerConfig": {
                        "behavior": {"scaleDown": {"stabilizationWindowSeconds": stabilization}}
                    }
                },
                "triggers": triggers(scaling, args.namespace, args.served_model_name, args.queued_pool),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"scaledObjectName": args.deploy_name})
