"""The stack's `env` list as Kubernetes EnvVars, for the server and the download alike."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from .config import EnvVar


def env_var_args(env: list[EnvVar]) -> list[k8s.core.v1.EnvVarArgs]:
    # valueFrom keeps Kubernetes' own shape (secretKeyRef, configMapKeyRef, ...).
    return [
        k8s.core.v1.EnvVarArgs(name=var.name, value=var.value, value_from=var.valueFrom.as_dict() if var.valueFrom else None)
        for var in env
    ]
