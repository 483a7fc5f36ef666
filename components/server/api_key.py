"""The Secret holding the server's API key, when the key is given as a Pulumi secret."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from ..checksum import secret_checksum
from ..labels import common_labels

API_KEY_KEY = "apiKey"


def api_key_checksum(value: str, namespace: str, deploy_name: str) -> str:
    """What the server's pod template carries so that a new key rolls the pods (a Secret read
    through an env var is only read at container start). One-way: it reveals nothing of the key."""
    return secret_checksum(value, f"api-key/{namespace}/{deploy_name}")


@dataclass(frozen=True)
class ApiKeySecretArgs:
    deploy_name: str
    namespace: str
    api_key: SecretStr
    version: str


class ApiKeySecret(pulumi.ComponentResource):
    """`secret_name` and `key` name where the server reads the key from."""

    secret_name: pulumi.Output[str]
    key: str = API_KEY_KEY

    def __init__(self, name: str, args: ApiKeySecretArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:ApiKeySecret", name, None, opts)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{args.deploy_name}-api-key",
                namespace=args.namespace,
                labels=common_labels(args.deploy_name, "api-key", args.version),
            ),
            type="Opaque",
            # Output.secret keeps the value encrypted in Pulumi's state and masked in its output.
            string_data={API_KEY_KEY: pulumi.Output.secret(args.api_key.get_secret_value())},
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["data", "stringData"]),
        )
        self.secret_name = secret.metadata.name
        self.register_outputs({"secretName": self.secret_name})
