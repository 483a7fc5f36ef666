"""Every stack file of the hostile corpus is refused cleanly by the installed command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.cli_contract import contract_violations, render_in_a_process
from tests.hostile.corpus import CASES, Case

# The classes issue 11 found, each of which the corpus must keep at least one case of.
REQUIRED_KINDS = {
    "not UTF-8", "UTF-16", "YAML tag", "deep nesting", "alias bomb", "duplicate key", "misspelt namespace",
    "huge file", "huge value", "flat structured key", "secret", "config validation",
}


def test_the_corpus_covers_every_class_once_per_name():
    assert len({case.name for case in CASES}) == len(CASES)
    assert {case.kind for case in CASES} >= REQUIRED_KINDS


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_hostile_stack_file_is_refused_cleanly(tmp_path: Path, case: Case):
    path = tmp_path / "Pulumi.hostile.yaml"
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    else:
        path.write_text(case.content, encoding="utf-8")
    outcome = render_in_a_process(path)
    assert not contract_violations(outcome, case.names, case.absent), outcome.stderr[:4096]
