"""The Secret holding the server's API key, when the key is given as a Pulumi secret."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pydantic import SecretStr

from ..checksum import secret_checksum
from ..secret_values import secret_of_values

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
        secret = secret_of_values(
            self, f"{name}-secret", deploy_name=args.deploy_name, namespace=args.namespace, component="api-key",
            version=args.version, values={API_KEY_KEY: args.api_key.get_secret_value()},
        )
        self.secret_name = secret.metadata.name
        self.register_outputs({"secretName": self.secret_name})
