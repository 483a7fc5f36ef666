"""Run the real Pulumi program under Pulumi's mocks and capture what it would create.

No Pulumi CLI, no cluster: the program's own `__main__.py` runs against a mock
resource monitor that records every registration (inputs, parent, dependencies,
options) and the stack's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from . import sdk_internals
from .stack_file import StackFileError, load_engine_config, stack_name

PROJECT = "vllm-serving"
# Registration order depends on thread timing; a rendering lists resources in the order they
# apply (what others need first), then by URN, so two renderings of one stack are identical.
KIND_ORDER = (
    "Namespace", "ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap", "PersistentVolumeClaim", "Job",
    "DaemonSet", "Deployment", "LeaderWorkerSet", "Service", "PodDisruptionBudget", "NetworkPolicy", "Ingress",
    "InferencePool", "HTTPRoute",
    "ServiceMonitor", "PodMonitor", "ScaledObject", "HorizontalPodAutoscaler",
)


def _apply_order(resource: RenderedResource) -> tuple[int, int, str]:
    if not resource.is_kubernetes:
        return (0, 0, resource.urn)
    kind = resource.kind
    return (1, KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), resource.urn)


@dataclass
class RenderedResource:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str
    dependencies: list[str]
    custom: bool
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_kubernetes(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:")

    @property
    def kind(self) -> str:
        return self.inputs.get("kind", "")


@dataclass
class Rendering:
    stack: str
    resources: list[RenderedResource]
    outputs: dict[str, Any]

    @property
    def manifests(self) -> list[dict[str, Any]]:
        return [resource.inputs for resource in self.resources if resource.is_kubernetes]

    def by_kind(self, kind: str) -> list[RenderedResource]:
        return [r for r in self.resources if r.is_kubernetes and r.kind == kind]

    def one(self, kind: str) -> RenderedResource:
        found = self.by_kind(kind)
        if len(found) != 1:
            raise LookupError(f"expected one {kind}, rendered {len(found)}")
        return found[0]

    def urn_of(self, resource: RenderedResource) -> str:
        return resource.urn


class _EchoMocks(pulumi.runtime.Mocks):
    """A created resource's state is its inputs, as a server-side apply would return them.

    existing_secrets: for reads of Secrets, name -> the keys it holds (or key -> base64 value,
    for a test that changes a value); a Secret not in it does not exist. previous_outputs: the
    stack's outputs from its last update, as the engine's readStackOutputs answers them (none:
    a new stack).
    """

    def __init__(self, existing_secrets: dict[str, Any], previous_outputs: dict[str, Any] | None = None):
        self.existing_secrets = existing_secrets
        self.previous_outputs = previous_outputs or {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.resource_id and args.typ == "kubernetes:core/v1:Secret":
            return args.resource_id, self._read_secret(args.resource_id)
        return f"{args.name}-id", dict(args.inputs)

    def _read_secret(self, resource_id: str) -> dict[str, Any]:
        name = resource_id.rsplit("/", maxsplit=1)[-1]
        if name in self.existing_secrets:
            keys = self.existing_secrets[name]
        else:
            # What pulumi-kubernetes answers when the read finds nothing.
            raise Exception(f"resource '{resource_id}' does not exist")
        if isinstance(keys, dict):
            return {"data": dict(keys)}
        return {"data": dict.fromkeys(keys, "W3NlY3JldF0=")}

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "pulumi:pulumi:readStackOutputs":
            return {"name": args.args["name"], "outputs": self.previous_outputs, "secretOutputNames": []}
        return {}


def _aliases(request: Any) -> dict[str, Any]:
    """A resource's aliases, recorded only when it has some, so that older renderings compare equal."""
    from google.protobuf.json_format import MessageToDict

    aliases = [*request.aliasURNs, *(MessageToDict(alias) for alias in request.aliases)]
    return {"aliases": aliases} if aliases else {}


