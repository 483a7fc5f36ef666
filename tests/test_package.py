"""The package others depend on: a version with a changelog entry, and the documented public API."""

from __future__ import annotations

import re
import tomllib

from vllm_serving.stack_file import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
CHANGELOG = (PROJECT_ROOT / "CHANGELOG.md").read_text()
PUBLIC_API = (PROJECT_ROOT / "docs" / "public-api.md").read_text()


def test_the_version_is_semantic_and_has_a_changelog_entry():
    version = PYPROJECT["project"]["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert f"\n## [{version}]\n" in CHANGELOG, f"CHANGELOG.md has no entry `## [{version}]`"
    assert "\n## [Unreleased]\n" in CHANGELOG


def test_the_documented_public_names_are_the_ones_the_changelog_names():
    names = {"components.VllmServing", "components.config.ServingConfig", "components.config.load_config"}
    for name in names:
        assert f"`{name}" in PUBLIC_API and f"`{name}`" in CHANGELOG, name
