"""How Prometheus finds the server's /metrics: a ServiceMonitor, a PodMonitor (Prometheus Operator),
or plain prometheus.io/* annotations on the pods for a Prometheus configured by hand."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..config import MetricsConfig, MonitorConfig
from ..labels import SERVER_PORT, common_labels, selector_labels

METRICS_PATH = "/metrics"


def scrape_annotations(metrics: MetricsConfig) -> dict[str, str]:
    """The pod annotations that the common `kubernetes-pods` scrape job reads; empty unless asked for."""
    if not metrics.scrapeAnnotations:
        return {}
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVER_PORT),
        "prometheus.io/path": METRICS_PATH,
    }


@dataclass(frozen=True)
class MonitoringArgs:
    deploy_name: str
    namespace: str
    version: str
    metrics: MetricsConfig


class Monitoring(pulumi.ComponentResource):
    service_monitor: k8s.apiextensions.CustomResource | None
    pod_monitor: k8s.apiextensions.CustomResource | None

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:Monitoring", name, None, opts)
        selector = {"matchLabels": selector_labels(args.deploy_name, "server")}
        self.service_monitor = None
        self.pod_monitor = None
        service_monitor, pod_monitor = args.metrics.serviceMonitor, args.metrics.podMonitor
        if service_monitor.enabled:
            # Selects the Service by its labels; Prometheus then scrapes every ready endpoint behind it.
            self.service_monitor = self._monitor(
                f"{name}-servicemonitor", "ServiceMonitor", "endpoints",
                {"port": "http", "path": METRICS_PATH, "interval": service_monitor.interval},
                selector, args, service_monitor,
            )
        if pod_monitor.enabled:
            # Selects the server pods directly, for a Prometheus that does not watch Endpoints.
            self.pod_monitor = self._monitor(
                f"{name}-podmonitor", "PodMonitor", "podMetricsEndpoints",
                {"port": "http", "path": METRICS_PATH, "interval": pod_monitor.interval},
                selector, args, pod_monitor,
            )
        self.register_outputs({})

    def _monitor(  # noqa: PLR0917 - private, called twice with every part named in place
        self,
        resource_name: str,
        kind: str,
        endpoints_key: str,
        endpoint: dict,
        selector: dict,
        args: MonitoringArgs,
        monitor: MonitorConfig,
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version="monitoring.coreos.com/v1",
            kind=kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.deploy_name,
                namespace=args.namespace,
                # The Prometheus resource picks monitors by label (its serviceMonitorSelector /
                # podMonitorSelector, e.g. release: <helm release> with kube-prometheus-stack).
                labels={**common_labels(args.deploy_name, "server", args.version), **monitor.labels},
            ),
            spec={endpoints_key: [endpoint], "selector": selector},
            opts=pulumi.ResourceOptions(parent=self),
        )
