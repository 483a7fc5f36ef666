"""Two stacks of one namespace never generate the same name (components/names.py).

Every name a stack renders, and every name a controller makes from them, is `deployName` followed
by a suffix of its kind. Stacks `D` and `D-u` collide exactly when one suffix of a kind is `-u`
followed by another suffix of the same kind. The suffixes here are read from rendered stacks (every
example, with every feature they have, plus downloaded LoRA adapters), so a new resource or a
renamed one is checked without editing this file; each collision they could spell must be a
deployName that config refuses.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from components.config import ConfigError, parse_config
from components.config.features import LoraConfig
from components.config.sources import MAX_DEPLOY_NAME
from components.names import RESERVED_SUFFIXES, download_names
from tests.conftest import HF_MODEL, engine_config, merged, render_values, stack_file_values
from tests.examples import EXAMPLE_STACK_FILES
from vllm_serving.render import Rendering, render_config

DEPLOY = "x"
HASH = re.compile(r"[0-9a-f]{8}")
ADAPTERS = {"lora": {"adapters": [
    {"name": "sql", "source": "huggingface", "huggingface": {"id": "org/sql-lora"}},
    {"name": "chat", "source": "huggingface", "huggingface": {"id": "org/chat-lora"}},
]}}


def renamed(values: dict[str, Any], deploy: str) -> dict[str, Any]:
    return merged(values, {"model": {"deployName": deploy}})


def generated_names(rendering: Rendering) -> list[tuple[str, str]]:
    """(kind, name) of every object the stack creates, and of those controllers create from them
    under fixed names: the LeaderWorkerSet controller's headless Service and StatefulSets
    (kubernetes-sigs/lws: `reconcileHeadlessServices`, the leader StatefulSet named after the
    LeaderWorkerSet, a group's workers `<name>-<index>`)."""
    names = []
    for manifest in rendering.manifests:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        names.append((kind, name))
        if kind == "LeaderWorkerSet":
            names += [("Service", name), ("StatefulSet", name), ("StatefulSet", f"{name}-0")]
    return names


def stack_renderings(deploy: str) -> list[Rendering]:
    renderings = [render_values(renamed(stack_file_values(path), deploy)) for path in EXAMPLE_STACK_FILES]
    chart = stack_file_values(next(path for path in EXAMPLE_STACK_FILES if path.name == "Pulumi.codellama-7b.yaml"))
    renderings.append(render_values(renamed(merged(chart, ADAPTERS), deploy)))
    # What no example has: the program's own key and env Secrets, the image pre-pull, a PodMonitor.
    extras = renamed(merged(chart, {
        "apiKey": "sk-names", "env": [{"name": "HF_HUB_OFFLINE", "value": "1"}],
        "server": {"prePullImage": True}, "metrics": {"podMonitor": {"enabled": True}},
    }), deploy)
    renderings.append(render_config(engine_config(extras), ["vllm-serving:apiKey", "vllm-serving:env"]))
    return renderings


@pytest.fixture(scope="module")
def suffixes() -> dict[str, set[tuple[str, ...]]]:
    """Each kind's suffixes, as tokens after deployName, a hash token as `<hash>`."""
    by_kind: dict[str, set[tuple[str, ...]]] = {}
    for rendering in stack_renderings(DEPLOY):
        for kind, name in generated_names(rendering):
            assert name == DEPLOY or name.startswith(DEPLOY + "-"), f"{kind} {name} does not start with deployName"
            tokens = tuple("<hash>" if HASH.fullmatch(t) else t for t in name[len(DEPLOY):].split("-")[1:])
            by_kind.setdefault(kind, set()).add(tokens)
    return by_kind


def test_no_stack_renders_two_objects_of_a_kind_under_one_name():
    for rendering in stack_renderings(DEPLOY):
        names = generated_names(rendering)
        duplicates = {entry for entry in names if names.count(entry) > 1}
        assert not duplicates, duplicates


def test_the_suffixes_cover_the_roles_that_share_a_kind(suffixes):
    """The check below is only as good as what was rendered: the roles that meet in a kind are there."""
    assert {(), ("epp",)} <= suffixes["Deployment"]
    assert {(), ("group",)} <= suffixes["Service"]  # ours, and the LeaderWorkerSet's headless one
    assert {("scripts", "<hash>"), ("scripts", "a1", "<hash>"), ("surface", "<hash>"), ("epp",)} <= suffixes["ConfigMap"]
    assert {("download", "<hash>"), ("download", "a0", "<hash>")} <= suffixes["Job"]
    assert {("api", "key"), ("env",)} <= suffixes["Secret"] and ("pre", "pull") in suffixes["DaemonSet"]


def _ends_with(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    if len(longer) <= len(shorter):
        return False
    tail = longer[len(longer) - len(shorter):]
    return all(a == b or ("<hash>" in (a, b) and all(HASH.fullmatch(t) or t == "<hash>" for t in (a, b)))
               for a, b in zip(tail, shorter, strict=True))


def test_every_name_two_stacks_could_share_needs_a_refused_deploy_name(suffixes):
    """Stack `x` renders `x` + s1; a stack named `x-u` renders `x-u` + s2: the same name when
    s1 = `-u` + s2. For every such pair, `x-u` must be refused."""
    spelled = set()
    for kind, kind_suffixes in suffixes.items():
        for longer, shorter in itertools.permutations(kind_suffixes, 2):
            if _ends_with(longer, shorter):
                between = [("0123abcd" if t == "<hash>" else t) for t in longer[: len(longer) - len(shorter)]]
                spelled.add((kind, DEPLOY + "-" + "-".join(between)))
    assert spelled, "no suffix extends another: the check found nothing to check"
    for kind, deploy in sorted(spelled):
        with pytest.raises(ConfigError) as refused:
            parse_config({"model": {"deployName": deploy}})
        assert "model.deployName" in dict(refused.value.problems), (kind, deploy)


@pytest.mark.parametrize("suffix", sorted(RESERVED_SUFFIXES))
def test_a_reserved_suffix_is_refused_naming_the_stack_it_would_collide_with(suffix):
    with pytest.raises(ConfigError) as refused:
        parse_config({"model": {"deployName": f"llama{suffix}"}})
    message = dict(refused.value.problems)["model.deployName"]
    assert f"'llama{suffix}' ends in '{suffix}'" in message and "a stack named 'llama'" in message
    assert "does not end in -epp or -group" in message


def test_a_name_merely_containing_a_reserved_word_is_accepted():
    for deploy in ("epp-model", "grouped", "llama-group-chat", "x-eppa"):
        parse_config({"model": {**HF_MODEL, "deployName": deploy}})


def test_an_adapter_stack_and_a_stack_named_like_its_old_prefix_share_no_name():
    """The collision found: `x` with an adapter rendered `x-a0-scripts-<hash>`, as `x-a0` did."""
    chart = stack_file_values(next(path for path in EXAMPLE_STACK_FILES if path.name == "Pulumi.codellama-7b.yaml"))
    with_adapter = set(generated_names(render_values(renamed(merged(chart, ADAPTERS), "x"))))
    named_like_it = set(generated_names(render_values(renamed(chart, "x-a0"))))
    assert not with_adapter & named_like_it


def test_the_leader_worker_set_leaves_the_model_service_its_name():
    path = next(path for path in EXAMPLE_STACK_FILES if "multinode" in path.name)
    rendering = render_values(stack_file_values(path))
    deploy = stack_file_values(path)["model"]["deployName"]
    lws = next(m for m in rendering.manifests if m["kind"] == "LeaderWorkerSet")
    service = next(m for m in rendering.manifests if m["kind"] == "Service")
    assert service["metadata"]["name"] == deploy
    assert lws["metadata"]["name"] == f"{deploy}-group" != service["metadata"]["name"]


def test_every_generated_name_fits_in_63_characters_at_the_longest_deploy_name():
    """A Job's name becomes a label value of its pods, a Service's a DNS label: 63 at most."""
    longest = "x" * MAX_DEPLOY_NAME
    for rendering in stack_renderings(longest):
        for kind, name in generated_names(rendering):
            assert len(name) <= 63, (kind, name)
    last_adapter = LoraConfig.model_fields["adapters"].metadata[0].max_length - 1
    assert all(len(name) <= 63 for name in download_names(longest, last_adapter, "0" * 8, "0" * 8))
