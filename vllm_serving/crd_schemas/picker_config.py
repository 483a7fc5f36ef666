"""The endpoint picker's config file, checked offline against the pinned release.

The picker decodes its EndpointPickerConfig strictly (gateway-api-inference-extension v1.5.0,
pkg/epp/config/loader/configloader.go, decodeRawConfig: serializer.EnableStrict), so an unknown
top-level field stops it at start; a plugin type that is not registered stops it too
(instantiatePlugins: "plugin type '%s' is not registered"). A plugin's parameters, though, are
read with plain json.Unmarshal: a misspelt parameter is silently ignored. All three are checked
here, against picker_plugins.json: the table scripts/picker_plugins.py extracts from the sources
the picker image is built from (see that script for how).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PLUGIN_TABLE = Path(__file__).parent / "picker_plugins.json"
# The data key of the ConfigMap the picker reads its config from (components/options/routing.py,
# PICKER_CONFIG_FILE; tests/test_routing.py checks both agree).
PICKER_CONFIG_FILE = "endpoint-picker.yaml"
API_VERSION = "inference.networking.x-k8s.io/v1alpha1"
KIND = "EndpointPickerConfig"
# The json tags of EndpointPickerConfig and FlowControlConfig (apix/config/v1alpha1/
# endpointpickerconfig_types.go at v1.5.0).
TOP_LEVEL_FIELDS = {
    "apiVersion", "kind", "featureGates", "plugins", "schedulingProfiles", "saturationDetector", "dataLayer",
    "flowControl", "parser",
}
FLOW_CONTROL_FIELDS = {
    "maxBytes", "maxRequests", "defaultRequestTTL", "defaultPriorityBand", "priorityBands", "usageLimitPolicyPluginRef",
}
# Go's time.ParseDuration, which metav1.Duration uses.
GO_DURATION = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+")


@cache
def plugin_table() -> dict[str, Any]:
    return json.loads(PLUGIN_TABLE.read_text())


def check_picker_config(document: Any) -> list[str]:
    """Each problem the pinned picker would have with this config; empty when none."""
    if not isinstance(document, dict):
        return ["the config is not a mapping"]
    table = plugin_table()
    problems = [f"unknown field {key!r}" for key in sorted(set(document) - TOP_LEVEL_FIELDS)]
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        problems.append(f"apiVersion/kind must be {API_VERSION} {KIND}")
    problems += [
        f"featureGates: {gate!r} is not a feature gate of {table['release']}"
        for gate in document.get("featureGates", []) if gate not in table["featureGates"]
    ]
    plugin_problems, names = _plugins(document.get("plugins", []), table)
    return problems + plugin_problems + _references(document, names) + _flow_control(document)


def _plugins(plugins: list[dict[str, Any]], table: dict[str, Any]) -> tuple[list[str], set[str]]:
    """Problems of the plugin list, and the plugin names (a name defaults to the type)."""
    problems, names = [], set()
    for index, plugin in enumerate(plugins):
        plugin_type = plugin.get("type", "")
        name = plugin.get("name") or plugin_type
        known = table["plugins"].get(plugin_type)
        if known is None:
            problems.append(f"plugins[{index}]: type {plugin_type!r} is not registered in {table['release']}")
        elif unknown := sorted(set(plugin.get("parameters") or {}) - set(known["parameters"])):
            problems.append(
                f"plugins[{index}] ({plugin_type}): parameter(s) {', '.join(unknown)} not read by it "
                f"(reads: {', '.join(known['parameters']) or 'none'})"
            )
        if name in names:
            problems.append(f"plugins[{index}]: duplicate plugin name {name!r}")
        names.add(name)
    return problems, names


def _references(document: dict[str, Any], names: set[str]) -> list[str]:
    problems = []
    for index, profile in enumerate(document.get("schedulingProfiles", [])):
        for ref_index, ref in enumerate(profile.get("plugins", [])):
            where = f"schedulingProfiles[{index}].plugins[{ref_index}]"
            problems += [f"{where}: unknown field {key!r}" for key in sorted(set(ref) - {"pluginRef", "weight"})]
            if ref.get("pluginRef") not in names:
                problems.append(f"{where}: pluginRef {ref.get('pluginRef')!r} names no plugin")
    for index, source in enumerate((document.get("dataLayer") or {}).get("sources", [])):
        refs = [source.get("pluginRef"), *(extractor.get("pluginRef") for extractor in source.get("extractors", []))]
        problems += [f"dataLayer.sources[{index}]: pluginRef {ref!r} names no plugin" for ref in refs if ref not in names]
    return problems


def _flow_control(document: dict[str, Any]) -> list[str]:
    flow = document.get("flowControl")
    if flow is None:
        return []
    problems = [f"flowControl: unknown field {key!r}" for key in sorted(set(flow) - FLOW_CONTROL_FIELDS)]
    ttl = flow.get("defaultRequestTTL")
    if ttl is not None and not GO_DURATION.fullmatch(str(ttl)):
        problems.append(f"flowControl.defaultRequestTTL: {ttl!r} is not a Go duration")
    if "flowControl" not in document.get("featureGates", []):
        problems.append("flowControl is set but the flowControl feature gate is off: the picker would ignore it")
    return problems


def check_picker_config_text(text: str) -> list[str]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        return [f"not YAML: {error}"]
    return check_picker_config(document)
