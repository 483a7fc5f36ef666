"""The top-level component: one model served end to end, from volume to Service."""

from __future__ import annotations

from typing import Optional

import pulumi

from .config import ServingConfig, quantity_bytes
from .labels import SERVER_PORT
from .model_download import ModelDownload, ModelDownloadArgs
from .model_service import ModelService, ModelServiceArgs
from .model_volume import ModelVolume, ModelVolumeArgs
from .vllm_server import VllmServer, VllmServerArgs


class VllmServing(pulumi.ComponentResource):
    """Outputs: `endpoint`, `openai_base_url`, `served_model_name`, `verify_commands`."""

    def __init__(self, name: str, config: ServingConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("vllm-serving:index:VllmServing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        model, deploy_name, namespace = config.model, config.model.deployName, config.namespace
        version = config.image.tag

        self.volume = ModelVolume(
            f"{name}-volume",
            ModelVolumeArgs(
                deploy_name=deploy_name,
                namespace=namespace,
                volume=model.volume,
                version=version,
                model_bytes=int(quantity_bytes(model.size)) if model.size else None,
            ),
            opts=child,
        )
        self.download: Optional[ModelDownload] = None
        if model.source:
            self.download = ModelDownload(
                f"{name}-download",
                ModelDownloadArgs(
                    deploy_name=deploy_name,
                    namespace=namespace,
                    model=model,
                    download=config.download,
                    server_image=config.image,
                    env=list(config.env),
                    claim_name=self.volume.claim_name,
                    claim_name_in_config=model.volume.existingClaim or f"{deploy_name}-model",
                ),
                opts=child,
            )
        self.server = VllmServer(
            f"{name}-server",
            VllmServerArgs(
                config=config,
                claim_name=self.volume.claim_name,
                model_dir=model.model_dir,
                model_fingerprint=self.download.fingerprint if self.download else None,
            ),
            opts=child,
            # The server only starts once the weights are complete: Pulumi waits for the Job, and
            # the pod itself waits for the completion marker.
            depends_on=[self.download.job] if self.download else [],
        )
        self.service = ModelService(
            f"{name}-service",
            ModelServiceArgs(
                deploy_name=deploy_name,
                namespace=namespace,
                service=config.service,
                version=version,
                replicas=config.replicaCount,
            ),
            opts=child,
            depends_on=[self.server.deployment],
        )

        self.endpoint = self.service.service.metadata.name.apply(
            lambda service: f"http://{service}.{namespace}.svc.cluster.local:{SERVER_PORT}"
        )
        self.openai_base_url = self.endpoint.apply(lambda endpoint: f"{endpoint}/v1")
        self.served_model_name = deploy_name
        self.verify_commands = self.openai_base_url.apply(lambda url: verify_commands(url, deploy_name))
        self.register_outputs({
            "endpoint": self.endpoint,
            "openaiBaseUrl": self.openai_base_url,
            "servedModelName": self.served_model_name,
            "verifyCommands": self.verify_commands,
        })


def verify_commands(base_url: str, served_model_name: str) -> list[str]:
    """The chart's "application information" step: what to run in the cluster to check the endpoint."""
    chat = (
        '{"model": "' + served_model_name + '", '
        '"messages": [{"role": "user", "content": "Say hello in one short sentence."}], "max_tokens": 32}'
    )
    return [
        f"curl -sS {base_url}/models",
        f"curl -sS {base_url}/chat/completions -H 'Content-Type: application/json' -d '{chat}'",
    ]
