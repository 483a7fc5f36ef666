#!/usr/bin/env python3
"""Write components/config/vllm_options.py: every option string of vLLM's OpenAI server parser.

Usage: scripts/vllm_options.py VLLM_SOURCE_DIR > components/config/vllm_options.py
(VLLM_SOURCE_DIR is the `vllm` package directory of the release the image runs.)

The server's parser (`python3 -m vllm.entrypoints.openai.api_server` runs
vllm/entrypoints/launchers/api_server/entry.py:main) is a FlexibleArgumentParser filled by
make_arg_parser (entrypoints/common/cli_args.py): a few add_argument calls, FrontendArgs'
dataclass fields, then AsyncEngineArgs.add_cli_args (engine/arg_utils.py), whose calls take
their kwargs from get_kwargs(SomeConfig)["field"]. Importing vLLM needs torch and a GPU stack,
so this reads the same source with `ast` instead and applies the rules that turn a field into
option strings (engine/arg_utils.py:_compute_kwargs and utils/argparse_utils.py):

- a field is `--<name with - for _>`; extra flags (-tp, -q) are the call's other strings;
- a bool field (not `bool | str | None`, which is an optional-valued flag) gets
  argparse.BooleanOptionalAction, which the parser maps to EnableDisableAction: every `--x`
  also registers `--no-x`, and `--enable-x` / `--disable-x` register each other;
- ArgumentParser's own -h/--help.

The list is what config/rules.py resolves abbreviations against, as argparse does (vLLM
leaves allow_abbrev at its default, True): an extraArg's prefix is refused when it names a
flag the program sets only if it is unique among all of these.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path


def _classes(root: Path) -> dict[str, ast.ClassDef]:
    found: dict[str, ast.ClassDef] = {}
    for path in [*sorted((root / "config").glob("*.py")), root / "entrypoints/common/cli_args.py", root / "engine/arg_utils.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, node)
    return found


def _fields(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> dict[str, str]:
    """A dataclass's fields, bases first, as name -> annotation source."""
    fields: dict[str, str] = {}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            fields.update(_fields(classes[base.id], classes))
    for item in cls.body:
        is_field = isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
        if is_field and "ClassVar" not in ast.unparse(item.annotation):
            fields[item.target.id] = ast.unparse(item.annotation)
    return fields


def _is_boolean_flag(annotation: str) -> bool:
    """_compute_kwargs: a type with bool is a BooleanOptionalAction, except exactly bool | str | None."""
    names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", re.sub(r"'[^']*'|\"[^\"]*\"", "", annotation)))
    return "bool" in names and names - {"Optional", "Union"} != {"bool", "str", "None"}


def _option_strings(strings: list[str], boolean: bool) -> list[str]:
    if not boolean:
        return strings
    inverses = {"--enable-": "--disable-", "--disable-": "--enable-"}
    extra = [f"--no-{s[2:]}" for s in strings if s.startswith("--")]
    extra += [inverse + s.removeprefix(prefix) for s in strings for prefix, inverse in inverses.items() if s.startswith(prefix)]
    return strings + extra


def _kwargs_sources(function: ast.FunctionDef) -> dict[str, tuple[str, str | None]]:
    """`x_kwargs = get_kwargs(Cls)` -> {x_kwargs: (Cls, None)}; `get_kwargs(Cls)["f"]` -> (Cls, f)."""
    sources: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value, field = node.value, None
            if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant):
                value, field = value.value, value.slice.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "get_kwargs":
                sources[node.targets[0].id] = (value.args[0].id, field)
            elif isinstance(value, ast.Name) and value.id in sources and field is not None:
                sources[node.targets[0].id] = (sources[value.id][0], field)  # y = x_kwargs["f"]
    return sources


def _call_options(call: ast.Call, sources, classes) -> list[str]:
    strings = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("-")]
    boolean = any(k.arg == "action" and ast.unparse(k.value).endswith("BooleanOptionalAction") for k in call.keywords)
    for keyword in call.keywords:
        if keyword.arg is not None:
            continue
        value = keyword.value
        if isinstance(value, ast.Dict):  # **{**x_kwargs["f"], "default": ...}
            value = next(v for k, v in zip(value.keys, value.values, strict=False) if k is None)
        if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name) and value.value.id in sources:
            cls, _ = sources[value.value.id]
            field = value.slice.value
        elif isinstance(value, ast.Name) and value.id in sources:
            cls, field = sources[value.id]
        else:
            raise SystemExit(f"cannot resolve the kwargs of {ast.unparse(call)[:120]}")
        boolean = _is_boolean_flag(_fields(classes[cls], classes)[field])
    return _option_strings(strings, boolean)


def _functions(tree: ast.Module, names: set[str]) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in names]


def server_options(root: Path) -> list[str]:
    classes = _classes(root)
    options = ["-h", "--help"]
    cli_args = ast.parse((root / "entrypoints/common/cli_args.py").read_text())
    (make_arg_parser,) = _functions(cli_args, {"make_arg_parser"})
    for node in ast.walk(make_arg_parser):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            options += _call_options(node, {}, classes)
    for name, annotation in _fields(classes["FrontendArgs"], classes).items():
        options += _option_strings([f"--{name.replace('_', '-')}"], _is_boolean_flag(annotation))
    engine = ast.parse((root / "engine/arg_utils.py").read_text())
    for function in _functions(engine, {"add_cli_args"}):
        sources = _kwargs_sources(function)
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                options += _call_options(node, sources, classes)
    return sorted(set(options))


if __name__ == "__main__":
    source = Path(sys.argv[1])
    version = re.search(r"__version__ = version = '([^']+)'", (source / "_version.py").read_text()).group(1)
    print(f'"""Every option string of vLLM {version}\'s OpenAI server parser. Generated by scripts/vllm_options.py; do not edit."""')
    print()
    print(f"VLLM_VERSION = {version!r}")
    print("VLLM_OPTIONS = (")
    print("\n".join(f"    {option!r}," for option in server_options(source)))
    print(")")
