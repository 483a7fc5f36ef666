"""Render stacks at a git revision, by that revision's own code, and in the working tree.

The base revision is extracted with `git archive` once and rendered in a subprocess, so that a
change to the program itself shows up; the working tree is rendered by the code running here,
while the subprocess runs. Several stacks of one project render in ONE base subprocess
(`render A B ... --format json`, one JSON document per line), so the base's start-up is paid once.
A base revision whose `render` takes one stack only refuses the extra arguments (argparse's
"unrecognized arguments", exit status 2, before rendering anything): then each stack renders in a
subprocess of its own, as before.

A base whose code is file for file the code running here (same_code.py) renders in this process
instead: the subprocess would run the same code on the same stack file, and would first import
Pulumi again. A stack file that is also unchanged since the base renders once, for both sides. A
base that fails to render in this process is rendered by the subprocess after all, so that its
error reads exactly as it always has.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from components.config import ConfigError
from components.rename_guard import DEPLOY_NAME_OUTPUT

from ..project import current_project
from ..stack_file import StackFileError, stack_path
from . import same_code
from .model import Side, side_from_rendering


class DiffError(Exception):
    """Anything that stops a comparison; the message is what the user reads."""


def _git(cwd: Path, *args: str, binary: bool = False) -> Any:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=not binary)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace") if binary else result.stderr
        raise DiffError(f"git {' '.join(args)}: {stderr.strip() or f'exit status {result.returncode}'}")
    return result.stdout


def resolve_stack(stack: str) -> Path:
    """The stack file the argument names, whether or not it exists in the working tree."""
    candidate = Path(stack)
    if candidate.suffix in (".yaml", ".yml") or os.sep in stack or candidate.exists():
        return candidate.resolve()
    return current_project().stack_file(stack).resolve()


def _project_dir(stack_file: Path, toplevel: Path) -> Path:
    """The Pulumi project the stack belongs to: the nearest directory above it with a Pulumi.yaml."""
    for directory in stack_file.parents:
        if directory != toplevel and toplevel not in directory.parents:
            break
        if (directory / "Pulumi.yaml").is_file():
            return directory
    # A stack file kept outside the project's tree: the project is the one here, if the repository holds it.
    here = current_project().root.resolve()
    if toplevel == here or toplevel in here.parents:
        return here
    return toplevel


def _extract(toplevel: Path, commit: str, into: Path) -> None:
    archive = _git(toplevel, "archive", "--format=tar", commit, binary=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        # The "data" filter refuses absolute paths and links out of the tree (Python >= 3.11.4).
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - older interpreters
            tar.extractall(into)


def base_error(ref: str, stderr: str) -> DiffError:
    message = stderr.strip()
    message = message[len("error: "):] if message.startswith("error: ") else message
    if "--format" in message and ("unrecognized arguments" in message or "invalid choice" in message):
        message += (
            f"\n(the code at {ref} predates `vllm-serving render --format json`, which this diff reads; "
            "compare against a later revision)"
        )
    return DiffError(f"at {ref}: {message}")


@dataclass(frozen=True)
class _Revision:
    """Where the stack file stands in git: its repository, the base commit, and whether it exists there."""

    base: str
    toplevel: Path
    commit: str
    stack_file: Path
    relative: Path | None  # the stack file inside the repository; None when outside it
    at_base: bool

    @property
    def label(self) -> str:
        return f"{self.base} ({self.commit[:7]})"


@cache
def _toplevel(directory: Path) -> Path:
    try:
        return Path(_git(directory, "rev-parse", "--show-toplevel").strip()).resolve()
    except DiffError as error:
        raise DiffError(f"{directory} is not in a git repository: {error}") from None


@cache
def _commit(toplevel: Path, base: str) -> str:
    try:
        return _git(toplevel, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{base}^{{commit}}").strip()
    except DiffError:
        raise DiffError(f"unknown git revision {base!r}") from None


@cache
def _files_at(toplevel: Path, commit: str) -> frozenset[str]:
    """Every file path in the commit: one git call for all stacks, not one per stack."""
    return frozenset(_git(toplevel, "ls-tree", "-r", "-z", "--name-only", commit).split("\0"))


def _locate(stack_file: Path, base: str) -> _Revision:
    directory = stack_file.parent if stack_file.parent.is_dir() else current_project().root
    toplevel = _toplevel(directory.resolve())
    commit = _commit(toplevel, base)
    try:
        relative: Path | None = stack_file.relative_to(toplevel)
    except ValueError:
        relative = None
    at_base = relative is not None and relative.as_posix() in _files_at(toplevel, commit)
    return _Revision(base, toplevel, commit, stack_file, relative, at_base)


def _base_command(stack_files: Sequence[Path]) -> list[str]:
    return [sys.executable, "-m", "vllm_serving", "render", *map(str, stack_files), "--format", "json"]


@dataclass
class _BaseBatch:
    """The stacks of one project at the base revision, rendered by one subprocess of its code."""

    checkout: Path  # the base commit's tree
    project: Path  # the Pulumi project in it
    revisions: list[_Revision] = field(default_factory=list)
    process: subprocess.Popen | None = None

    def _checked_out(self, revision: _Revision) -> Path:
        assert revision.relative is not None  # at_base implies the file is in the repository
        return self.checkout / revision.relative

    def start(self, revisions: Sequence[_Revision] | None = None) -> subprocess.Popen:
        # Only the base's tree on the path: this checkout's modules must not stand in for its own.
        env = {**os.environ, "PYTHONPATH": str(self.project)}
        files = [self._checked_out(revision) for revision in revisions or self.revisions]
        return subprocess.Popen(
            _base_command(files), cwd=self.project, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def read(self) -> list[Side | DiffError]:
        """Each stack's base side, in order, or the error that kept it from rendering."""
        assert self.process is not None
        stdout, stderr = self.process.communicate()
        if len(self.revisions) == 1:
            return [_side_or_error(self.revisions[0], self.process.returncode, stdout, stderr)]
        if self.process.returncode != 0 and not stdout and "unrecognized arguments" in stderr:
            return self._one_process_each()
        lines = stdout.splitlines()
        results: list[Side | DiffError] = []
        for index, revision in enumerate(self.revisions):
            if index >= len(lines):
                results.append(base_error(revision.base, stderr or "the base's render stopped early"))
                continue
            try:
                document = json.loads(lines[index])
            except json.JSONDecodeError:
                results.append(DiffError(f"at {revision.base}: `render --format json` printed no JSON:\n{lines[index][:500]}"))
                continue
            if "error" in document and "resources" not in document:
                results.append(base_error(revision.base, document["error"]))
            else:
                results.append(side_from_rendering(revision.label, document))
        return results

    def _one_process_each(self) -> list[Side | DiffError]:
        """A base whose `render` takes one stack: one subprocess per stack, as that code expects."""
        results: list[Side | DiffError] = []
        for revision in self.revisions:
            process = self.start([revision])
            stdout, stderr = process.communicate()
            results.append(_side_or_error(revision, process.returncode, stdout, stderr))
        return results

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def _side_or_error(revision: _Revision, returncode: int, stdout: str, stderr: str) -> Side | DiffError:
    if returncode != 0:
        return base_error(revision.base, stderr)
    try:
        return side_from_rendering(revision.label, json.loads(stdout))
    except json.JSONDecodeError:
        return DiffError(f"at {revision.base}: `render --format json` printed no JSON:\n{stdout[:500]}")


