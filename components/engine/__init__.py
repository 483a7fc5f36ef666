"""Engine profiles: what each supported vLLM release's server accepts, defaults to and answers.

One JSON file per release (vllm-<version>.json beside this module), generated from that
release's own source by scripts/vllm_options.py (docs/engine-profiles.md): its option strings
and the values argparse converts, the defaults the program depends on, its HTTP routes and the
prefixes `--api-key` guards, and the entry point this program renders for it. A profile stands
for its minor release (0.34.x); `image.tag` picks it, or `server.engineVersion` for a custom tag.

Loaded on first use, not at import: the fast suite and `render` start-up stay as they were.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import ServingConfig

PROFILE_DIR = Path(__file__).parent
_RELEASE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
# The extensible KV cache's switches (0.34 on): off, gpu_memory_utilization unset resolves to
# the estimate-based default (config/cache.py, resolved_gpu_memory_utilization); with
# --kv-cache-memory-bytes vLLM leaves it off too (config/vllm.py).
_EXTENSIBLE_OFF = ("--no-enable-extensible-kv-cache", "--disable-extensible-kv-cache", "--kv-cache-memory-bytes")


def release_of(text: str) -> tuple[int, int, int] | None:
    """The release a tag such as v0.34.0 (or 0.34, v0.34.0-cu128) names; None for another tag."""
    match = _RELEASE.match(text)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)) if match else None


@dataclass(frozen=True)
class Route:
    """One HTTP route of the server, as its source declares it."""

    method: str
    path: str
    # The module that declares it, and the `if` tests it is registered under (source text; none:
    # always there).
    module: str
    when: tuple[str, ...]
    # Whether --api-key guards it (its path starts with one of the guarded prefixes).
    guarded: bool


@dataclass(frozen=True)
class EngineProfile:
    version: str
    entry_point: tuple[str, ...]
    # option string -> {"flag": True} (takes no value), {"value": {...}} (what argparse accepts:
    # "choices", or "type" int / float / human_int / human_int_or_auto, and "optional"), or {}.
    options: Mapping[str, Mapping[str, Any]]
    defaults: Mapping[str, Any]
    guarded_prefixes: tuple[str, ...]
    routes: tuple[Route, ...]

    @property
    def release(self) -> tuple[int, int, int]:
        return release_of(self.version)  # type: ignore[return-value]

    @property
    def name(self) -> str:
        return f"vLLM {self.version}"

    @functools.cached_property
    def option_strings(self) -> tuple[str, ...]:
        return tuple(self.options)

    def default_gpu_memory_utilization(self, extra_args: tuple[str, ...] | list[str] = ()) -> float:
        """What --gpu-memory-utilization is when the command line leaves it unset.

        0.32 and 0.33: a number (0.92). 0.34: unset, which resolves to 1.0 with the extensible KV
        cache (on by default on CUDA, the vllm/vllm-openai image's platform) and to 0.92 with it
        off (vllm/config/cache.py, CacheConfig.resolved_gpu_memory_utilization).
        """
        value = self.defaults["gpuMemoryUtilization"]
        if value is not None:
            return float(value)
        unset = self.defaults["gpuMemoryUtilizationUnset"]
        from ..config.vllm_flags import read_argument

        read = {option for argument in extra_args for option in read_argument(argument, self.option_strings).options}
        return float(unset["otherwise"] if read & set(_EXTENSIBLE_OFF) else unset["extensibleKvCache"])

    def unguarded_routes(self) -> tuple[Route, ...]:
        """Routes the server answers without the key, whatever their registration conditions."""
        return tuple(route for route in self.routes if not route.guarded)


@functools.cache
def supported_versions() -> tuple[str, ...]:
    """The releases with a profile, oldest first."""
    versions = [path.stem.removeprefix("vllm-") for path in PROFILE_DIR.glob("vllm-*.json")]
    return tuple(sorted(versions, key=release_of))  # type: ignore[arg-type]


@functools.cache
def load_profile(version: str) -> EngineProfile:
    data = json.loads((PROFILE_DIR / f"vllm-{version}.json").read_text())
    return EngineProfile(
        version=data["version"],
        entry_point=tuple(data["entryPoint"]),
        options=data["options"],
        defaults=data["defaults"],
        guarded_prefixes=tuple(data["guardedPrefixes"]),
        routes=tuple(Route(r["method"], r["path"], r["module"], tuple(r["when"]), r["guarded"]) for r in data["routes"]),
    )


@dataclass(frozen=True)
class EngineChoice:
    """The profile a stack gets, and how: `exact` when one exists for the release it names."""

    profile: EngineProfile
    exact: bool
    # Where the release came from, for messages: "image.tag 'v0.34.0'" or "server.engineVersion '0.33'".
    named_by: str

    @property
    def warning(self) -> str | None:
        if self.exact:
            return None
        supported = ", ".join(".".join(v.split(".")[:2]) for v in supported_versions())
        return (
            f"{self.named_by} names no vLLM release this program has a profile of ({supported}): its flags, "
            f"defaults (the fit check's gpuMemoryUtilization) and routes are taken from the nearest, "
            f"{self.profile.name}, and options that profile lacks are only warned about. Set "
            "server.engineVersion to the release your image runs (e.g. 0.33.0)"
        )


@functools.cache
def choose(tag: str, engine_version: str = "") -> EngineChoice:
    """The profile for an image tag, or for server.engineVersion when it is set (it wins)."""
    named_by = f"server.engineVersion {engine_version!r}" if engine_version else f"image.tag {tag!r}"
    release = release_of(engine_version or tag)
    versions = supported_versions()
    if release is None:  # a custom build's tag: the newest (the default's) profile
        return EngineChoice(load_profile(versions[-1]), False, named_by)
    for version in versions:
        if release_of(version)[:2] == release[:2]:  # type: ignore[index]
            return EngineChoice(load_profile(version), True, named_by)
    older = [v for v in versions if release_of(v) < release]  # type: ignore[operator]
    return EngineChoice(load_profile(older[-1] if older else versions[0]), False, named_by)


def engine_choice(config: ServingConfig) -> EngineChoice:
    return choose(config.image.tag, config.server.engineVersion)


def engine_profile(config: ServingConfig) -> EngineProfile:
    """The profile of the vLLM release `config` runs: the one function other components call."""
    return engine_choice(config).profile


def profile_having(option: str, below_or_above: EngineProfile) -> EngineProfile | None:
    """The nearest other supported release that has `option`, for a message; None when none has."""
    others = [load_profile(v) for v in supported_versions() if v != below_or_above.version]
    having = [p for p in others if option in p.options]
    return min(having, key=lambda p: abs(p.release[1] - below_or_above.release[1]), default=None)
