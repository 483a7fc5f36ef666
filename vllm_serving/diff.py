"""`vllm-serving diff`: what a change to a stack would do to the cluster, reviewed offline.

Both sides are rendered under Pulumi's mocks, so no backend, cluster or secret is needed:
the base revision by its own code (extracted with `git archive` and run in a subprocess,
so a change to the program itself shows up), the working tree by the code running here.
Resources are paired by URN, which names the Pulumi resource and not the Kubernetes
object: a download Job renamed from a hash of its inputs stays one resource whose
`metadata.name` changes, which is exactly what pulumi-kubernetes turns into a replacement.

Which changes replace a resource follows pulumi-kubernetes' own table of replacement
fields (provider/pkg/provider/diff.go, `forceNewProperties`), and whether the old object
goes first follows its Diff: a replacement that keeps the name and namespace must delete
the old object before creating the new one.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import traceback
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from components.config import ConfigError

from .stack_file import PROJECT_ROOT, STACKS_DIR, StackFileError, stack_name, stack_path

EXIT_SAME, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2

REPLACE, RESTART, REFUSED, NOTE = "replace", "restart", "refused", "note"


class DiffError(Exception):
    """Anything that stops a comparison; the message is what the user reads."""


# --- the two renderings ---------------------------------------------------------------------


@dataclass
class Side:
    """One rendering as `render --format json` prints it, keyed by URN in registration order."""

    label: str
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    # Why a side is empty, when it is (no stack file at that revision).
    absent: str = ""


def _side(label: str, rendering: dict[str, Any]) -> Side:
    return Side(label, {r["urn"]: r for r in rendering.get("resources", [])}, rendering.get("outputs") or {})


def _git(cwd: Path, *args: str, binary: bool = False) -> Any:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=not binary)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace") if binary else result.stderr
        raise DiffError(f"git {' '.join(args)}: {stderr.strip() or f'exit status {result.returncode}'}")
    return result.stdout


def _resolve_stack(stack: str) -> Path:
    """The stack file the argument names, whether or not it exists in the working tree."""
    candidate = Path(stack)
    if candidate.suffix in (".yaml", ".yml") or os.sep in stack or candidate.exists():
        return candidate.resolve()
    return (STACKS_DIR / f"Pulumi.{stack}.yaml").resolve()


def _project_dir(stack_file: Path, toplevel: Path) -> Path:
    """The Pulumi project the stack belongs to: the nearest directory above it with a Pulumi.yaml."""
    for directory in stack_file.parents:
        if directory != toplevel and toplevel not in directory.parents:
            break
        if (directory / "Pulumi.yaml").is_file():
            return directory
    # A stack file kept outside the project's tree: the project is this one, if the repository holds it.
    if PROJECT_ROOT == toplevel or toplevel in PROJECT_ROOT.parents:
        return PROJECT_ROOT
    return toplevel


def _extract(toplevel: Path, commit: str, into: Path) -> None:
    archive = _git(toplevel, "archive", "--format=tar", commit, binary=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        # The "data" filter refuses absolute paths and links out of the tree (Python >= 3.11.4).
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - older interpreters
            tar.extractall(into)


def _base_error(ref: str, stderr: str) -> DiffError:
    message = stderr.strip()
    message = message[len("error: "):] if message.startswith("error: ") else message
    if "--format" in message and ("unrecognized arguments" in message or "invalid choice" in message):
        message += (
            f"\n(the code at {ref} predates `vllm-serving render --format json`, which this diff reads; "
            "compare against a later revision)"
        )
    return DiffError(f"at {ref}: {message}")


def render_sides(stack: str, base: str) -> tuple[Side, Side]:
    """Render the stack at `base` (by that revision's code) and in the working tree (by this code)."""
    stack_file = _resolve_stack(stack)
    directory = stack_file.parent if stack_file.parent.is_dir() else PROJECT_ROOT
    try:
        toplevel = Path(_git(directory, "rev-parse", "--show-toplevel").strip()).resolve()
    except DiffError as error:
        raise DiffError(f"{directory} is not in a git repository: {error}") from None
    try:
        commit = _git(toplevel, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{base}^{{commit}}").strip()
    except DiffError:
        raise DiffError(f"unknown git revision {base!r}") from None
    base_label = f"{base} ({commit[:7]})"

    try:
        relative = stack_file.relative_to(toplevel)
    except ValueError:
        relative = None
    at_base = relative is not None and subprocess.run(
        ["git", "cat-file", "-e", f"{commit}:{relative.as_posix()}"], cwd=toplevel, capture_output=True
    ).returncode == 0
    in_tree = stack_file.is_file()
    if not at_base and not in_tree:
        stack_path(stack)  # raises the usual "no stack" message, listing the stacks there are
        raise DiffError(f"no stack config file at {stack_file}")

    with tempfile.TemporaryDirectory(prefix="vllm-serving-diff-") as temp:
        process = None
        if at_base:
            checkout = Path(temp)
            _extract(toplevel, commit, checkout)
            project = checkout / _project_dir(stack_file, toplevel).relative_to(toplevel)
            # Only the base's tree on the path: this checkout's modules must not stand in for its own.
            env = {**os.environ, "PYTHONPATH": str(project)}
            # Started before the working tree renders, so that the two run side by side.
            process = subprocess.Popen(
                [sys.executable, "-m", "vllm_serving", "render", str(checkout / relative), "--format", "json"],
                cwd=project,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        try:
            if in_tree:
                from .render import render, rendering_as_json

                try:
                    work = _side("working tree", rendering_as_json(render(stack_path(str(stack_file)))))
                except (ConfigError, StackFileError) as error:
                    raise DiffError(f"in the working tree: {error}") from None
            else:
                work = Side("working tree", {}, {}, absent=f"{stack_file.name} does not exist in the working tree")
            if process is not None:
                stdout, stderr = process.communicate()
                if process.returncode != 0:
                    raise _base_error(base, stderr)
                try:
                    old = _side(base_label, json.loads(stdout))
                except json.JSONDecodeError:
                    raise DiffError(f"at {base}: `render --format json` printed no JSON:\n{stdout[:500]}") from None
            else:
                old = Side(base_label, {}, {}, absent=f"{stack_file.name} does not exist at {base}")
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()
    return old, work


# --- comparing values -----------------------------------------------------------------------

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


@dataclass(frozen=True)
class Item:
    """A list element found by its `name` (containers, env, volumes, ports), as kubectl merges them."""

    name: str


ORDER = Item("(order)")
FieldPath = tuple  # segments: str keys, int indexes, Item names


@dataclass(frozen=True)
class Effect:
    kind: str
    why: str


@dataclass
class FieldChange:
    path: FieldPath
    old: Any
    new: Any
    effects: list[Effect] = field(default_factory=list)


def _names(items: list[Any]) -> Optional[list[str]]:
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if all(isinstance(name, str) for name in names) and len(set(names)) == len(names):
        return names
    return None


def _same(old: Any, new: Any) -> bool:
    if old is MISSING or new is MISSING:
        return old is new
    # Not ==: True == 1 in Python, and in a manifest a boolean turned number is a change.
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def diff_values(old: Any, new: Any, path: FieldPath = ()) -> Iterator[FieldChange]:
    """Every leaf that differs, with added or removed subtrees spelt out leaf by leaf."""
    if _same(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            yield from diff_values(old.get(key, MISSING), new.get(key, MISSING), (*path, key))
        return
    if isinstance(old, list) and isinstance(new, list):
        old_names, new_names = _names(old), _names(new)
        if old_names is not None and new_names is not None:
            by_old, by_new = dict(zip(old_names, old)), dict(zip(new_names, new))
            for name in [*new_names, *(n for n in old_names if n not in by_new)]:
                yield from diff_values(by_old.get(name, MISSING), by_new.get(name, MISSING), (*path, Item(name)))
            kept_old = [n for n in old_names if n in by_new]
            kept_new = [n for n in new_names if n in by_old]
            if kept_old != kept_new:
                # Order matters to Kubernetes (env entries may refer to earlier ones) and to Pulumi.
                yield FieldChange((*path, ORDER), kept_old, kept_new)
            return
        for index in range(max(len(old), len(new))):
            yield from diff_values(
                old[index] if index < len(old) else MISSING, new[index] if index < len(new) else MISSING, (*path, index)
            )
        return
    added, removed = old is MISSING, new is MISSING
    present = new if added else old
    if (added or removed) and isinstance(present, (dict, list)) and present:
        names = _names(present) if isinstance(present, list) else None
        for key, value in present.items() if isinstance(present, dict) else enumerate(present):
            segment = Item(names[key]) if names is not None else key
            yield from diff_values(MISSING if added else value, value if added else MISSING, (*path, segment))
        return
    yield FieldChange(path, old, new)


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def render_path(path: FieldPath) -> str:
    text = ""
    for segment in path:
        if segment is ORDER:
            text += " (order)"
        elif isinstance(segment, Item):
            text += f"[{segment.name}]"
        elif isinstance(segment, int):
            text += f"[{segment}]"
        elif _PLAIN_KEY.match(segment):
            text += f".{segment}" if text else segment
        else:
            text += f"[{json.dumps(segment)}]"
    return text


# --- what pulumi-kubernetes does with a change ------------------------------------------------

# (field prefix, effect, why) per kind; the first match wins. Replacement fields are
# pulumi-kubernetes' forceNewProperties for each kind; "restart" marks the pod template of
# a workload, whose every change rolls out new pods.
_ANY_KIND = [
    (("metadata", "name"), REPLACE, "a new name is a new object"),
    (("metadata", "namespace"), REPLACE, "a new namespace is a new object"),
]
_SELECTOR = (("spec", "selector"), REPLACE, "a workload's selector is immutable")
_TEMPLATE_RESTART = (("spec", "template"), RESTART, "the pod template changes, so new pods roll out")
_RULES: dict[str, list[tuple[tuple[str, ...], str, str]]] = {
    "Job": [
        (("spec", "template"), REPLACE, "a Job's pod template is immutable"),
        (("spec", "selector"), REPLACE, "a Job's selector is immutable"),
        (("spec", "completions"), REPLACE, "pulumi-kubernetes replaces a Job whose completions change"),
        (("spec", "parallelism"), REPLACE, "pulumi-kubernetes replaces a Job whose parallelism changes"),
    ],
    "PersistentVolumeClaim": [
        (("spec", "accessModes"), REPLACE, "a claim's access modes are immutable"),
        (("spec", "storageClassName"), REPLACE, "a claim's storage class is immutable"),
        (("spec", "volumeName"), REPLACE, "a claim's volume is immutable"),
        (("spec", "selector"), REPLACE, "a claim's selector is immutable"),
        (("spec", "resources"), "", ""),
        # Immutable in Kubernetes but not in pulumi-kubernetes' table: it patches, and the API refuses.
        (("spec",), REFUSED, "a bound claim's spec is immutable except resources.requests"),
    ],
    "Deployment": [_SELECTOR, _TEMPLATE_RESTART],
    "DaemonSet": [_SELECTOR, _TEMPLATE_RESTART],
    "StatefulSet": [
        _SELECTOR,
        (("spec", "serviceName"), REPLACE, "a StatefulSet's serviceName is immutable"),
        (("spec", "volumeClaimTemplates"), REPLACE, "a StatefulSet's volumeClaimTemplates are immutable"),
        (("spec", "podManagementPolicy"), REPLACE, "a StatefulSet's podManagementPolicy is immutable"),
        (("spec", "revisionHistoryLimit"), REPLACE, "pulumi-kubernetes replaces a StatefulSet on this field"),
        _TEMPLATE_RESTART,
    ],
    "Service": [(("spec", "clusterIP"), REPLACE, "a Service's clusterIP is immutable")],
    "Secret": [(("type",), REPLACE, "a Secret's type is immutable")],
}


def _immutable_data_rule(kind: str, old: dict, new: dict) -> list[tuple[tuple[str, ...], str, str]]:
    keys = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "stringData")}.get(kind)
    if not keys:
        return []
    if old.get("immutable") is True or new.get("immutable") is True:
        why = f"the {kind} is immutable: true"
    else:
        flag = "enableConfigMapMutable" if kind == "ConfigMap" else "enableSecretMutable"
        why = f"pulumi-kubernetes replaces a {kind} whose data changes (unless the provider sets {flag})"
    return [((key,), REPLACE, why) for key in keys]


_QUANTITY = re.compile(r"^([+]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$")
_FACTORS = {
    None: 1, "m": Fraction(1, 1000), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def _quantity(value: Any) -> Optional[Fraction]:
    match = _QUANTITY.match(str(value)) if isinstance(value, (str, int)) else None
    return Fraction(match.group(1)) * _FACTORS[match.group(2)] if match else None


def _storage_effect(change: FieldChange) -> Optional[Effect]:
    old, new = _quantity(change.old), _quantity(change.new)
    if old is None or new is None:
        return None
    if new < old:
        return Effect(REFUSED, "a claim can only grow: Kubernetes refuses a smaller storage request")
    return Effect(NOTE, "grows in place only if the claim's StorageClass sets allowVolumeExpansion")


def _matches_option(path: FieldPath, pattern: str) -> bool:
    text = render_path(path)
    return pattern == "*" or text == pattern or text.startswith(pattern + ".") or text.startswith(pattern + "[")


def classify(kind: str, old: dict, new: dict, change: FieldChange, replace_on_changes: Sequence[str] = ()) -> None:
    """Attach to a manifest field change what pulumi-kubernetes and Kubernetes will do with it."""
    rules = [*_ANY_KIND, *_immutable_data_rule(kind, old, new), *_RULES.get(kind, [])]
    for prefix, effect, why in rules:
        if change.path[: len(prefix)] == prefix:
            if effect:
                change.effects.append(Effect(effect, why))
            break
    if kind == "PersistentVolumeClaim" and change.path == ("spec", "resources", "requests", "storage"):
        effect = _storage_effect(change)
        if effect:
            change.effects.append(effect)
    if any(_matches_option(change.path, pattern) for pattern in replace_on_changes):
        if not any(e.kind == REPLACE for e in change.effects):
            change.effects.append(Effect(REPLACE, "the resource's replaceOnChanges option lists this field"))


# --- comparing renderings ---------------------------------------------------------------------


@dataclass
class ResourceChange:
    urn: str
    action: str  # create, delete, update, replace
    old: Optional[dict[str, Any]]
    new: Optional[dict[str, Any]]
    fields: list[FieldChange] = field(default_factory=list)
    options: list[FieldChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def has(self, kind: str) -> bool:
        return any(effect.kind == kind for change in self.fields for effect in change.effects)

    @property
    def restarts(self) -> bool:
        return self.has(RESTART) or (self.action == REPLACE and self.kind in ("Deployment", "StatefulSet", "DaemonSet"))

    @property
    def kind(self) -> str:
        return ((self.new or self.old or {}).get("manifest") or {}).get("kind", "")

    @property
    def delete_first(self) -> bool:
        if self.action != REPLACE:
            return False
        if (self.new or {}).get("options", {}).get("deleteBeforeReplace"):
            return True
        old_meta = (self.old.get("manifest") or {}).get("metadata", {})
        new_meta = (self.new.get("manifest") or {}).get("metadata", {})
        # pulumi-kubernetes: an explicitly named object that keeps its name and namespace cannot
        # exist twice, so the old one is deleted before the new one is created.
        return bool(new_meta.get("name")) and all(old_meta.get(k) == new_meta.get(k) for k in ("name", "namespace"))


@dataclass
class Report:
    stack: str
    base: Side
    work: Side
    resources: list[ResourceChange]
    outputs: list[FieldChange]

    @property
    def changed(self) -> bool:
        return bool(self.resources or self.outputs)

    def count(self, action: str) -> int:
        return sum(1 for r in self.resources if r.action == action)

    def summary(self) -> str:
        if not self.changed:
            return "no changes"
        replaced = self.count(REPLACE)
        changed = self.count("update") + replaced
        parts = []
        if self.count("create"):
            parts.append(f"{self.count('create')} to add")
        if changed:
            parts.append(f"{changed} to change" + (f" ({replaced} replace)" if replaced else ""))
        if self.count("delete"):
            parts.append(f"{self.count('delete')} to remove")
        text = ", ".join(parts) or "resources unchanged"
        notes = []
        if any(r.restarts for r in self.resources if r.action in ("update", REPLACE)):
            notes.append("server pods restart")
        if any(r.has(REFUSED) for r in self.resources):
            notes.append("Kubernetes will refuse a change")
        if self.outputs:
            notes.append("outputs change")
        return "; ".join([text, *notes])


def _short_urn(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def compare(stack: str, base: Side, work: Side) -> Report:
    changes = []
    order = [*work.resources, *(urn for urn in base.resources if urn not in work.resources)]
    for urn in order:
        old, new = base.resources.get(urn), work.resources.get(urn)
        if old is None:
            changes.append(ResourceChange(urn, "create", None, new))
            continue
        if new is None:
            change = ResourceChange(urn, "delete", old, None)
            if old.get("options", {}).get("protect"):
                change.warnings.append("protected: `pulumi up` refuses to delete it until `protect` is lifted")
            changes.append(change)
            continue
        old_manifest, new_manifest = old.get("manifest") or {}, new.get("manifest") or {}
        kind = new_manifest.get("kind") or old_manifest.get("kind", "")
        fields = list(diff_values(old_manifest, new_manifest))
        for change in fields:
            classify(kind, old_manifest, new_manifest, change, new.get("options", {}).get("replaceOnChanges", []))
        options = list(diff_values(old.get("options", {}), new.get("options", {}), ("options",)))
        old_deps = sorted(_short_urn(u) for u in old.get("dependencies", []))
        new_deps = sorted(_short_urn(u) for u in new.get("dependencies", []))
        options += list(diff_values(old_deps, new_deps, ("dependsOn",))) if old_deps != new_deps else []
        if not fields and not options:
            continue
        action = REPLACE if any(e.kind == REPLACE for c in fields for e in c.effects) else "update"
        change = ResourceChange(urn, action, old, new, fields, options)
        # The engine lets one update both unprotect and replace; it refuses only if both say protect.
        if action == REPLACE and old.get("options", {}).get("protect") and new.get("options", {}).get("protect"):
            change.warnings.append("protected: `pulumi up` refuses to replace it until `protect` is lifted")
        changes.append(change)
    outputs = list(diff_values(base.outputs, work.outputs))
    return Report(stack, base, work, changes, outputs)


# --- printing ---------------------------------------------------------------------------------

_SYMBOL = {"create": "+", "delete": "-", "update": "~", REPLACE: "+-"}


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _field_lines(change: FieldChange, indent: str, replaced: bool = False) -> list[str]:
    tags = "".join(f"  [{e.kind}]" for e in change.effects if e.kind != NOTE)
    # A note on how a field updates in place is moot when the whole object is replaced.
    notes = [] if replaced else [f"{indent}    ({e.why})" for e in change.effects if e.kind == NOTE]
    path = render_path(change.path)
    old, new = change.old, change.new
    multiline = any(isinstance(v, str) and "\n" in v for v in (old, new))
    if multiline and old is not MISSING and new is not MISSING:
        lines = [f"{indent}~ {path}:{tags}"]
        for line in difflib.unified_diff(str(old).splitlines(), str(new).splitlines(), lineterm="", n=1):
            if not line.startswith(("---", "+++")):
                lines.append(f"{indent}    {line}")
        return lines + notes
    if isinstance(old, str) and isinstance(new, str) and max(len(old), len(new)) > 100:
        # One above the other, unquoted: a changed hash inside a long command is easy to spot.
        return [f"{indent}~ {path}:{tags}", f"{indent}    - {old}", f"{indent}    + {new}", *notes]
    if multiline:
        value = old if new is MISSING else new
        shown = f"{_value(value.splitlines()[0])}… ({len(value.splitlines())} lines)"
        return [f"{indent}{'-' if new is MISSING else '+'} {path}: {shown}{tags}", *notes]
    if old is MISSING:
        return [f"{indent}+ {path}: {_value(new)}{tags}", *notes]
    if new is MISSING:
        return [f"{indent}- {path}: {_value(old)}{tags}", *notes]
    return [f"{indent}~ {path}: {_value(old)} → {_value(new)}{tags}", *notes]


def _object(resource: dict[str, Any]) -> str:
    metadata = (resource.get("manifest") or {}).get("metadata", {})
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}".lstrip("/")


def _heading(change: ResourceChange) -> str:
    resource = change.new or change.old
    manifest = resource.get("manifest")
    if manifest is None:
        return f"{_SYMBOL[change.action]} {resource['type']} {resource['name']}"
    name = _object(resource)
    if change.old and change.new and _object(change.old) != _object(change.new):
        name = f"{_object(change.old)} → {_object(change.new)}"
    return f"{_SYMBOL[change.action]} {manifest.get('kind')} {name}  (pulumi: {resource['name']})"


def _consequence(change: ResourceChange) -> list[str]:
    lines = []
    kind = change.kind or "resource"
    if change.action == REPLACE:
        if change.delete_first:
            lines.append(f"replace: delete the old {kind} first, then create the new one")
            if kind == "PersistentVolumeClaim":
                lines.append("  the claim's volume, and the model on it, go with it (per its reclaim policy)")
        else:
            lines.append(f"replace: create the new {kind}, then delete the old one")
        reasons = []
        for field_change in change.fields:
            for effect in field_change.effects:
                if effect.kind == REPLACE and effect.why not in reasons:
                    reasons.append(effect.why)
        lines += [f"  because {why}" for why in reasons]
    if change.restarts and change.action == REPLACE:
        if change.delete_first:
            lines.append("restarts the server pods: the server is down until the new pods are ready")
        else:
            # Both workloads exist for a while: the new pods need GPUs beside the old ones.
            lines.append("restarts the server pods: the new pods start while the old ones still hold their GPUs")
    elif change.restarts and change.action == "update":
        strategy = (((change.new or {}).get("manifest") or {}).get("spec", {}).get("strategy") or {}).get("type")
        detail = ": every server pod stops before the new ones start" if strategy == "Recreate" else ""
        lines.append(f"restarts the server pods{detail}")
    if change.has(REFUSED):
        lines.append("Kubernetes will refuse this update: " + "; ".join(sorted({
            e.why for c in change.fields for e in c.effects if e.kind == REFUSED
        })))
    return lines + change.warnings


def render_text(report: Report, header: bool = True) -> str:
    lines = []
    if header:
        lines += [f"stack {report.stack}: {report.base.label} → {report.work.label}", report.summary()]
    for side in (report.base, report.work):
        if side.absent:
            lines.append(f"({side.absent})")
    for change in report.resources:
        lines += ["", _heading(change)]
        lines += [f"    {line}" for line in _consequence(change)]
        for field_change in [*change.fields, *change.options]:
            lines += _field_lines(field_change, "    ", replaced=change.action == REPLACE)
    if report.outputs:
        lines += ["", "Outputs:"]
        for output in report.outputs:
            lines += _field_lines(output, "    ")
    return "\n".join(lines).lstrip("\n") + "\n"


def render_markdown(report: Report) -> str:
    body = render_text(report, header=False)
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", body)), default=0))
    heading = f"#### Stack `{report.stack}`: {report.summary()}\n<sub>{report.base.label} → {report.work.label}</sub>\n"
    if not report.changed:
        return heading
    return f"{heading}\n{fence}text\n{body}{fence}\n"


# --- the command ------------------------------------------------------------------------------


def run(stack: str, base: str = "HEAD", output_format: str = "text", out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        old, new = render_sides(stack, base)
    except (DiffError, StackFileError) as error:
        print(f"error: {error}", file=err)
        return EXIT_ERROR
    except Exception:
        # An uncaught exception would exit with 1, which here means "changed".
        traceback.print_exc(file=err)
        return EXIT_ERROR
    report = compare(stack_name(_resolve_stack(stack)), old, new)
    out.write(render_markdown(report) if output_format == "markdown" else render_text(report))
    return EXIT_CHANGED if report.changed else EXIT_SAME


def _diff_command(args: argparse.Namespace) -> int:
    return run(args.stack, args.base, args.format)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "diff",
        help="show what a stack change would do (add, change, replace, restart), against a git revision",
        description=(
            "Render the stack at a git revision (by that revision's own code) and in the working tree, and "
            "print per resource what is added, removed or changed, field by field, marking changes that "
            "replace a resource or restart the server pods. Exit status: 0 no change, 1 changes, 2 error."
        ),
    )
    parser.add_argument("stack", help="a stack name under stacks/ (e.g. codellama-7b) or a stack config file")
    parser.add_argument("--base", default="HEAD", help="the git revision to compare against (default: HEAD)")
    parser.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text: plain text; markdown: a summary heading and the text in a fenced block, for a PR comment",
    )
    parser.set_defaults(handler=_diff_command)
