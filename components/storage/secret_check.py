"""Reads (never writes) the Secrets a stack refers to, and refuses missing keys before anything runs.

`Secret.get` is a Pulumi read: at `pulumi preview` it asks the cluster for the Secret, and a
Secret that does not exist fails the preview with the provider's "not found". Present but
without the key the source needs, it fails here with the key named. Only the key names are
looked at here; the server takes a one-way checksum of its API key's value from `data`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

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


def _missing_keys(need: SecretNeed, namespace: str, data: dict | None) -> None:
    missing = [key for key in need.keys if key not in (data or {})]
    if missing:
        raise ConfigError([(
            need.config_key,
            (f"the Secret {namespace}/{need.secret} has no key {', '.join(missing)} "
            f"(it has: {', '.join(sorted(data or {})) or 'no keys'})"),
        )])


class SecretCheck(pulumi.ComponentResource):
    """Reads each referenced Secret and checks its keys.

    `gate(secret)`: the Secret's name as an Output that resolves only once every check passed.
    Whatever reads a Secret takes its name from here, so the engine cannot register it before
    the check: when a key is missing, the check's error fails those resources' registration too,
    and `pulumi up --skip-preview` stops with nothing that reads a Secret created (a Job whose pod
    cannot start never fails, it would wait for its deadline). `data(secret)`: what was read.
    """

    def __init__(self, name: str, config: ServingConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vllm-serving:index:SecretCheck", name, None, opts)
        namespace = config.namespace
        self._data: dict[str, pulumi.Output[Any]] = {}
        checks = []
        for need in grouped_needs(config):
            secret = k8s.core.v1.Secret.get(
                f"{name}-{need.secret}", f"{namespace}/{need.secret}", opts=pulumi.ResourceOptions(parent=self)
            )
            self._data[need.secret] = secret.data
            checks.append(secret.data.apply(functools.partial(_missing_keys, need, namespace)))
        self._passed = pulumi.Output.all(*checks)
        self.register_outputs({})

    def gate(self, secret: str) -> pulumi.Output[str]:
        # The name comes from config, not from the read: it is no secret even where the data is.
        return pulumi.Output.unsecret(self._passed.apply(lambda _: secret))

    def data(self, secret: str) -> pulumi.Output[dict]:
        return self._data[secret]
