"""The Pulumi project a command works in, found the way the Pulumi CLI finds it.

The CLI walks up from its working directory to the nearest directory holding a project file
(pulumi/pulumi sdk/go/common/workspace/paths.go, DetectProjectPathFrom: fsutil.WalkUp with
isProject, which accepts Pulumi.yaml and Pulumi.yml). The stack config files live in that
project's `stackConfigDir` (the project directory when unset), and the Python program is its
`main` (a directory holding __main__.py, or the project directory when unset).

So a team's own repository made from templates/vllm-serving, with vllm-serving installed into
site-packages, works from its own directory, and so does this repository's checkout. A stack
file given by path belongs to the project above it, if it is inside one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .stack_file import PROJECT_ROOT, StackFileError

PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml")


@dataclass(frozen=True)
class Project:
    root: Path
    stacks_dir: Path
    program: Path

    def stack_file(self, stack: str) -> Path:
        return self.stacks_dir / f"Pulumi.{stack}.yaml"


def _project_file(directory: Path) -> Path | None:
    return next((directory / name for name in PROJECT_FILES if (directory / name).is_file()), None)


def find_project_file(start: Path) -> Path | None:
    """The project file of the nearest directory at or above `start` that has one."""
    start = start.resolve()
    for directory in (start, *start.parents):
        found = _project_file(directory)
        if found is not None:
            return found
    return None


def _load(project_file: Path) -> Project:
    try:
        document = yaml.safe_load(project_file.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise StackFileError(f"{project_file}: cannot read the Pulumi project file: {' '.join(str(error).split())}") from None
    document = document if isinstance(document, dict) else {}
    root = project_file.parent
    stacks = document.get("stackConfigDir")
    main = document.get("main")
    program = root / main if isinstance(main, str) and main else root
    if program.suffix != ".py":
        program = program / "__main__.py"
    return Project(root, root / stacks if isinstance(stacks, str) and stacks else root, program)


def current_project(start: Path | None = None) -> Project:
    """The project of the working directory (or `start`). Run from outside any project, a
    checkout of this repository stands for itself, as it always has (./vllm-serving from anywhere)."""
    start = Path.cwd() if start is None else start
    found = find_project_file(start)
    if found is None:
        found = _project_file(PROJECT_ROOT)
    if found is None:
        raise StackFileError(
            f"no Pulumi project here: no {' or '.join(PROJECT_FILES)} in {start.resolve()} or any directory above it. "
            "Run vllm-serving in your project's directory (one made from templates/vllm-serving), "
            "or give a stack file and --program"
        )
    return _load(found)


def project_of(stack_file: Path) -> Project:
    """The project a stack file belongs to: the nearest one above the file, else the working directory's."""
    found = find_project_file(stack_file.parent)
    return _load(found) if found is not None else current_project()


def shown(path: Path) -> Path:
    """A path as a message shows it: relative to the working directory when inside it, so that
    messages read the same on every machine and in every checkout."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
