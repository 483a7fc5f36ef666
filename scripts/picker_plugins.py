"""Extract the endpoint picker's plugin table from the pinned upstream sources.

    python scripts/picker_plugins.py GAIE_GIT_DIR LLMD_GIT_DIR > vllm_serving/crd_schemas/picker_plugins.json

GAIE_GIT_DIR: a clone of kubernetes-sigs/gateway-api-inference-extension; LLMD_GIT_DIR: one of
llm-d/llm-d-inference-scheduler. Read at the tags the picker image is built from: llm-d v0.8.0,
whose go.mod requires the extension v1.5.0.

For each `Register(<pkg>.<Const>, <pkg>.<Factory>)` of the extension's in-tree plugins
(cmd/epp/runner/runner.go, registerInTreePlugins) and llm-d's (pkg/epp/framework/plugins/
register.go, RegisterAllPlugins): the type name (the constant's string), the file that defines
it, and the parameters its factory reads: none when the factory ignores them (`_ json.RawMessage`),
else the `json:"..."` tags of the structs in the factory's package. The prefix-cache-scorer passes
its parameters to the approx-prefix-cache-producer it creates (pkg/epp/config/loader/
configloader.go, instantiatePlugins), so it takes that package's tags.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

GAIE_TAG, LLMD_TAG = "v1.5.0", "v0.8.0"
GAIE_MODULE = "sigs.k8s.io/gateway-api-inference-extension/"
LLMD_MODULE = "github.com/llm-d/llm-d-inference-scheduler/"
REGISTER = re.compile(r"\bRegister\((\w+)\.(\w+),\s*(\w+)\.(\w+)\)")
IMPORT = re.compile(r'^\s*(\w+\s+)?"([^"]+)"', re.M)
JSON_TAG = re.compile(r'json:"([A-Za-z0-9_]+)[,"]')
FLAG = re.compile(r'fs\.\w+Var\(&opts\.\w+,\s*"([a-z0-9-]+)"')
FEATURE_GATE = re.compile(r"loader\.RegisterFeatureGate\((\w+)\.(\w+)\)")


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def go_files(repo: str, tag: str, directory: str) -> dict[str, str]:
    names = git(repo, "ls-tree", "--name-only", f"{tag}:{directory}").split()
    return {
        f"{directory}/{name}": git(repo, "show", f"{tag}:{directory}/{name}")
        for name in names
        if name.endswith(".go") and not name.endswith("_test.go")
    }


def imports(source: str) -> dict[str, str]:
    block = source.split("import (", 1)[1].split(")", 1)[0] if "import (" in source else ""
    found = {}
    for alias, path in IMPORT.findall(block):
        found[alias.strip() or path.rsplit("/", 1)[-1]] = path
    return found


def locate(path: str, repos: dict[str, tuple[str, str]]) -> tuple[str, str, str]:
    for module, (repo, tag) in repos.items():
        if path.startswith(module):
            return repo, tag, path[len(module):]
    raise LookupError(path)


def table(gaie: str, llmd: str) -> dict[str, dict]:
    repos = {GAIE_MODULE: (gaie, GAIE_TAG), LLMD_MODULE: (llmd, LLMD_TAG)}
    registrations = [
        (gaie, GAIE_TAG, "cmd/epp/runner/runner.go", "registerInTreePlugins"),
        (llmd, LLMD_TAG, "pkg/epp/framework/plugins/register.go", "RegisterAllPlugins"),
    ]
    plugins: dict[str, dict] = {}
    for repo, tag, file, function in registrations:
        source = git(repo, "show", f"{tag}:{file}")
        body = source.split(f"func (r *Runner) {function}()" if "Runner" in source and function == "registerInTreePlugins" else f"func {function}()", 1)[1]
        body = body.split("\n}\n", 1)[0]
        aliases = imports(source)
        for const_pkg, const, factory_pkg, factory in REGISTER.findall(body):
            const_repo, const_tag, const_dir = locate(aliases[const_pkg], repos)
            files = go_files(const_repo, const_tag, const_dir)
            value = defined_in = None
            for name, text in files.items():
                match = re.search(rf"\b{const}\s*=\s*\"([^\"]+)\"", text)
                if match:
                    value, defined_in = match.group(1), name
            if value is None:
                raise LookupError(f"{const} in {const_dir}")
            factory_repo, factory_tag, factory_dir = locate(aliases[factory_pkg], repos)
            factory_files = go_files(factory_repo, factory_tag, factory_dir)
            signature = next(
                (m.group(0) for text in factory_files.values() for m in [re.search(rf"func {factory}\([^)]*\)", text)] if m), ""
            )
            takes_parameters = bool(signature) and not re.search(r"\b_\s+json\.RawMessage", signature)
            if value == "prefix-cache-scorer":
                factory_files = go_files(gaie, GAIE_TAG, "pkg/epp/framework/plugins/requestcontrol/dataproducer/approximateprefix")
                takes_parameters = True
            parameters = sorted({tag for text in factory_files.values() for tag in JSON_TAG.findall(text)}) if takes_parameters else []
            plugins[value] = {
                "source": f"{'gateway-api-inference-extension' if const_repo == gaie else 'llm-d-inference-scheduler'}@{const_tag} {defined_in}",
                "parameters": parameters,
            }
    return dict(sorted(plugins.items()))


def feature_gates(gaie: str) -> list[str]:
    """The gates the runner registers (cmd/epp/runner/runner.go): each constant's string."""
    source = git(gaie, "show", f"{GAIE_TAG}:cmd/epp/runner/runner.go")
    aliases = imports(source)
    gates = []
    for package, const in FEATURE_GATE.findall(source):
        directory = aliases[package][len(GAIE_MODULE):]
        for text in go_files(gaie, GAIE_TAG, directory).values():
            if match := re.search(rf"\b{const}\s*=\s*\"([^\"]+)\"", text):
                gates.append(match.group(1))
    return sorted(gates)


def vllm_metrics(gaie: str) -> dict[str, str]:
    """The vLLM metric names the core metrics extractor reads by default
    (pkg/epp/framework/plugins/datalayer/extractor/metrics/factories.go, defaultEngineConfigs),
    and the labels of the LoRA info metric (extractor.go)."""
    directory = "pkg/epp/framework/plugins/datalayer/extractor/metrics"
    factories = git(gaie, "show", f"{GAIE_TAG}:{directory}/factories.go")
    block = factories.split('Name:                "vllm",', 1)[1].split("},", 1)[0]
    found = dict(re.findall(r'(\w+Spec):\s*"([^"]*)"', block))
    extractor = git(gaie, "show", f"{GAIE_TAG}:{directory}/extractor.go")
    found.update(re.findall(r'(LoraInfo\w+MetricName)\s*=\s*"([^"]+)"', extractor))
    return found


def main() -> None:
    gaie, llmd = sys.argv[1:3]
    document = {
        "release": f"llm-d/llm-d-inference-scheduler {LLMD_TAG} ({git(llmd, 'rev-list', '-n1', LLMD_TAG).strip()}), "
        f"on kubernetes-sigs/gateway-api-inference-extension {GAIE_TAG} ({git(gaie, 'rev-list', '-n1', GAIE_TAG).strip()})",
        "featureGates": feature_gates(gaie),
        # The picker's flags (pkg/epp/server/options.go, AddFlags).
        "flags": sorted(FLAG.findall(git(gaie, "show", f"{GAIE_TAG}:pkg/epp/server/options.go"))),
        "vllmMetrics": vllm_metrics(gaie),
        "plugins": table(gaie, llmd),
    }
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
