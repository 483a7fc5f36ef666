"""Every use of the Pulumi Python SDK's internals, in one place.

The render harness runs the real program without a Pulumi CLI or engine. The SDK's public
testing API (`pulumi.runtime.set_mocks` with a `Mocks`) is made for unit tests that import a
program once per process; rendering a stack again and again in one process, recording every
registration's options and the stack's outputs, needs the SDK parts below, which are not
public API and may change in any SDK release. `INTERNALS` lists each with why it is needed
and the parameters relied on; tests/test_sdk_internals.py checks each one against the
installed SDK, so an upgrade that breaks one fails there, naming the symbol, instead of
somewhere deep in a rendering.
"""

from __future__ import annotations

import asyncio
import collections
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi.runtime import mocks, resource, rpc, settings, stack
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import resource_pb2, source_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

# The mock resource monitor: a subclass records each RegisterResource request (the engine's
# gRPC message, with the options the public Mocks API never sees: protect, dependsOn,
# customTimeouts, deleteBeforeReplace, aliases) before answering as the mock does.
MockMonitor = mocks.MockMonitor


@dataclass(frozen=True)
class Internal:
    """One SDK symbol the harness relies on: where it lives, why, and the parameters it is called with."""

    module: str
    name: str
    why: str
    parameters: tuple[str, ...] = ()


INTERNALS: tuple[Internal, ...] = (
    Internal(
        "pulumi.runtime.sync_await", "_sync_await",
        "runs the program's coroutine to completion on the SDK's own event loop, as the Python "
        "language host does; asyncio.run would use a loop the SDK's futures are not bound to",
        ("awaitable",),
    ),
    Internal(
        "pulumi.runtime.stack", "run_in_stack",
        "creates the root Stack resource whose outputs `pulumi.export` sets, and waits for every "
        "registration, as the Pulumi entrypoint does",
        ("func",),
    ),
    Internal(
        "pulumi.runtime.settings", "SETTINGS",
        "holds the pending RPCs (`rpc_manager`) and outputs (`outputs`) of the last program run; "
        "cleared so that one process can render many stacks",
    ),
    Internal(
        "pulumi.runtime.settings", "set_root_resource",
        "set_mocks registers a root Stack of its own; reset to None so that run_in_stack makes "
        "the one the program's exports belong to",
        ("root",),
    ),
    Internal(
        "pulumi.runtime.mocks", "set_mocks",
        "installs the mock monitor; `monitor=` (not public in the docs) lets the harness pass "
        "its recording subclass",
        ("mocks", "project", "stack", "preview", "monitor"),
    ),
    Internal(
        "pulumi.runtime.mocks", "MockMonitor",
        "the base of the recording monitor; its RegisterResource and RegisterResourceOutputs take "
        "the engine's gRPC requests",
        ("mocks",),
    ),
    Internal(
        "pulumi.runtime.mocks", "MockMonitor.make_urn",
        "the URN MockMonitor.RegisterResource answers; `echo_registration` answers the same one",
        ("parent", "type_", "name"),
    ),
    Internal(
        "pulumi.runtime.mocks", "MockMonitor.ResourceRegistration",
        "what MockMonitor.RegisterResource records in `resources` (read by the mock's getResource "
        "invoke and ExistsResource); `echo_registration` records the same",
        ("urn", "id", "state"),
    ),
    Internal(
        "pulumi.runtime.sync_await", "_ensure_event_loop",
        "MockMonitor.RegisterResource makes sure the executor thread it runs on has an event loop "
        "before deserializing (resource references need one); `echo_registration` does the same",
    ),
    Internal(
        "pulumi.runtime.rpc", "deserialize_properties",
        "turns a request's protobuf Struct back into the program's values, as the engine would "
        "see them (a secret stays wrapped in its signature dict, which manifests.normalize reads)",
        ("props_struct",),
    ),
    Internal(
        "pulumi.runtime.resource", "_get_stack_trace",
        "walks the whole Python stack at every registration to tell the engine where in the program "
        "the resource was made (about an eighth of a render's time); nothing here reads it, so the "
        "harness answers an empty stack trace while a program runs",
    ),
    Internal(
        "pulumi.runtime.config", "set_all_config",
        "sets the stack's config for `pulumi.Config`, as the engine passes it in PULUMI_CONFIG",
        ("config", "secret_keys"),
    ),
)