def _render_working_tree(stack_file: Path, previous_outputs: dict[str, Any] | None = None) -> Side:
    return _render_working_tree_document(stack_file, previous_outputs)[0]


def _render_working_tree_document(
    stack_file: Path, previous_outputs: dict[str, Any] | None = None,
) -> tuple[Side, dict[str, Any] | None]:
    """The working tree's side, and the rendering it was made of (None for a missing stack file)."""
    if not stack_file.is_file():
        return Side("working tree", {}, {}, absent=f"{stack_file.name} does not exist in the working tree"), None
    # Looked up when called, so that a test can stand in for the renderer.
    from ..render import render, rendering_as_json

    try:
        document = rendering_as_json(render(stack_path(str(stack_file)), previous_outputs=previous_outputs))
        return side_from_rendering("working tree", document), document
    except (ConfigError, StackFileError) as error:
        raise DiffError(f"in the working tree: {error}") from None


def _as_printed(document: dict[str, Any]) -> dict[str, Any]:
    """A rendering as the base's subprocess hands it over: through its JSON line."""
    return json.loads(json.dumps(document))


@dataclass
class _SameCodeBase:
    """A stack whose base revision's code is the code running here: its stack file at the base."""

    revision: _Revision
    text: bytes

    def side(self, work_document: dict[str, Any] | None, temp: Path) -> Side | None:
        """The base side rendered here, or None when that failed (the subprocess then says why)."""
        if work_document is not None and self.revision.stack_file.read_bytes() == self.text:
            # The same stack file and the same code: the same rendering, once.
            return side_from_rendering(self.revision.label, _as_printed(work_document))
        from ..project import project_of
        from ..render import render, rendering_as_json

        directory = Path(tempfile.mkdtemp(dir=temp))
        base_file = directory / self.revision.stack_file.name  # the name gives the stack's name
        base_file.write_bytes(self.text)
        try:
            # The same code: the program of the stack's own project, which the copy is no longer in.
            program = project_of(self.revision.stack_file).program
            return side_from_rendering(self.revision.label, _as_printed(rendering_as_json(render(base_file, program))))
        except Exception:  # reported by the base's own code, below
            return None


