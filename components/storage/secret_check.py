"""Reads (never writes) the Secrets a stack refers to, and refuses missing keys before anything runs.

`Secret.get` is a Pulumi read: at `pulumi preview` it asks the cluster for the Secret, and a
Secret that does not exist fails the preview with the provider's "not found". Present but
without the key the source needs, it fails here with the key named. The values are never
looked at, only the key names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from ..config import ConfigError, ServingConfig


@dataclass(frozen=True)
class SecretNeed:
    secret: str
    keys: tuple[str, ...]
    # The config key that names the Secret, for the message.
    config_key: str


def secret_needs(config: ServingConfig) -> list[SecretNeed]:
    needs = []
    sourced = [("model", config.model)] + [
        (f"lora.adapters.{index}", adapter) for index, adapter in enumerate(config.lora.adapters)
    ]
    for path, model in sourced:
        source = model.download_source
        if source is not None and source.secret_keys:
            needs.append(SecretNeed(source.secret_name, source.secret_keys, f"{path}.{source.kind}.existingSecret"))
    if config.apiKeySecret.name:
        needs.append(SecretNeed(config.apiKeySecret.name, (config.apiKeySecret.key,), "apiKeySecret.name"))
    return needs


def grouped_needs(config: ServingConfig) -> list[SecretNeed]:
    """One need per Secret, with every key any of its users reads."""
    merged: dict[str, SecretNeed] = {}
    for need in secret_needs(config):
        known = merged.get(need.secret)
        if known is None:
            merged[need.secret] = need
        else:
            merged[need.secret] = SecretNeed(need.secret, tuple(sorted({*known.keys, *need.keys})), known.config_key)
    return list(merged.values())


def _missing_keys(need: SecretNeed, namespace: str, data: Optional[dict]) -> None:
    missing = [key for key in need.keys if key not in (data or {})]
    if missing:
        raise ConfigError([(
            need.config_key,
            f"the Secret {namespace}/{need.secret} has no key {', '.join(missing)} "
            f"(it has: {', '.join(sorted(data or {})) or 'no keys'})",
        )])


class SecretCheck(pulumi.ComponentResource):
    """`checked`: resources that exist only once every referenced Secret was read; depend on them."""

    checked: list[pulumi.Resource]

    def __init__(self, name: str, config: ServingConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("vllm-serving:index:SecretCheck", name, None, opts)
        self.checked = []
        namespace = config.namespace
        for need in grouped_needs(config):
            secret = k8s.core.v1.Secret.get(
                f"{name}-{need.secret}", f"{namespace}/{need.secret}", opts=pulumi.ResourceOptions(parent=self)
            )
            secret.data.apply(lambda data, need=need: _missing_keys(need, namespace, data))
            self.checked.append(secret)
        self.register_outputs({})
