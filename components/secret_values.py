"""A Secret whose values are Pulumi secrets: the API key's and the secret `env` values' alike."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .labels import common_labels


def secret_of_values(
    parent: pulumi.Resource, name: str, *, deploy_name: str, namespace: str, component: str, version: str,
    values: dict[str, pulumi.Input[str]],
) -> k8s.core.v1.Secret:
    """The Secret `<deploy_name>-<component>` holding `values`, each kept a Pulumi secret: encrypted
    in the state and masked in Pulumi's output, as is what the provider reads back."""
    return k8s.core.v1.Secret(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=f"{deploy_name}-{component}",
            namespace=namespace,
            labels=common_labels(deploy_name, component, version),
        ),
        type="Opaque",
        string_data={key: pulumi.Output.secret(value) for key, value in values.items()},
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["data", "stringData"]),
    )