def _same_code_bases(located: Sequence[_Revision | Exception]) -> dict[int, _SameCodeBase]:
    """The stacks present at a base whose project holds this very code, by position in `located`,
    with their stack files at the base (one git call per repository)."""
    running = same_code.running_tree()
    if running is None:
        return {}
    same: dict[tuple[Path, str, Path], bool] = {}
    wanted: dict[Path, list[tuple[int, _Revision]]] = {}
    for index, revision in enumerate(located):
        if not isinstance(revision, _Revision) or not revision.at_base or revision.relative is None:
            continue
        if "\n" in revision.relative.as_posix():
            continue
        project = _project_dir(revision.stack_file, revision.toplevel)
        key = (revision.toplevel, revision.commit, project)
        if key not in same:
            same[key] = same_code.base_tree(revision.toplevel, revision.commit, project) == running
        if same[key]:
            wanted.setdefault(revision.toplevel, []).append((index, revision))
    found: dict[int, _SameCodeBase] = {}
    for toplevel, revisions in wanted.items():
        specs = [f"{revision.commit}:{revision.relative.as_posix()}" for _, revision in revisions if revision.relative]
        for (index, revision), text in zip(revisions, same_code.read_blobs(toplevel, specs), strict=True):
            if text is not None:
                found[index] = _SameCodeBase(revision, text)
    return found


def _located(stack: str, base: str) -> _Revision:
    stack_file = resolve_stack(stack)
    revision = _locate(stack_file, base)
    if not revision.at_base and not stack_file.is_file():
        stack_path(stack)  # raises the usual "no stack" message, listing the stacks there are
        raise DiffError(f"no stack config file at {stack_file}")
    return revision


def _batches(
    located: Sequence[_Revision | Exception], temp: Path, only: set[int] | None = None,
) -> dict[int, _BaseBatch]:
    """The stacks present at the base (those at positions `only`, if given), by project: each base
    commit extracted once, one batch per project; keyed by the stack's position in `located`."""
    checkouts: dict[tuple[Path, str], Path] = {}
    batches: dict[Path, _BaseBatch] = {}
    placed: dict[int, _BaseBatch] = {}
    temp.mkdir(exist_ok=True)
    for index, revision in enumerate(located):
        if not isinstance(revision, _Revision) or not revision.at_base or (only is not None and index not in only):
            continue
        key = (revision.toplevel, revision.commit)
        if key not in checkouts:
            checkouts[key] = temp / str(len(checkouts))
            _extract(revision.toplevel, revision.commit, checkouts[key])
        project = checkouts[key] / _project_dir(revision.stack_file, revision.toplevel).relative_to(revision.toplevel)
        batch = batches.setdefault(project, _BaseBatch(checkouts[key], project))
        batch.revisions.append(revision)
        placed[index] = batch
    return placed


