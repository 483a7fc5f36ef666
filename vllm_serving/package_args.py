"""Generate components/package_args.py: the component's args as TypedDicts, from the config models.

Pulumi infers a Python component package's schema from the type annotations of its `args`
(pulumi/provider/experimental/analyzer.py, Analyzer.analyze_component: a TypedDict per complex
type) and each property's description from the string literal under it in the class's source
(Analyzer.get_docstring reads it with inspect.getsource). Both exist only in source, so this
writes the source, from ServingConfig and its nested models: the models stay the one definition,
and tests/test_component_package.py fails while the file is stale.

    .venv/bin/python -m vllm_serving.package_args > components/package_args.py
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

from pydantic import BaseModel

from components.config import ServingConfig

HEADER = '''"""The VllmServing component's args, for Pulumi's schema inference (components/package.py).

Generated from the config models by `python -m vllm_serving.package_args`: do not edit. Each
property is a stack config key, with the same name, meaning and default (README, Configuration).
"""

# No `from __future__ import annotations`: Pulumi's analyzer reads the annotations as objects,
# so each class is defined after the classes it uses.
from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

import pulumi
'''


def _name(model: type[BaseModel]) -> str:
    return "VllmServingArgs" if model is ServingConfig else f"{model.__name__}Args"


def _python_type(annotation: Any, models: list[type[BaseModel]]) -> str:
    """The annotation as Pulumi's analyzer reads it: plain types, Sequence, Mapping, nested args."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _python_type(args[0], models)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        return _python_type(options[0], models) if len(options) == 1 else "Any"
    if origin is typing.Literal:
        kinds = {type(arg) for arg in args}
        return kinds.pop().__name__ if len(kinds) == 1 and next(iter(kinds)) in (str, int) else "Any"
    if origin in (list, tuple, typing.Sequence) or annotation in (list, tuple):
        return f"Sequence[{_python_type(args[0], models) if args else 'Any'}]"
    if origin is dict or annotation is dict:
        return f"Mapping[str, {_python_type(args[1], models) if args else 'Any'}]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in models:
            models.append(annotation)
        return _name(annotation)
    if annotation in (str, int, float, bool):
        return annotation.__name__
    return "Any"


def _docstring(text: str) -> str:
    return '"""' + " ".join(text.split()).replace("\\", "\\\\").replace('"""', "'''") + '"""'


def _class(model: type[BaseModel], nested: list[type[BaseModel]]) -> str:
    lines = [f"class {_name(model)}(TypedDict):", f"    {_docstring(model.__doc__ or model.__name__)}", ""]
    for name, field in model.model_fields.items():
        wrapped = f"pulumi.Input[{_python_type(field.annotation, nested)}]"
        lines.append(f"    {name}: {wrapped if field.is_required() else f'NotRequired[{wrapped}]'}")
        lines.append(f"    {_docstring(field.description or name)}")
    return "\n".join(lines)


def generate() -> str:
    """Every model's class after the classes it uses (a depth-first walk from ServingConfig)."""
    done: dict[type[BaseModel], str] = {}

    def visit(model: type[BaseModel]) -> None:
        nested: list[type[BaseModel]] = []
        text = _class(model, nested)
        for inner in nested:
            if inner not in done:
                visit(inner)
        done[model] = text

    visit(ServingConfig)
    return HEADER + "\n\n" + "\n\n\n".join(done.values()) + "\n"


if __name__ == "__main__":
    sys.stdout.write(generate())
