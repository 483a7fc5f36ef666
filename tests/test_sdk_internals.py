"""The Pulumi SDK internals the render harness relies on are still there, and still work.

Each failure names the SDK symbol, so that an SDK upgrade that breaks the harness says
where to look (vllm_serving/sdk_internals.py) instead of failing deep inside a rendering.
"""

from __future__ import annotations

import importlib
import inspect
import textwrap

import pytest

from tests.examples import EXAMPLE_STACK_FILES
from vllm_serving import sdk_internals
from vllm_serving.render import render, render_config


@pytest.mark.parametrize("internal", sdk_internals.INTERNALS, ids=lambda i: f"{i.module}.{i.name}")
def test_each_sdk_internal_exists_with_the_parameters_the_harness_passes(internal):
    symbol = f"{internal.module}.{internal.name}"
    try:
        module = importlib.import_module(internal.module)
    except ImportError as error:
        pytest.fail(f"Pulumi SDK upgrade: module {internal.module} is gone ({error}); needed because it {internal.why}")
    target = module
    for part in internal.name.split("."):  # a class's attribute is named Class.attribute
        if not hasattr(target, part):
            pytest.fail(f"Pulumi SDK upgrade: {symbol} is gone; the render harness needs it because it {internal.why}")
        target = getattr(target, part)
    if not internal.parameters:
        return
    signature = inspect.signature(target)
    missing = [name for name in internal.parameters if name not in signature.parameters]
    assert not missing, f"Pulumi SDK upgrade: {symbol}{signature} no longer takes {missing}; it {internal.why}"


def test_the_settings_the_harness_clears_are_still_clearable():
    from pulumi.runtime import settings

    for attribute in ("rpc_manager", "outputs"):
        value = getattr(settings.SETTINGS, attribute, None)
        assert callable(getattr(value, "clear", None)), (
            f"Pulumi SDK upgrade: pulumi.runtime.settings.SETTINGS.{attribute} has no clear(); "
            "the render harness clears it between renderings"
        )


def test_the_mock_monitor_still_answers_the_requests_the_recorder_overrides():
    for method in ("RegisterResource", "RegisterResourceOutputs"):
        assert callable(getattr(sdk_internals.MockMonitor, method, None)), (
            f"Pulumi SDK upgrade: pulumi.runtime.mocks.MockMonitor.{method} is gone; "
            "the recording monitor overrides it to see every registration"
        )


PROGRAM = textwrap.dedent(
    """
    import pulumi

    config = pulumi.Config()
    parent = pulumi.ComponentResource("test:index:Group", "group")
    first = pulumi.CustomResource(
        "test:index:Thing", "first", {"size": config.require("size")},
        opts=pulumi.ResourceOptions(parent=parent, protect=True, delete_before_replace=True),
    )
    second = pulumi.CustomResource(
        "test:index:Thing", "second", {"of": first.id},
        opts=pulumi.ResourceOptions(depends_on=[first], custom_timeouts=pulumi.CustomTimeouts(create="5m")),
    )
    pulumi.export("size", config.require("size"))
    pulumi.export("second", second.id)
    """
)


def test_a_tiny_program_renders_through_the_internals_twice_in_one_process(tmp_path):
    program = tmp_path / "__main__.py"
    program.write_text(PROGRAM)

    for size in ("1Gi", "2Gi"):
        # Twice: the second run proves the cleared settings leave nothing of the first behind.
        rendering = render_config(
            {"vllm-serving:size": size}, [], name="sdk-check", program=program, existing_secrets={}
        )

        by_name = {resource.name: resource for resource in rendering.resources}
        assert sorted(by_name) == ["first", "group", "second"], "registrations were not recorded"
        first, second = by_name["first"], by_name["second"]
        assert first.inputs == {"size": size}, "rpc.deserialize_properties changed"
        assert first.parent == by_name["group"].urn
        assert (first.options["protect"], first.options["deleteBeforeReplace"]) == (True, True)
        assert second.inputs == {"of": "first-id"}
        assert second.dependencies == [first.urn]
        assert second.options["customTimeouts"] == {"create": "5m"}
        assert rendering.outputs == {"size": size, "second": "second-id"}, "the root stack's exports were lost"


def test_a_render_skips_the_stack_walk_and_puts_it_back(monkeypatch):
    from pulumi.runtime import resource

    walks = []

    def counting_walk():
        walks.append(1)
        return original()

    original = resource._get_stack_trace
    monkeypatch.setattr(resource, "_get_stack_trace", counting_walk)
    model = '{"deployName": "m", "source": "huggingface", "huggingface": {"id": "o/m"}}'
    rendering = render_config({"vllm-serving:model": model}, [])

    assert rendering.one("Deployment")
    assert walks == []  # not one walk for the dozen registrations
    assert resource._get_stack_trace is counting_walk


@pytest.mark.parametrize("stack", EXAMPLE_STACK_FILES, ids=lambda path: path.name)
def test_the_echoed_registration_answers_what_the_mock_monitor_would(stack, monkeypatch):
    """echo_registration skips the mock's serializing of a state that is the inputs again: the
    program must see the same URN, id and outputs as from MockMonitor.RegisterResource itself."""
    echo = sdk_internals.echo_registration
    compared = []

    def both(monitor, request):
        inputs, response = echo(monitor, request)
        own = sdk_internals.MockMonitor.RegisterResource(monitor, request)
        assert (response.urn, response.id) == (own.urn, own.id)
        assert sdk_internals.deserialize_properties(response.object) == sdk_internals.deserialize_properties(own.object)
        assert inputs == sdk_internals.deserialize_properties(request.object)
        compared.append(request.name)
        return inputs, response

    monkeypatch.setattr(sdk_internals, "echo_registration", both)
    render(stack)
    assert len(compared) >= 5  # every registration but the stack's own and the Secret reads