class _RecordingMonitor(sdk_internals.MockMonitor):
    def __init__(self, existing_secrets: dict[str, Any], previous_outputs: dict[str, Any] | None = None) -> None:
        super().__init__(_EchoMocks(existing_secrets, previous_outputs))
        self.registrations: list[RenderedResource] = []
        self.outputs: dict[str, Any] = {}

    def RegisterResource(self, request):
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        if request.importId:  # an import: the mock answers what it read
            response = super().RegisterResource(request)
            inputs = sdk_internals.deserialize_properties(request.object)
        else:
            inputs, response = sdk_internals.echo_registration(self, request)
        timeouts = request.customTimeouts
        self.registrations.append(
            RenderedResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs=inputs,
                parent=request.parent,
                dependencies=list(request.dependencies),
                custom=request.custom,
                options={
                    "protect": request.protect if request.HasField("protect") else False,
                    "retainOnDelete": request.retainOnDelete if request.HasField("retainOnDelete") else False,
                    "deleteBeforeReplace": request.deleteBeforeReplace,
                    "replaceOnChanges": list(request.replaceOnChanges),
                    **_aliases(request),
                    "customTimeouts": {
                        key: value
                        for key, value in (
                            ("create", timeouts.create),
                            ("update", timeouts.update),
                            ("delete", timeouts.delete),
                        )
                        if value
                    },
                },
            )
        )
        return response

    def RegisterResourceOutputs(self, request):
        if "::pulumi:pulumi:Stack::" in request.urn:
            self.outputs = sdk_internals.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)


def render(
    stack_file: Path, program: Path | None = None, previous_outputs: dict[str, Any] | None = None
) -> Rendering:
    """Render one stack config file; raises the program's own errors (e.g. ConfigError).
    previous_outputs: the stack's outputs from its last update (the rename guard reads them)."""
    from .project import project_of

    config, secret_keys = load_engine_config(stack_file)
    name = stack_name(stack_file)
    # The program of the project the stack file belongs to, as `pulumi up` in that project runs it.
    program = program or project_of(stack_file).program
    return render_config(config, secret_keys, name, program, previous_outputs=previous_outputs)


def _secrets_as_configured(config: dict[str, str]) -> dict[str, list[str]]:
    """Offline there is no cluster to read: assume each referenced Secret holds what its users read."""
    from components.config import ConfigError, decode_engine_config, parse_config
    from components.storage.secret_check import grouped_needs

    try:
        return {need.secret: list(need.keys) for need in grouped_needs(parse_config(decode_engine_config(config)))}
    except ConfigError:
        return {}  # the program itself reports the config's problems


def render_config(  # noqa: PLR0917 - the tests' entry point, which name the leading three by position
    config: dict[str, str],
    secret_keys: list[str],
    name: str = "test",
    program: Path | None = None,
    existing_secrets: dict[str, Any] | None = None,
    previous_outputs: dict[str, Any] | None = None,
) -> Rendering:
    rendering, error = render_until_failure(config, secret_keys, name, program, existing_secrets, previous_outputs)
    if error is not None:
        raise error
    return rendering


def render_until_failure(  # noqa: PLR0917 - as render_config
    config: dict[str, str],
    secret_keys: list[str],
    name: str = "test",
    program: Path | None = None,
    existing_secrets: dict[str, Any] | None = None,
    previous_outputs: dict[str, Any] | None = None,
) -> tuple[Rendering, Exception | None]:
    """What the engine registered, and the program's error if it failed: what a failed
    `pulumi up --skip-preview` would have created before it stopped."""
    if program is None:
        from .project import current_project

        program = current_project().program
    if not program.is_file():
        raise StackFileError(f"no Pulumi program at {program}: give the project's program with --program")
    if existing_secrets is None:
        existing_secrets = _secrets_as_configured(config)
    monitor = _RecordingMonitor(existing_secrets, previous_outputs)
    error: Exception | None = None
    try:
        sdk_internals.run_program(program, monitor, PROJECT, name, config, secret_keys)
    except Exception as failure:
        error = failure
    resources = sorted(monitor.registrations, key=_apply_order)
    return Rendering(stack=name, resources=resources, outputs=monitor.outputs), error


def rendering_as_json(rendering: Rendering) -> dict[str, Any]:
    """Everything a review needs, in a stable shape that other revisions of this tool can read."""
    from .manifests import normalize, ordered

    return {
        "stack": rendering.stack,
        "resources": [
            {
                "type": resource.type,
                "name": resource.name,
                "urn": resource.urn,
                "parent": resource.parent,
                "dependencies": sorted(resource.dependencies),
                "options": resource.options,
                "manifest": ordered(normalize(resource.inputs)) if resource.is_kubernetes else None,
            }
            for resource in rendering.resources
        ],
        "outputs": normalize(rendering.outputs),
    }
