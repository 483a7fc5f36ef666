"""The checks of the vllm-serving policy pack, as plain functions.

Each check takes a resource's Pulumi type token and its input properties (the
Kubernetes object in its own camelCase shape) and returns one message per
violation. Nothing here needs a Pulumi engine or pulumi_policy: the pack's
__main__.py wires these into ResourceValidationPolicies, and the tests feed them
resources directly.

Props may be plain dicts and lists (tests) or pulumi_policy's read-only proxies
(a Mapping and a Sequence that raise on values unknown during preview), so
only the abstract collection types are relied on, and only the fields a check
needs are read: touching an unrelated unknown value would turn the whole check
into a "can't run during preview" advisory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterator, Optional

Props = Mapping[str, Any]
Check = Callable[[str, Props], list[str]]

# Where each workload kind keeps its pod spec. Deployments, Jobs and Pods are what
# this project creates; the other controllers are listed so that moving the server
# to one of them cannot step around the pack.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
PVC_TYPE = "kubernetes:core/v1:PersistentVolumeClaim"
GPU_RESOURCE = "nvidia.com/gpu"
# Set by the program on a claim it creates, when it knows how big the model is.
MODEL_BYTES_ANNOTATION = "vllm-serving/model-bytes"


# --- reading props ----------------------------------------------------------------------------


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else ()


def _strings(value: Any) -> list[str]:
    return [item for item in _list(value) if isinstance(item, str)]


def pod_spec(resource_type: str, props: Props) -> Optional[Mapping[str, Any]]:
    path = POD_SPEC_PATHS.get(resource_type)
    spec = _get(props, *path) if path else None
    return spec if isinstance(spec, Mapping) else None


def containers(resource_type: str, props: Props) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(label for messages, container) for every container and init container of a workload."""
    spec = pod_spec(resource_type, props)
    if spec is None:
        return
    for field, what in (("initContainers", "init container"), ("containers", "container")):
        for index, container in enumerate(_list(spec.get(field))):
            if isinstance(container, Mapping):
                name = container.get("name")
                yield (f"{what} {name!r}" if isinstance(name, str) and name else f"{field}[{index}]"), container


# --- Kubernetes quantities --------------------------------------------------------------------

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[numkMGTPE])|[eE](?P<exponent>[+-]?\d+))?"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 10**3),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}


class QuantityError(ValueError):
    pass


