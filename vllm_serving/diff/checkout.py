"""Render a stack at a git revision, by that revision's own code, and in the working tree.

The base revision is extracted with `git archive` and rendered in a subprocess, so that a
change to the program itself shows up; the working tree is rendered by the code running here.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from components.config import ConfigError
from components.rename_guard import DEPLOY_NAME_OUTPUT

from ..stack_file import PROJECT_ROOT, STACKS_DIR, StackFileError, stack_path
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
    relative: Optional[Path]  # the stack file inside the repository; None when outside it
    at_base: bool

    @property
    def label(self) -> str:
        return f"{self.base} ({self.commit[:7]})"


def _locate(stack_file: Path, base: str) -> _Revision:
    directory = stack_file.parent if stack_file.parent.is_dir() else PROJECT_ROOT
    try:
        toplevel = Path(_git(directory, "rev-parse", "--show-toplevel").strip()).resolve()
    except DiffError as error:
        raise DiffError(f"{directory} is not in a git repository: {error}") from None
    try:
        commit = _git(toplevel, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{base}^{{commit}}").strip()
    except DiffError:
        raise DiffError(f"unknown git revision {base!r}") from None
    try:
        relative: Optional[Path] = stack_file.relative_to(toplevel)
    except ValueError:
        relative = None
    at_base = relative is not None and subprocess.run(
        ["git", "cat-file", "-e", f"{commit}:{relative.as_posix()}"], cwd=toplevel, capture_output=True
    ).returncode == 0
    return _Revision(base, toplevel, commit, stack_file, relative, at_base)


def _start_base_render(revision: _Revision, checkout: Path) -> subprocess.Popen:
    assert revision.relative is not None  # at_base implies the file is in the repository
    _extract(revision.toplevel, revision.commit, checkout)
    project = checkout / _project_dir(revision.stack_file, revision.toplevel).relative_to(revision.toplevel)
    # Only the base's tree on the path: this checkout's modules must not stand in for its own.
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.Popen(
        [sys.executable, "-m", "vllm_serving", "render", str(checkout / revision.relative), "--format", "json"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _render_working_tree(stack_file: Path, previous_outputs: Optional[dict[str, Any]] = None) -> Side:
    if not stack_file.is_file():
        return Side("working tree", {}, {}, absent=f"{stack_file.name} does not exist in the working tree")
    # Looked up when called, so that a test can stand in for the renderer.
    from ..render import render, rendering_as_json

    try:
        rendering = render(stack_path(str(stack_file)), previous_outputs=previous_outputs)
        return side_from_rendering("working tree", rendering_as_json(rendering))
    except (ConfigError, StackFileError) as error:
        raise DiffError(f"in the working tree: {error}") from None


def _read_base(process: subprocess.Popen, revision: _Revision) -> Side:
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise base_error(revision.base, stderr)
    try:
        return side_from_rendering(revision.label, json.loads(stdout))
    except json.JSONDecodeError:
        raise DiffError(f"at {revision.base}: `render --format json` printed no JSON:\n{stdout[:500]}") from None


def render_sides(stack: str, base: str) -> tuple[Side, Side]:
    """Render the stack at `base` (by that revision's code) and in the working tree (by this code)."""
    stack_file = resolve_stack(stack)
    revision = _locate(stack_file, base)
    if not revision.at_base and not stack_file.is_file():
        stack_path(stack)  # raises the usual "no stack" message, listing the stacks there are
        raise DiffError(f"no stack config file at {stack_file}")

    with tempfile.TemporaryDirectory(prefix="vllm-serving-diff-") as temp:
        # Started before the working tree renders, so that the two run side by side.
        process = _start_base_render(revision, Path(temp)) if revision.at_base else None
        try:
            work = _render_working_tree(stack_file)
            if process is None:
                old = Side(revision.label, {}, {}, absent=f"{stack_file.name} does not exist at {base}")
            else:
                old = _read_base(process, revision)
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()
    if not old.absent and not work.absent and old.outputs.get(DEPLOY_NAME_OUTPUT) != work.outputs.get(DEPLOY_NAME_OUTPUT):
        # A model.deployName change: render again as `pulumi preview` would run after the base was
        # deployed, which raises the program's own refusal (components/rename_guard.py).
        _render_working_tree(stack_file, previous_outputs=old.outputs)
    return old, work
