"""`vllm-serving import-values`: turn a T9k vLLM chart values file into a stack file.

The stack schema keeps the chart's field names and meanings, so the translation is a
copy of the chart's fields under the `vllm-serving:` namespace. What needs care is
everything else: keys the chart does not have are reported, not guessed at, and the one
default that differs (image.tag) is written out so the stack serves what the chart did.
"""

from .chart_fields import CHART_DEFAULT_TAG, CHART_FIELDS
from .command import EXIT_INVALID, EXIT_OK, ImportFailure, add_parser, import_values, read_values
from .stack_document import stack_document
from .translate import Translation, translate

__all__ = [
    "CHART_DEFAULT_TAG",
    "CHART_FIELDS",
    "EXIT_INVALID",
    "EXIT_OK",
    "ImportFailure",
    "Translation",
    "add_parser",
    "import_values",
    "read_values",
    "stack_document",
    "translate",
]