def deserialize_properties(struct: Any) -> Any:
    """A protobuf Struct from a monitor request, as plain values."""
    return rpc.deserialize_properties(struct)


def echo_registration(monitor: MockMonitor, request: Any) -> tuple[dict[str, Any], Any]:
    """MockMonitor.RegisterResource for a registration whose mocked state is its inputs: the
    deserialized inputs, and the response (URN, id, state).

    The mock deserializes the request's properties, asks `monitor.mocks.new_resource`, then
    serializes the state it answers back into the response, on its own event loop: about a
    tenth of a render, for a state that is the request's properties again. Here the request's
    properties are the response's state as they stand, which the SDK deserializes to the same
    values (a secret's marker moves up to the map that holds it either way), and the inputs
    are deserialized once, for the caller to record. A state that differs from the inputs
    (a mock that answers something else) is serialized as the mock does. The request's resource
    transforms are not resolved for the mocks: the program registers none, and no mock here reads them.
    """
    urn = monitor.make_urn(request.parent, request.type, request.name)
    _ensure_event_loop()  # see INTERNALS
    inputs = rpc.deserialize_properties(request.object)
    args = mocks.MockResourceArgs(
        typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
        resource_id=request.importId, custom=request.custom or False,
    )
    # Optional[str] as the mock's own code passes it on (None: an empty id in the response).
    answer: tuple[Any, dict] = monitor.mocks.new_resource(args)
    resource_id, state = answer
    monitor.resources[urn] = MockMonitor.ResourceRegistration(urn, resource_id, state)
    state_proto = request.object if state == inputs else _sync_await(rpc.serialize_properties(state, {}))
    return inputs, resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=state_proto)


def run_program(  # noqa: PLR0917 -- render.py, outside this change, passes all six by position
    program: Path,
    monitor: MockMonitor,
    project: str,
    stack_name: str,
    config: dict[str, str],
    secret_keys: list[str],
) -> None:
    """Run a Pulumi program file as `__main__` against `monitor`, with this stack config."""
    stack_trace = resource._get_stack_trace
    resource._get_stack_trace = source_pb2.StackTrace  # see INTERNALS
    try:
        settings.SETTINGS.rpc_manager.clear()
        settings.SETTINGS.outputs.clear()
        mocks.set_mocks(monitor.mocks, project=project, stack=stack_name, preview=False, monitor=monitor)
        settings.set_root_resource(None)  # type: ignore[arg-type]  # see INTERNALS: run_in_stack makes the root
        set_all_config(config, secret_keys)
        _install_exception_handler()
        _sync_await(stack.run_in_stack(lambda: _run_as_main(program)))
    except Exception as error:
        _unreported_errors.append(error)
        raise
    finally:
        resource._get_stack_trace = stack_trace
        set_all_config({}, [])


# The errors of the last failed runs. A failed run leaves futures holding its error that nothing
# awaits (the outputs of the resources whose registration it stopped); asyncio reports each one
# ("Future exception was never retrieved") whenever the garbage collector finds it, in the middle
# of whatever runs next. The error itself is raised to the caller, so those reports are noise.
_unreported_errors: collections.deque = collections.deque(maxlen=32)


def _run_as_main(program: Path) -> None:
    # run_in_stack takes a function returning None or an awaitable; run_path returns the module's globals.
    runpy.run_path(str(program), run_name="__main__")


def _quiet_about_failed_runs(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if not any(context.get("exception") is error for error in _unreported_errors):
        loop.default_exception_handler(context)


def _install_exception_handler() -> None:
    asyncio.get_event_loop_policy().get_event_loop().set_exception_handler(_quiet_about_failed_runs)
