"""How clients outside the cluster reach the server: an Ingress, a Gateway API HTTPRoute, or both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ..config import HttpRouteConfig, IngressConfig
from ..labels import SERVER_PORT, common_labels

# A streamed completion keeps one response open while it generates, often for minutes; the
# controllers' defaults (ingress-nginx: 60 s) would cut it off mid-answer. ingress-nginx reads
# these annotations; any other controller needs its own, given in ingress.annotations.
STREAMING_ANNOTATIONS = {
    "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
    # Buffering would hold tokens back until a buffer fills: the client sees the answer in bursts.
    "nginx.ingress.kubernetes.io/proxy-buffering": "off",
}


# The routes carry the OpenAI API only, plus the paths the user lists on purpose; the server's
# allow-list (components/server/surface.py) answers these and nothing else but the probe paths.
OPENAI_API_PREFIX = "/v1"


def routed_paths(path_prefix: str, extra_paths: list[str]) -> list[str]:
    """The path prefixes a route sends to the server: the OpenAI API under path_prefix, then extra_paths."""
    api = f"{path_prefix.rstrip('/')}{OPENAI_API_PREFIX}"
    return [api, *(path for path in extra_paths if path != api)]


def ingress_annotations(ingress: IngressConfig) -> dict[str, str]:
    # The user's annotations win: they know their controller.
    return {**STREAMING_ANNOTATIONS, "nginx.ingress.kubernetes.io/proxy-body-size": ingress.maxRequestBodySize, **ingress.annotations}


def ingress_base_url(ingress: IngressConfig) -> str | None:
    if not ingress.enabled:
        return None
    scheme = "https" if ingress.tlsSecret else "http"
    return f"{scheme}://{ingress.host}{ingress.path.rstrip('/')}/v1"


def http_route_base_url(route: HttpRouteConfig) -> str | None:
    # The route cannot tell whether the Gateway's listener terminates TLS, and without a hostname
    # it answers on whatever address the Gateway has: neither is known here.
    if not route.enabled or not route.hostnames:
        return None
    return f"http://{route.hostnames[0]}/v1"


def external_base_url(ingress: IngressConfig, route: HttpRouteConfig) -> str | None:
    """The OpenAI base URL from outside the cluster; the Ingress's when both exist."""
    return ingress_base_url(ingress) or http_route_base_url(route)


@dataclass(frozen=True)
class ExposureArgs:
    deploy_name: str
    namespace: str
    version: str
    # The Service in front of the server pods; both routes send to its port 8000.
    service_name: pulumi.Input[str]
    ingress: IngressConfig
    http_route: HttpRouteConfig
    # With routing on (options/routing.py, http_route_rules): the HTTPRoute's rules for its
    # paths and request timeout, sending to the InferencePool instead of the Service.
    pool_rules: Callable[[list[str], str], list[dict[str, Any]]] | None = None


class Exposure(pulumi.ComponentResource):
    """Outputs: `external_base_url` (None when nothing is exposed or no host is known)."""

    ingress: k8s.networking.v1.Ingress | None
    http_route: k8s.apiextensions.CustomResource | None

    def __init__(self, name: str, args: ExposureArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:Exposure", name, None, opts)
        labels = common_labels(args.deploy_name, "server", args.version)
        self.ingress = None
        self.http_route = None
        if args.ingress.enabled:
            self.ingress = self._ingress(name, args, labels)
        if args.http_route.enabled:
            self.http_route = self._http_route(name, args, labels)
        self.external_base_url = external_base_url(args.ingress, args.http_route)
        self.register_outputs({"externalBaseUrl": self.external_base_url})

    def _ingress(self, name: str, args: ExposureArgs, labels: dict[str, str]) -> k8s.networking.v1.Ingress:
        ingress = args.ingress
        return k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.deploy_name,
                namespace=args.namespace,
                labels=labels,
                annotations=ingress_annotations(ingress),
            ),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=ingress.className or None,
                tls=[k8s.networking.v1.IngressTLSArgs(hosts=[ingress.host], secret_name=ingress.tlsSecret)]
                if ingress.tlsSecret
                else None,
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        host=ingress.host,
                        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                            paths=[
                                k8s.networking.v1.HTTPIngressPathArgs(
                                    path=path,
                                    path_type="Prefix",
                                    backend=k8s.networking.v1.IngressBackendArgs(
                                        service=k8s.networking.v1.IngressServiceBackendArgs(
                                            name=args.service_name,
                                            port=k8s.networking.v1.ServiceBackendPortArgs(number=SERVER_PORT),
                                        )
                                    ),
                                )
                                for path in routed_paths(ingress.path, ingress.extraPaths)
                            ]
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _http_route(
        self, name: str, args: ExposureArgs, labels: dict[str, str]
    ) -> k8s.apiextensions.CustomResource:
        route = args.http_route
        parent_refs = [ref.model_dump(exclude_defaults=True) for ref in route.parentRefs]
        paths = routed_paths("/", route.extraPaths)
        rules = args.pool_rules(paths, route.requestTimeout) if args.pool_rules else [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": path}} for path in paths],
                "backendRefs": [{"name": args.service_name, "port": SERVER_PORT}],
                # Gateways default to short request timeouts (Envoy: 15 s), far less than a
                # long generation takes.
                "timeouts": {"request": route.requestTimeout},
            }
        ]
        return k8s.apiextensions.CustomResource(
            f"{name}-httproute",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.deploy_name, namespace=args.namespace, labels=labels),
            spec={
                "parentRefs": parent_refs,
                **({"hostnames": list(route.hostnames)} if route.hostnames else {}),
                "rules": rules,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
