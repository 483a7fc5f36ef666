"""The stack's `env` list as Kubernetes EnvVars, for the server and the download alike; and the
Secret that holds its values when `env` is a Pulumi secret."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .checksum import secret_checksum
from .config import EnvVar
from .secret_values import secret_of_values


def env_var_args(env: list[EnvVar], secret_name: pulumi.Input[str] | None = None) -> list[k8s.core.v1.EnvVarArgs]:
    """secret_name: the EnvSecret holding the values; each value is then read from it by reference."""
    # valueFrom is passed through in Kubernetes' own shape (secretKeyRef, configMapKeyRef, ...).
    return [
        k8s.core.v1.EnvVarArgs(
            name=var.name,
            value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret_name, key=var.name)
            ),
        )
        if secret_name is not None and var.value is not None
        else k8s.core.v1.EnvVarArgs(
            # Kubernetes' own shape (secretKeyRef, ...), which the provider takes as it is.
            name=var.name, value=var.value, value_from=var.valueFrom.as_dict() if var.valueFrom else None,  # type: ignore[arg-type]
        )
        for var in env
    ]


def env_checksum(env: list[EnvVar], namespace: str, deploy_name: str) -> str:
    """One-way: changes with any value, so that pods reading them from the Secret roll."""
    values = json.dumps([[var.name, var.value] for var in env if var.value is not None])
    return secret_checksum(values, f"env/{namespace}/{deploy_name}")


@dataclass(frozen=True)
class EnvSecretArgs:
    deploy_name: str
    namespace: str
    env: list[EnvVar]
    version: str


class EnvSecret(pulumi.ComponentResource):
    """A value set with `pulumi config set --secret` in `env` must not sit in a pod spec, where
    anyone who reads the Deployment or Job sees it (and Pulumi would mark the whole spec secret,
    hiding every other change from `preview` and `diff`). The engine tells only that `env` is
    secret, not which entry: every value goes here, and the pods read each by reference."""

    secret_name: pulumi.Output[str]

    def __init__(self, name: str, args: EnvSecretArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:EnvSecret", name, None, opts)
        secret = secret_of_values(
            self, f"{name}-secret", deploy_name=args.deploy_name, namespace=args.namespace, component="env",
            version=args.version, values={var.name: var.value for var in args.env if var.value is not None},
        )
        self.secret_name = secret.metadata.name
        self.register_outputs({"secretName": self.secret_name})
