"""Whether a base revision's code is the code running here, file for file.

`diff` renders the base by the base's own code, so that a change to the program shows up. When
the base's tree holds exactly the files of the checkout this code runs from (the same paths, the
same bytes), its own code IS this code: its stacks then render in this process, without a
subprocess that imports Pulumi again, and a stack file unchanged since the base is not rendered
twice. Stack config files (`Pulumi.<stack>.yaml`, wherever they are) are left out of the
comparison: a rendering reads its own stack file and no other. Anything this cannot vouch for
(a checkout outside git, a symbolic link, a submodule) counts as different code.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path, PurePosixPath

from ..stack_file import PROJECT_ROOT

_STACK_FILE = re.compile(r"^Pulumi\.[^/]+\.ya?ml$")
_FILE_MODES = ("100644", "100755")  # a regular file; 120000 is a link, 160000 a submodule


def _is_stack_file(path: str) -> bool:
    return bool(_STACK_FILE.match(PurePosixPath(path).name))


def _blob_id(data: bytes) -> str:
    """The id git gives a file of these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _git(cwd: Path, *args: str) -> str | None:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def running_tree(root: Path = PROJECT_ROOT) -> dict[str, str] | None:
    """The files of the checkout this code runs from, tracked or untracked but not ignored, as
    {path relative to root: blob id}, stack files left out; None when that cannot be told."""
    listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is None:
        return None
    files: dict[str, str] = {}
    for name in set(filter(None, listed.split("\0"))):
        if _is_stack_file(name):
            continue
        path = root / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            return None
        if path.is_file():  # a tracked file deleted in the working tree is listed too, and is not there
            files[name] = _blob_id(path.read_bytes())
    return files


def base_tree(toplevel: Path, commit: str, project: Path) -> dict[str, str] | None:
    """The files of `project` (a directory of the repository at `toplevel`) in `commit`, as
    {path relative to project: blob id}, stack files left out; None when that cannot be told."""
    relative = project.relative_to(toplevel).as_posix()
    listed = _git(toplevel, "ls-tree", "-r", "-z", "--full-tree", commit, "--", relative)
    if listed is None:
        return None
    files: dict[str, str] = {}
    prefix = "" if relative == "." else relative + "/"
    for entry in filter(None, listed.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, _kind, blob = meta.split(" ")
        if not path.startswith(prefix):
            continue
        name = path[len(prefix):]
        if _is_stack_file(name):
            continue
        if mode not in _FILE_MODES:
            return None
        files[name] = blob
    return files


def read_blobs(toplevel: Path, specs: list[str]) -> list[bytes | None]:
    """The bytes of each `commit:path` in one git call, None for one git cannot find."""
    if not specs:
        return []
    result = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=toplevel, input="".join(f"{spec}\n" for spec in specs).encode(),
        capture_output=True,
    )
    if result.returncode != 0:
        return [None] * len(specs)
    out, position = result.stdout, 0
    blobs: list[bytes | None] = []
    for _ in specs:
        end = out.index(b"\n", position)
        header = out[position:end].split(b" ")
        position = end + 1
        if len(header) != 3 or header[1] != b"blob":  # "<spec> missing", or not a file
            blobs.append(None)
            continue
        size = int(header[2])
        blobs.append(out[position:position + size])
        position += size + 1  # the content, then a newline
    return blobs
