"""The stack file an import writes: what was left out and why, as comments, then the config."""

from __future__ import annotations

import yaml
from typing_extensions import override

from components.config import CONFIG_NAMESPACE

from .translate import Translation


class _StackDumper(yaml.SafeDumper):
    """The layout of the hand-written stack files: list items indented under their key."""

    @override  # indentless is always False here: that is the layout
    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # The chart writes empty strings as "", and so do the stack files.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if value == "" else None)



_StackDumper.add_representer(str, _represent_str)


def _comment(text: str) -> str:
    return "\n".join(f"# {line}".rstrip() for line in text.splitlines())


def stack_document(translation: Translation, source: str) -> str:
    header = [
        f"Imported by `vllm-serving import-values` from the T9k vLLM chart values file {source}.",
        "Every key keeps the chart's name and meaning; see docs/day2-verify-and-migrate.md.",
    ]
    if translation.warnings:
        header.append("Before deploying:")
        header += [f"  {warning}" for warning in translation.warnings]
    if translation.left_out:
        header.append("Left out (placeholders):")
        header += [f"  {path}: {reason}" for path, reason in translation.left_out]
    if translation.dropped:
        header.append("Not carried over:")
        header += [f"  {path}: {reason}" for path, reason in translation.dropped]
    if translation.notes:
        header.append("Notes:")
        header += [f"  {note}" for note in translation.notes]
    config = {f"{CONFIG_NAMESPACE}:{key}": value for key, value in translation.config.items()}
    body = yaml.dump({"config": config}, Dumper=_StackDumper, sort_keys=False, default_flow_style=False, width=120)
    return _comment("\n".join(header)) + "\n" + body
