"""VllmServing as a Pulumi component package, usable from TypeScript, Go, C#, Java and YAML.

Pulumi hosts a Python component for other languages through a provider that infers the schema
from the component's typed `args` (pulumi/provider/experimental: component_provider_host, and
Analyzer.analyze_component, which reads the `args` annotation of `__init__` and the class's
output annotations). `provider/__main__.py` hosts this class; `provider/PulumiPlugin.yaml`
makes that directory a plugin `pulumi package add` takes (docs/component-package.md).

The args are the stack config keys without the namespace, as TypedDicts generated from the config
models (components/package_args.py), and are validated by the same parse_config as a stack's
config: the same defaults, rules and messages. The component is the VllmServing of a stack
(the same type token, so the same URNs and resources).
"""

# No `from __future__ import annotations`: Pulumi's analyzer reads the annotations as objects.
from typing import Any

import pulumi

from .config import parse_config
from .package_args import VllmServingArgs
from .serving import VllmServing as _StackComponent

PACKAGE_NAME = "vllm-serving"


def _plain(value: Any, path: str = "args") -> Any:
    """The args as plain data: the config decides resource names, so it must be known at preview."""
    if isinstance(value, pulumi.Output):
        raise pulumi.RunError(
            f"{path}: a value only known after deployment (an output of another resource); vllm-serving's "
            "config decides resource names and must be known at preview: pass a plain value"
        )
    if isinstance(value, dict):
        return {key: _plain(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


class VllmServing(_StackComponent):
    """Serve one model with vLLM on Kubernetes: the volume, the download Job, the server, its Service
    and the production extras the args ask for. The args are the vllm-serving stack config keys."""

    endpoint: pulumi.Output[str]
    """The server's in-cluster base URL, http://NAME.NAMESPACE.svc.cluster.local:8000."""
    openai_base_url: pulumi.Output[str]
    """The OpenAI-compatible API's base URL (the endpoint with /v1)."""
    # A plain string, as the stack component sets it: known at preview.
    served_model_name: str
    """The model name clients pass as `model`."""
    verify_commands: pulumi.Output[list[str]]
    """Shell commands that check the served endpoint from inside the cluster."""
    external_base_url: str
    """The base URL outside the cluster; empty when the model is not exposed."""
    download_logs_command: pulumi.Output[str]
    """The kubectl command that follows the current model download; empty without a download."""

    def __init__(self, name: str, args: VllmServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, parse_config(_plain(dict(args))), opts)
