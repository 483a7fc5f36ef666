"""The vllm-serving component provider: hosts components.package.VllmServing for other languages.

Its schema is inferred from the component's typed args (pulumi.provider.experimental's
Analyzer); `pulumi package get-schema ./provider` prints it. Run from this repository's checkout:
the checkout, one directory up, is what it imports.
"""

import sys
import tomllib
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))

from pulumi.provider.experimental import component_provider_host  # noqa: E402

from components.package import PACKAGE_NAME, VllmServing  # noqa: E402

VERSION = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]["version"]

if __name__ == "__main__":
    component_provider_host(components=[VllmServing], name=PACKAGE_NAME, version=VERSION)