def parse_quantity(value: Any) -> Fraction:
    """A Kubernetes resource.Quantity as an exact number (bytes, cores, devices).

    Exact, because "1Gi" vs "1073741824" or "0.5" vs "500m" must compare equal;
    numbers are accepted because Pulumi's wire format carries YAML's `gpu: 1` as 1.0.
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a Kubernetes quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QuantityError(f"{value!r} is not a Kubernetes quantity")
        return Fraction(repr(value))
    if not isinstance(value, str):
        raise QuantityError(f"{value!r} is not a Kubernetes quantity")
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise QuantityError(
            f"{value!r} is not a Kubernetes quantity (a number with an optional suffix Ki, Mi, Gi, Ti, "
            "Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent, e.g. 24Gi)"
        )
    number = Fraction(match["number"])
    if match["binary"]:
        return number * _BINARY[match["binary"]]
    if match["decimal"]:
        return number * _DECIMAL[match["decimal"]]
    if match["exponent"]:
        return number * Fraction(10) ** int(match["exponent"])
    return number


def _format_bytes(value: Fraction | int) -> str:
    return f"{float(value) / 2**30:.1f}Gi ({int(value)} bytes)"


# --- images -----------------------------------------------------------------------------------

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def split_image(image: str) -> tuple[str, str, Optional[str], Optional[str]]:
    """(registry, repository, tag, digest) of an image reference; registry "" when implicit."""
    name, _, digest = image.partition("@")
    # A ':' after the last '/' starts the tag; one before it is a registry port.
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    first, _, rest = name.partition("/")
    # Docker's rule: the first component is a registry only if it looks like a host.
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = "", name
    return registry, repository, tag, (digest if "@" in image else None)


def _image_problem(image: Any) -> Optional[str]:
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    _, repository, tag, digest = split_image(image.strip())
    if digest is not None:
        # A digest names the exact bytes, whatever tag rides along with it.
        if _DIGEST.fullmatch(digest):
            return None
        return f"image {image!r} has a malformed digest (expected @sha256:<64 hex digits>)"
    if not repository:
        return f"image {image!r} has no repository"
    if tag is None:
        return f"image {image!r} has no tag, so it means :latest"
    if not tag:
        return f"image {image!r} has an empty tag"
    if tag.lower() == "latest":
        return f"image {image!r} uses the moving tag :latest"
    return None


def check_image_pinned(resource_type: str, props: Props) -> list[str]:
    """Every container names a fixed image: a tag other than latest, or a digest."""
    violations = []
    for where, container in containers(resource_type, props):
        problem = _image_problem(container.get("image"))
        if problem:
            violations.append(
                f"{where} {problem}: a restart or a new node could then pull a different server than the one "
                "reviewed; pin a release tag (e.g. vllm/vllm-openai:v0.33.0) or a digest (@sha256:...)"
            )
    return violations


# --- which containers are vLLM servers --------------------------------------------------------

# Shell words: a `sh -c "... vllm serve ..."` script is split the way a shell would, roughly.
_WORD_SEPARATORS = re.compile(r"[\s;&|()<>'\"`]+")
# Arguments, keeping $(VAR) references whole.
_ARG_SEPARATORS = re.compile(r"[\s'\"]+")
# The `vllm` CLI, by name or by path; a word with '=' or other punctuation is an argument, not a program.
_VLLM_PROGRAM = re.compile(r"(?:[\w.+-]*/)*vllm")


def _words(values: Sequence[str], separators: re.Pattern[str] = _WORD_SEPARATORS) -> list[str]:
    return [word for value in values for word in separators.split(value) if word]


def _invokes_vllm(values: Sequence[str]) -> bool:
    words = _words(values)
    for index, word in enumerate(words):
        if _VLLM_PROGRAM.fullmatch(word) or word.startswith("vllm.entrypoints"):
            return True
        if index > 0 and words[index - 1] == "-m" and (word == "vllm" or word.startswith("vllm.")):
            return True
    return False


def runs_vllm_server(container: Mapping[str, Any]) -> bool:
    """Whether a container runs the vLLM server.

    Either its command (or, without a command, its args) starts vllm, or it runs
    the entrypoint of an image whose repository is vLLM's. A vLLM image with a
    command of its own (a download or a wait-for-model step, say) runs that
    command, not the server, and needs no GPU.
    """
    command = _strings(container.get("command"))
    if command:
        return _invokes_vllm(command + _strings(container.get("args")))
    if _invokes_vllm(_strings(container.get("args"))):
        return True
    image = container.get("image")
    return isinstance(image, str) and "vllm" in split_image(image)[1].lower()


def server_containers(resource_type: str, props: Props) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for where, container in containers(resource_type, props):
        if runs_vllm_server(container):
            yield where, container


def check_vllm_gpu(resource_type: str, props: Props) -> list[str]:
    """A vLLM server asks for a whole number of GPUs, at least one."""
    violations = []
    for where, container in server_containers(resource_type, props):
        limit = _get(container, "resources", "limits", GPU_RESOURCE)
        if limit is None:
            violations.append(
                f"{where} runs vLLM without a {GPU_RESOURCE} limit: it would be scheduled on a node "
                f"without a GPU and fail to start; set resources.limits.{GPU_RESOURCE} to 1 or more"
            )
            continue
        try:
            count = parse_quantity(limit)
        except QuantityError as error:
            violations.append(f"{where}: {GPU_RESOURCE} limit {error}")
            continue
        if count.denominator != 1 or count < 1:
            violations.append(
                f"{where} runs vLLM with a {GPU_RESOURCE} limit of {limit!r}: GPUs are whole devices "
                "(Kubernetes refuses fractions) and vLLM needs at least one; use an integer of 1 or more"
            )
    return violations


_PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
_PROBE_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")


def check_vllm_probes(resource_type: str, props: Props) -> list[str]:
    """A vLLM server has startup, readiness and liveness probes."""
    why = {
        "startupProbe": "without it, a liveness probe kills the server while it is still loading the weights",
        "readinessProbe": "without it, the Service sends requests to a server that cannot answer yet",
        "livenessProbe": "without it, a hung server (e.g. a stuck GPU) is never restarted",
    }
    violations = []
    for where, container in server_containers(resource_type, props):
        for probe in _PROBES:
            value = container.get(probe)
            if not isinstance(value, Mapping) or not any(handler in value for handler in _PROBE_HANDLERS):
                violations.append(f"{where} runs vLLM without a {probe} (e.g. httpGet /health): {why[probe]}")
    return violations


# --- requests and limits ----------------------------------------------------------------------


def check_requests_within_limits(resource_type: str, props: Props) -> list[str]:
    """No container requests more of a resource than its limit (memory foremost)."""
    violations = []
    for where, container in containers(resource_type, props):
        requests = _get(container, "resources", "requests")
        limits = _get(container, "resources", "limits")
        if not isinstance(requests, Mapping) or not isinstance(limits, Mapping):
            continue
        for resource in requests:
            if resource not in limits:
                continue
            try:
                request, limit = parse_quantity(requests[resource]), parse_quantity(limits[resource])
            except QuantityError as error:
                violations.append(f"{where}: {resource}: {error}")
                continue
            if request > limit:
                violations.append(
                    f"{where} requests {requests[resource]!r} of {resource} but is limited to {limits[resource]!r}: "
                    "Kubernetes refuses the pod; raise the limit or lower the request"
                )
    return violations


# --- secrets ----------------------------------------------------------------------------------

# A whole word of the name (between '_', '.', '-' or the ends): TOKENIZERS_PARALLELISM is not a token.
_SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|"
    r"(?:API|ACCESS|SECRET|PRIVATE|SSH|SIGNING|ENCRYPTION)[_.-]?KEY)(?:[_.-]|$)",
    re.IGNORECASE,
)
# Kubernetes expands $(OTHER_VAR) in env values and args, and a shell script expands $VAR and ${VAR}:
# a reference to a variable (set from a Secret, say), not a value.
_VAR_REFERENCE = re.compile(r"\$(?:\([A-Za-z_][\w.-]*\)|\{[A-Za-z_]\w*\}|[A-Za-z_]\w*)")
TOKEN_FORMATS: dict[str, re.Pattern[str]] = {
    "a Hugging Face token (hf_...)": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "a GitHub token (ghp_...)": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})\b"),
    "a GitLab token (glpat-...)": re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),
    "an AWS access key id (AKIA...)": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "an API secret key (sk-...)": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<password>[^/\s@]+)@", re.IGNORECASE)
# vLLM's own `--api-key`, and the like, given a literal on the command line; vLLM's parser reads
# `--api_key` as `--api-key`, so both spellings count.
_SECRET_FLAG = re.compile(r"--?(?:[\w-]*[-_])?(?:api[-_]?key|token|password|secret)(?:=(?P<value>.*))?", re.IGNORECASE)


def find_tokens(text: str) -> list[str]:
    """What kinds of credentials text contains, by their well-known formats."""
    found = [kind for kind, pattern in TOKEN_FORMATS.items() if pattern.search(text)]
    for match in _URL_PASSWORD.finditer(text):
        if not _VAR_REFERENCE.fullmatch(match["password"]):
            found.append("a password inside a URL (scheme://user:password@host)")
            break
    return found


def _literal_secret_value(value: str) -> bool:
    # Empty, a reference to another variable, or the path of a mounted file: where a secret
    # lives, not the secret (GOOGLE_APPLICATION_CREDENTIALS=/var/run/..., TOKEN_FILE=...).
    stripped = value.strip()
    return bool(stripped) and not _VAR_REFERENCE.fullmatch(stripped) and not re.fullmatch(r"/\S*", stripped)


def check_no_plaintext_secrets(resource_type: str, props: Props) -> list[str]:
    """Credentials reach containers by reference to a Secret, never as literal text in the spec."""
    advice = "anyone who can read the workload (kubectl get -o yaml, Pulumi state) sees it; use valueFrom.secretKeyRef"
    violations = []
    for where, container in containers(resource_type, props):
        for index, var in enumerate(_list(container.get("env"))):
            if not isinstance(var, Mapping):
                continue
            name = var.get("name") if isinstance(var.get("name"), str) else f"env[{index}]"
            value = var.get("value")
            if not isinstance(value, str):
                continue
            kinds = find_tokens(value)
            if kinds:
                violations.append(f"{where}: env {name} holds {', '.join(kinds)} as a literal value: {advice}")
            elif _SECRET_NAME.search(name) and _literal_secret_value(value):
                violations.append(f"{where}: env {name} looks like a credential and has a literal value: {advice}")
        command_line = _strings(container.get("command")) + _strings(container.get("args"))
        kinds = sorted({kind for part in command_line for kind in find_tokens(part)})
        if kinds:
            violations.append(f"{where}: its command line holds {', '.join(kinds)}: {advice} and $(VAR) in args")
        words = _words(command_line, _ARG_SEPARATORS)
        for index, word in enumerate(words):
            flag = _SECRET_FLAG.fullmatch(word)
            if flag is None:
                continue
            value = flag["value"]
            if not value:
                following = words[index + 1] if index + 1 < len(words) else ""
                value = "" if following.startswith("-") else following
            if _literal_secret_value(value):
                violations.append(
                    f"{where}: its command line passes {word.split('=')[0]} a literal value: {advice} "
                    "and pass it as $(VAR), or use the server's environment variable (e.g. VLLM_API_KEY)"
                )
    return violations


# --- the model volume -------------------------------------------------------------------------


def check_model_volume_size(resource_type: str, props: Props) -> list[str]:
    """A claim annotated with the model's size requests at least that much storage."""
    if resource_type != PVC_TYPE:
        return []
    annotation = _get(props, "metadata", "annotations", MODEL_BYTES_ANNOTATION)
    if annotation is None:
        # The size is not known (an existing claim, or a program that does not annotate): nothing to compare.
        return []
    text = str(annotation).strip()
    if isinstance(annotation, bool) or not re.fullmatch(r"\d+", text):
        return [f"annotation {MODEL_BYTES_ANNOTATION} is {annotation!r}; it must be a whole number of bytes"]
    model_bytes = int(text)
    storage = _get(props, "spec", "resources", "requests", "storage")
    if storage is None:
        return [f"the claim requests no storage, but the model needs {_format_bytes(model_bytes)}"]
    try:
        size = parse_quantity(storage)
    except QuantityError as error:
        return [f"spec.resources.requests.storage: {error}"]
    if size < model_bytes:
        return [
            f"the claim requests {storage!r} = {_format_bytes(size)}, less than the model's "
            f"{_format_bytes(model_bytes)}: the download would fail with a full disk after hours of work; "
            "raise model.volume.size"
        ]
    return []


