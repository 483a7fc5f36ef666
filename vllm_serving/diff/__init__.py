"""`vllm-serving diff`: what a change to a stack would do to the cluster, reviewed offline.

Both sides are rendered under Pulumi's mocks, so no backend, cluster or secret is needed:
the base revision by its own code, the working tree by the code running here
(checkout.py). Resources are paired by URN (compare.py), which names the Pulumi resource
and not the Kubernetes object: a download Job renamed from a hash of its inputs stays one
resource whose `metadata.name` changes, which is exactly what pulumi-kubernetes turns into
a replacement. Manifests are compared field by field (values.py), and each change is
classified by pulumi-kubernetes' replacement table (replacement.py) into the report
(model.py), printed as text or markdown (printing.py) by the command (command.py).
"""

from .checkout import DiffError, render_many_sides, render_sides, resolve_stack
from .checkout import base_error as _base_error
from .command import EXIT_CHANGED, EXIT_ERROR, EXIT_SAME, _diff_command, add_parser, run, run_many
from .compare import compare
from .model import (
    NOTE,
    REFUSED,
    REPLACE,
    RESTART,
    Effect,
    FieldChange,
    Report,
    ResourceChange,
    Side,
)
from .model import side_from_rendering as _side
from .printing import render_markdown, render_text
from .replacement import classify
from .values import MISSING, ORDER, Item, diff_values, render_path

# `_side`, `_base_error` and `_diff_command` keep the names the tests and older callers use.
__all__ = [
    "EXIT_CHANGED",
    "EXIT_ERROR",
    "EXIT_SAME",
    "MISSING",
    "NOTE",
    "ORDER",
    "REFUSED",
    "REPLACE",
    "RESTART",
    "DiffError",
    "Effect",
    "FieldChange",
    "Item",
    "Report",
    "ResourceChange",
    "Side",
    "_base_error",
    "_diff_command",
    "_side",
    "add_parser",
    "classify",
    "compare",
    "diff_values",
    "render_many_sides",
    "render_markdown",
    "render_path",
    "render_sides",
    "render_text",
    "resolve_stack",
    "run",
    "run_many",
]
