"""The contract with every existing stack: the URNs, options and manifests each example renders.

A resource's URN is how Pulumi recognises it in a stack's state: a refactor that changes one
makes `pulumi up` delete the old resource and create a new one, and for the model volume
that means losing the weights. This test records, for every example stack (tests/examples.py), each
resource's URN, type, parent, dependencies, options (protect, retainOnDelete,
deleteBeforeReplace, customTimeouts, aliases) and rendered manifest, and fails on any change.

A change here must be on purpose, in a commit that says why; a changed URN needs an
`aliases` entry on the resource (see CONTRIBUTING.md). To record an intended change:

    UPDATE_SNAPSHOTS=1 ./run-tests tests/test_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from tests.examples import EXAMPLE_STACK_FILES
from vllm_serving.render import render, rendering_as_json

SNAPSHOTS = Path(__file__).parent / "snapshots"
STACK_FILES = EXAMPLE_STACK_FILES  # a user's own stack needs no snapshot


def engine_urns(resources: list[dict]) -> dict[str, str]:
    """Each resource's URN as the Pulumi engine forms it, keyed by the mocks' URN.

    The engine prefixes a resource's type with its parent's whole qualified type (every
    ancestor's type, the stack's excepted: sdk/go/common/resource/urn.go, `NewURN`, called
    with `parent.QualifiedType()`), while Pulumi's Python mocks keep only the parent's own
    type. Users see the engine's form in `pulumi stack --show-urns`, so that is the one pinned.
    """
    by_urn = {resource["urn"]: resource for resource in resources}
    found: dict[str, str] = {}

    def qualified(urn: str) -> str:
        if urn not in found:
            resource = by_urn[urn]
            parent = resource["parent"]
            prefix = qualified(parent).split("::")[2] + "$" if parent in by_urn else ""
            stack, project = urn.split("::")[0:2]
            found[urn] = f"{stack}::{project}::{prefix}{resource['type']}::{resource['name']}"
        return found[urn]

    return {urn: qualified(urn) for urn in by_urn}


def snapshot_of(stack_file: Path) -> str:
    rendering = rendering_as_json(render(stack_file))
    urns = engine_urns(rendering["resources"])
    for resource in rendering["resources"]:
        resource["engineUrn"] = urns[resource["urn"]]
    return json.dumps(rendering, indent=1, sort_keys=True) + "\n"


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda path: path.stem)
def test_rendering_matches_its_snapshot(stack_file: Path):
    recorded = SNAPSHOTS / f"{stack_file.stem}.json"
    current = snapshot_of(stack_file)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        recorded.write_text(current)
    assert recorded.is_file(), f"no snapshot for {stack_file.name}: run with UPDATE_SNAPSHOTS=1 once"
    expected = recorded.read_text()
    if current != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), current.splitlines(keepends=True),
                str(recorded), "rendered now", n=2,
            )
        )
        pytest.fail(f"{stack_file.name} renders differently from its snapshot:\n{diff[:20000]}")


def test_every_snapshot_belongs_to_a_stack():
    stacks = {path.stem for path in STACK_FILES}
    orphans = sorted(path.name for path in SNAPSHOTS.glob("*.json") if path.stem not in stacks)
    assert not orphans, f"snapshots without a stack file (remove them with the stack): {orphans}"


def test_the_retained_volume_keeps_its_urn():
    """Above all the claim: its URN in each example that creates one, spelled out here as well,
    and retainOnDelete, so that `pulumi destroy` leaves it (and the weights) in the cluster."""
    claims = 0
    for stack_file in STACK_FILES:
        rendering = rendering_as_json(render(stack_file))
        urns = engine_urns(rendering["resources"])
        for claim in rendering["resources"]:
            if claim["type"] != "kubernetes:core/v1:PersistentVolumeClaim":
                continue
            claims += 1
            assert claim["options"]["retainOnDelete"] is True
            deploy = claim["manifest"]["metadata"]["name"].removesuffix("-model")
            assert urns[claim["urn"]] == (
                f"urn:pulumi:{rendering['stack']}::vllm-serving::vllm-serving:index:VllmServing$"
                f"vllm-serving:index:ModelVolume$kubernetes:core/v1:PersistentVolumeClaim::{deploy}-volume-claim"
            ), urns[claim["urn"]]
    assert claims >= 3
