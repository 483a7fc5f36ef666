"""A `model.deployName` change is refused before anything is registered.

model.deployName names every resource and is part of every URN, so a changed name is not an
update: `pulumi up` would create a second claim, download Job and GPU Deployment beside the old
ones, wait for them (in CI, with the old pods still holding the GPUs the new ones need), and
only then delete the old ones. Aliases cannot carry it out safely either: the claim's
Kubernetes name changes with it, which replaces the claim.

The previous name is this stack's own `servedModelName` output from its last update, read with
the engine's built-in `pulumi:pulumi:readStackOutputs` invoke (what a StackReference to the
stack itself reads; synchronous, so the refusal comes before the first registration, in
`pulumi preview` and in `pulumi up --skip-preview` alike). A new stack, or one that was
destroyed, has no outputs: any name is accepted.
"""

from __future__ import annotations

from typing import Any

import pulumi

from .config import ConfigError, ServingConfig

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
# The stack output that holds model.deployName (exported by __main__.py).
DEPLOY_NAME_OUTPUT = "servedModelName"


def _previous_outputs(unchecked: str) -> dict[str, Any] | None:
    """This stack's outputs from its last update ({} for a new or destroyed stack); None when the
    backend could not answer (a warning then says what goes `unchecked`)."""
    stack = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    try:
        result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": stack})
    except Exception as error:  # the backend's own error; the guard must not stop a deployment by itself
        pulumi.log.warn(f"could not read the outputs of {stack} ({error}): {unchecked}")
        return None
    outputs: Any = (result.value or {}).get("outputs") or {}
    return outputs if isinstance(outputs, dict) else None


def deployed_name() -> str | None:
    """model.deployName as of this stack's last update; None for a stack without outputs."""
    outputs = _previous_outputs("a model.deployName change is not checked")
    name = (outputs or {}).get(DEPLOY_NAME_OUTPUT)
    return name if isinstance(name, str) and name else None


def never_deployed() -> bool:
    """Whether this stack certainly never completed an update: its outputs could be read and there are
    none (a program exporting anything at all, as every program of this project does, has some after
    its first update). False when they could not be read."""
    return _previous_outputs("the first download reserves no server resources") == {}


def rename_problem(previous: str | None, config: ServingConfig) -> tuple[str, str] | None:
    """(key, message) when config renames the model deployed as `previous`; None otherwise."""
    current = config.model.deployName
    if not previous or previous == current:
        return None
    existing = config.model.volume.existingClaim
    if existing:
        created, kept, reuse = "download and server", f"the existing claim {existing} is left as it is", ""
    else:
        claim = f"{previous}-model"
        created = "volume, download and server"
        kept = f"the claim {claim} and its weights stay: model.volume.retainOnDelete"
        reuse = f" and model.volume.existingClaim: {claim} (same subPath) to reuse the weights without a download"
    return (
        "model.deployName",
        (f"{current!r} renames the model this stack deployed as {previous!r}: every resource is named after "
        f"model.deployName, so `pulumi up` would create a second {created} beside the old ones (each "
        f"needing GPUs) before deleting those. Set it back to {previous!r}, or rename in two steps: "
        f"`pulumi destroy` ({kept}), then `pulumi up` with the new name{reuse}"),
    )


def refuse_rename(config: ServingConfig) -> None:
    """Raise the ConfigError `pulumi preview` prints when config renames the deployed model."""
    problem = rename_problem(deployed_name(), config)
    if problem:
        raise ConfigError([problem])