Sides = tuple[Side, Side]


def render_many_sides(stacks: Sequence[str], base: str) -> list[Sides | Exception]:
    """Each stack rendered at `base` (by that revision's code) and in the working tree (by this
    code): (base side, working tree side), or the error that stopped that stack's comparison."""
    for cached in (_toplevel, _commit, _files_at):
        cached.cache_clear()  # shared by the stacks of one batch only: a branch may move between batches
    located: list[_Revision | Exception] = []
    for stack in stacks:
        try:
            located.append(_located(stack, base))
        except (DiffError, StackFileError) as error:
            located.append(error)
    with tempfile.TemporaryDirectory(prefix="vllm-serving-diff-") as temp:
        same = _same_code_bases(located)
        placed = _batches(located, Path(temp) / "base", {i for i in range(len(located)) if i not in same})
        batches = _distinct(placed)
        try:
            # Started before the working tree renders, so that the two run side by side.
            for batch in batches:
                batch.process = batch.start()
            rendered = [_working_tree_or_error(item) for item in located]
            work = [side for side, _ in rendered]
            old: dict[int, Side | DiffError] = {}
            for index, base_code in same.items():
                side = base_code.side(rendered[index][1], Path(temp))
                if side is not None:
                    old[index] = side
            for batch in batches:
                old.update(_answers(placed, batch))
            # A base that failed here: rendered by its own code after all, for its own message.
            again = _batches(located, Path(temp) / "again", {index for index in same if index not in old})
            for batch in _distinct(again):
                batches.append(batch)
                batch.process = batch.start()
                old.update(_answers(again, batch))
            return [_pair(item, old.get(index), work[index], base) for index, item in enumerate(located)]
        finally:
            for batch in batches:
                batch.stop()


def _distinct(placed: dict[int, _BaseBatch]) -> list[_BaseBatch]:
    """The batches stacks were placed in, each once, in the order they were made."""
    return list({id(batch): batch for batch in placed.values()}.values())


def _answers(placed: dict[int, _BaseBatch], batch: _BaseBatch) -> dict[int, Side | DiffError]:
    """`batch`'s base sides by stack position: it answers in the order its stacks were placed."""
    return dict(zip((index for index, b in placed.items() if b is batch), batch.read(), strict=True))


def _working_tree_or_error(item: _Revision | Exception) -> tuple[Side | Exception, dict[str, Any] | None]:
    if isinstance(item, Exception):
        return item, None
    try:
        return _render_working_tree_document(item.stack_file)
    except Exception as error:
        return error, None


def _pair(
    item: _Revision | Exception, base_side: Side | DiffError | None, new: Side | Exception, base: str,
) -> Sides | Exception:
    if isinstance(item, Exception):
        return item
    if base_side is None:
        base_side = Side(item.label, {}, {}, absent=f"{item.stack_file.name} does not exist at {base}")
    if isinstance(new, Exception):
        return new
    if isinstance(base_side, Exception):
        return base_side
    if not base_side.absent and not new.absent and (
        base_side.outputs.get(DEPLOY_NAME_OUTPUT) != new.outputs.get(DEPLOY_NAME_OUTPUT)
    ):
        # A model.deployName change: render again as `pulumi preview` would run after the base was
        # deployed, which raises the program's own refusal (components/rename_guard.py).
        try:
            _render_working_tree(item.stack_file, previous_outputs=base_side.outputs)
        except Exception as error:
            return error
    return base_side, new


def render_sides(stack: str, base: str) -> Sides:
    """Render the stack at `base` (by that revision's code) and in the working tree (by this code)."""
    (result,) = render_many_sides([stack], base)
    if isinstance(result, Exception):
        raise result
    return result
