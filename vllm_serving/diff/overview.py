"""What a stack deploys, in the words a reviewer checks a new stack by: the model and where it comes
from, the image, the GPUs, the volume and how the server is reached. Read from the rendered
manifests and outputs, so it says what the manifests say, whatever config produced them."""

from __future__ import annotations

from typing import Any

from .model import Side

GPU = "nvidia.com/gpu"


def _manifests(side: Side, kind: str) -> list[dict[str, Any]]:
    return [
        resource["manifest"] for resource in side.resources.values()
        if (resource.get("manifest") or {}).get("kind") == kind
    ]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: str(item.get("value", "")) for item in container.get("env", []) if "value" in item}


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]


def _source(side: Side) -> str:
    for job in _manifests(side, "Job"):
        for container in _containers(job.get("spec", {}).get("template", {}).get("spec", {})):
            env = _env(container)
            source = env.get("SOURCE")
            if source == "huggingface":
                return f"Hugging Face {env.get('HF_MODEL_ID', '?')} at {env.get('HF_REVISION') or 'the default branch (no revision pinned)'}"
            if source == "git":
                return f"git {env.get('GIT_URL', '?')} at {env.get('GIT_REF') or 'the default branch'}"
            if source == "s3":
                return f"S3 {env.get('S3_URL', '?')}"
    return ""


def _server(side: Side) -> tuple[dict[str, Any], int, int] | None:
    """The server's container, pods per replica, and replicas (Deployment or LeaderWorkerSet)."""
    for deployment in _manifests(side, "Deployment"):
        spec = deployment.get("spec", {})
        containers = spec.get("template", {}).get("spec", {}).get("containers", [])
        if containers:
            return containers[0], 1, int(spec.get("replicas", 1))
    for group in _manifests(side, "LeaderWorkerSet"):
        spec = group.get("spec", {})
        template = spec.get("leaderWorkerTemplate", {})
        containers = template.get("leaderTemplate", template.get("workerTemplate", {})).get("spec", {}).get("containers", [])
        if containers:
            return containers[0], int(template.get("size", 1)), int(spec.get("replicas", 1))
    return None


def _claimed(side: Side) -> str:
    """The claim the server's pods mount (Deployment, or the LeaderWorkerSet's workers)."""
    pod_specs = [d.get("spec", {}).get("template", {}).get("spec", {}) for d in _manifests(side, "Deployment")]
    pod_specs += [
        g.get("spec", {}).get("leaderWorkerTemplate", {}).get("workerTemplate", {}).get("spec", {})
        for g in _manifests(side, "LeaderWorkerSet")
    ]
    for pod_spec in pod_specs:
        for volume in pod_spec.get("volumes", []):
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                return str(claim)
    return "?"


def _volume(side: Side) -> str:
    claims = _manifests(side, "PersistentVolumeClaim")
    if not claims:
        return f"the existing claim {_claimed(side)} (not created by this stack)"
    spec = claims[0].get("spec", {})
    size = spec.get("resources", {}).get("requests", {}).get("storage", "?")
    modes = ", ".join(spec.get("accessModes", []))
    storage_class = spec.get("storageClassName", "the cluster's default class")
    return f"new claim {claims[0]['metadata'].get('name')}: {size}, {modes}, {storage_class}"


def _exposure(side: Side) -> str:
    services = [f"Service {s.get('spec', {}).get('type', 'ClusterIP')}" for s in _manifests(side, "Service")]
    hosts = [rule.get("host", "*") for ingress in _manifests(side, "Ingress") for rule in ingress.get("spec", {}).get("rules", [])]
    routes = [host for route in _manifests(side, "HTTPRoute") for host in route.get("spec", {}).get("hostnames", ["*"])]
    outside = [f"Ingress {', '.join(hosts)}"] if hosts else []
    outside += [f"HTTPRoute {', '.join(routes)}"] if routes else []
    external = side.outputs.get("externalBaseUrl")
    where = f"; outside the cluster at {external}" if external else "; inside the cluster only"
    return ", ".join(services + outside) + where


def overview(side: Side) -> list[str]:
    """One line per thing a reviewer of a new stack checks."""
    source = _source(side)
    served = side.outputs.get("servedModelName", "?")
    lines = [f"model: {served}, " + (f"from {source}" if source else "no download: already on the volume")]
    server = _server(side)
    if server is not None:
        container, pods, replicas = server
        gpus = int(str(container.get("resources", {}).get("limits", {}).get(GPU, 0)))
        per = f"{pods} pods × {gpus}" if pods > 1 else f"{gpus}"
        lines.append(f"image: {container.get('image', '?')}")
        lines.append(f"GPUs: {replicas * pods * gpus} ({replicas} replica{'s' if replicas != 1 else ''} × {per} GPU{'s' if gpus != 1 else ''})")
        scaled = [*_manifests(side, "ScaledObject"), *_manifests(side, "HorizontalPodAutoscaler")]
        for scaler in scaled:
            spec = scaler.get("spec", {})
            most = int(spec.get("maxReplicaCount", spec.get("maxReplicas", replicas)))
            lines.append(f"    autoscaled by {scaler['kind']}: up to {most} replicas, {most * pods * gpus} GPUs")
    lines.append(f"volume: {_volume(side)}")
    lines.append(f"exposure: {_exposure(side)}")
    return lines