# --- the pack's contents ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Check


RULES: tuple[Rule, ...] = (
    Rule(
        "pinned-images",
        "Containers run a pinned image: a tag other than latest, or a @sha256 digest.",
        check_image_pinned,
    ),
    Rule(
        "vllm-server-gpu",
        "A container running vLLM has an integral nvidia.com/gpu limit of at least 1.",
        check_vllm_gpu,
    ),
    Rule(
        "vllm-server-probes",
        "A container running vLLM has startup, readiness and liveness probes.",
        check_vllm_probes,
    ),
    Rule(
        "requests-within-limits",
        "No container requests more memory (or any other resource) than its limit.",
        check_requests_within_limits,
    ),
    Rule(
        "no-plaintext-secrets",
        "Credentials come from Secrets (valueFrom), not literal env values or command-line arguments.",
        check_no_plaintext_secrets,
    ),
    Rule(
        "model-volume-fits-model",
        f"A PersistentVolumeClaim annotated {MODEL_BYTES_ANNOTATION} requests at least that much storage.",
        check_model_volume_size,
    ),
)


def violations(resource_type: str, props: Props) -> dict[str, list[str]]:
    """Every rule's violations for one resource, by rule name; rules without any are left out."""
    found = {rule.name: rule.check(resource_type, props) for rule in RULES}
    return {name: messages for name, messages in found.items() if messages}
