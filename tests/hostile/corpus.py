"""Hostile and malformed stack files, each with what its refusal must name.

Every case is a whole stack file (text, or bytes where the encoding is the point), the class of
input it stands for, and the strings stderr must hold: the key path (`vllm-serving:model.volume.size`),
or for a file that is not readable text at all, where in it the problem is. `absent` lists strings
that must never appear (a secret's ciphertext or plain value, a megabyte value).

Cases that the config validation does not refuse yet are in pending_validation.yaml, not here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vllm_serving.safe_yaml import MAX_FILE_BYTES


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # the class of hostile input it stands for
    content: str | bytes
    names: tuple[str, ...]
    absent: tuple[str, ...] = ()


MODEL = {"deployName": "m", "source": "huggingface", "huggingface": {"id": "org/m"}}
MODEL_LINE = f"  vllm-serving:model: {json.dumps(MODEL)}\n"
CIPHERTEXT = "v1:c2FsdA==:Y2lwaGVydGV4dEhPU1RJTEU="
PLAIN_KEY = "sk-plaintextHOSTILE1234567890"
HUGE = "h" * 900_000  # under the file limit, far over any name's


def stack(**keys: Any) -> str:
    """A stack file with the valid model and these `vllm-serving:` keys, structured values as JSON flow."""
    keys.setdefault("model", MODEL)
    return "config:\n" + "".join(f"  vllm-serving:{key}: {json.dumps(value)}\n" for key, value in keys.items())


def _model(**fields: Any) -> dict[str, Any]:
    return {**MODEL, **fields}


BILLION_LAUGHS = (
    "config:\n" + MODEL_LINE + "  vllm-serving:env:\n"
    + '    - &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"    - &{b} [*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))
)

CASES = [
    # --- bytes that are not UTF-8 text ---
    Case("latin1-value", "not UTF-8", b"config:\n" + MODEL_LINE.encode() + b"  vllm-serving:namespace: caf\xe9\n",
         ("not UTF-8", "line 3")),
    Case("invalid-byte-in-structured-value", "not UTF-8",
         b"config:\n  vllm-serving:model:\n    deployName: m\xc3\x28\n", ("not UTF-8", "byte 0xc3 at line 3")),
    Case("utf16-with-bom", "UTF-16", stack().encode("utf-16"), ("UTF-16", "save it as UTF-8")),
    Case("utf16-without-bom", "UTF-16", stack().encode("utf-16-le"), ("NUL byte at line 1", "UTF-16")),
    Case("utf32-with-bom", "UTF-16", stack().encode("utf-32"), ("UTF-32",)),
    Case("control-character", "not YAML text", stack(namespace="a\x07b").replace("\\u0007", "\x07"),
         ("control character U+0007 at line 2",)),
    # --- YAML tags outside the JSON types ---
    Case("binary-in-structured-value", "YAML tag", "config:\n  vllm-serving:model:\n    deployName: m\n"
         "    volume: {size: !!binary MjRHaQ==}\n", ("vllm-serving:model.volume.size:", "!!binary")),
    Case("set-in-structured-value", "YAML tag", "config:\n" + MODEL_LINE + "  vllm-serving:server:\n"
         "    extraArgs: !!set {--a, --b}\n", ("vllm-serving:server.extraArgs:", "!!set")),
    Case("python-object", "YAML tag", "config:\n" + MODEL_LINE
         + '  vllm-serving:namespace: !!python/object/apply:os.system ["echo HOSTILE"]\n',
         ("vllm-serving:namespace:", "!!python/object/apply:os.system"), ("HOSTILE",)),
    Case("explicit-timestamp", "YAML tag", "config:\n" + MODEL_LINE + "  vllm-serving:image: {tag: !!timestamp 2024-01-01}\n",
         ("vllm-serving:image.tag:", "!!timestamp")),
    Case("unquoted-date-as-quantity", "YAML tag", "config:\n  vllm-serving:model:\n    deployName: m\n"
         "    source: huggingface\n    huggingface: {id: org/m}\n    volume: {size: 2024-01-01}\n",
         ("vllm-serving:model.volume.size:",)),
    Case("custom-tag", "YAML tag", "config:\n" + MODEL_LINE + "  vllm-serving:env: [!secret {name: A, value: b}]\n",
         ("vllm-serving:env[0]:", "!secret")),
    Case("omap", "YAML tag", "config:\n" + MODEL_LINE + "  vllm-serving:server: !!omap [{port: 1}]\n",
         ("vllm-serving:server:", "!!omap")),
    Case("merge-key", "YAML tag", "config:\n  vllm-serving:model:\n    <<: {deployName: m}\n    source: huggingface\n",
         ("vllm-serving:model.<<:", "merge keys")),
    Case("infinity", "YAML tag", stack(resources={"limits": {"cpu": 1}}).replace('"cpu": 1', '"cpu": .inf'),
         ("vllm-serving:resources.limits.cpu:", "finite")),
    # --- nesting, aliases, sizes ---
    Case("deep-flow-nesting", "deep nesting", "config:\n  vllm-serving:model: " + "[" * 5000 + "]" * 5000 + "\n",
         ("vllm-serving:model[0][0]", "nested more than 32 levels")),
    Case("deep-block-nesting", "deep nesting", "config:\n  vllm-serving:env:\n    " + "- " * 5000 + "x\n",
         ("vllm-serving:env[0][0]", "nested more than 32 levels")),
    Case("deep-mapping-nesting", "deep nesting", "config:\n  vllm-serving:model: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
         ("vllm-serving:model.a.a", "nested more than 32 levels")),
    Case("billion-laughs", "alias bomb", BILLION_LAUGHS, ("vllm-serving:env[1][0]:", "alias *a")),
    Case("recursive-alias", "alias bomb", "config:\n" + MODEL_LINE + "  vllm-serving:server: &loop {extraArgs: *loop}\n",
         ("vllm-serving:server.extraArgs:", "alias *loop")),
    Case("alias-as-key", "alias bomb", "config:\n  vllm-serving:model: &m {deployName: m}\n  *m : 1\n",
         ("config:", "alias used as a key")),
    Case("huge-file", "huge file", stack(namespace="x" * (MAX_FILE_BYTES + 10)), (f"larger than {MAX_FILE_BYTES} bytes",),
         ("x" * 100,)),
    Case("huge-namespace", "huge value", stack(namespace=HUGE), ("vllm-serving:namespace:",), (HUGE[:200],)),
    Case("huge-deploy-name", "huge value", stack(model=_model(deployName=HUGE)), ("vllm-serving:model.deployName:",),
         (HUGE[:200],)),
    Case("huge-integer", "huge value", stack(replicaCount=10 ** 60), ("vllm-serving:replicaCount:", "more than 40 characters")),
    Case("int64-overflow", "huge value", "config:\n" + MODEL_LINE + "  vllm-serving:server: {port: 9223372036854775808}\n",
         ("vllm-serving:server.port:", "64-bit")),
    Case("thousands-of-unknown-keys", "huge value", stack(model={**MODEL, **{f"k{i}": 1 for i in range(3000)}}),
         ("vllm-serving:model.k0:", "more lines")),
    # --- keys given twice ---
    Case("duplicate-top-level-key", "duplicate key", stack() + "  vllm-serving:replicaCount: 1\n  vllm-serving:replicaCount: 2\n",
         ("vllm-serving:replicaCount:", "duplicate key (line 4; first at line 3)")),
    Case("duplicate-model", "duplicate key", stack() + '  vllm-serving:model: {"deployName": "other"}\n',
         ("vllm-serving:model:", "duplicate key")),
    Case("duplicate-nested-key", "duplicate key", "config:\n  vllm-serving:model:\n    deployName: m\n    source: huggingface\n"
         "    huggingface: {id: org/m}\n    volume:\n      size: 24Gi\n      size: 1Ti\n",
         ("vllm-serving:model.volume.size:", "duplicate key (line 8; first at line 7)")),
    Case("duplicate-key-in-list-item", "duplicate key", "config:\n" + MODEL_LINE + "  vllm-serving:env:\n"
         "    - {name: A, value: x, name: B}\n", ("vllm-serving:env[0].name:", "duplicate key")),
    Case("duplicate-config", "duplicate key", stack() + "config: {}\n", ("config:", "duplicate key")),
    # --- namespaces and key shapes ---
    Case("misspelt-namespace", "misspelt namespace", stack() + "  vllm-servng:replicaCount: 2\n",
         ("vllm-servng:replicaCount:", "did you mean vllm-serving:replicaCount?")),
    Case("unknown-namespace", "misspelt namespace", stack() + "  k8s:context: prod\n", ("k8s:context:", "unknown namespace")),
    Case("key-without-namespace", "misspelt namespace", stack() + "  replicaCount: 2\n", ("replicaCount:", "vllm-serving:replicaCount")),
    Case("misspelt-config", "misspelt namespace", stack().replace("config:", "confg:"), ("confg:", "did you mean config?")),
    Case("flat-structured-key", "flat structured key", stack() + "  vllm-serving:model.volume.size: 24Gi\n",
         ("vllm-serving:model.volume.size:", "pulumi config set --path model.volume.size")),
    Case("flat-list-key", "flat structured key", stack() + "  vllm-serving:env[0].name: A\n",
         ("vllm-serving:env[0].name:", "--path")),
    Case("list-as-key", "not a stack file", "config:\n  ? [a, b]\n  : 1\n", ("config:", "list used as a key")),
    Case("two-documents", "not a stack file", stack() + "---\nconfig: {}\n", ("more than one YAML document",)),
    Case("top-level-list", "not a stack file", "- config\n", ("expected a mapping", "got a list")),
    Case("config-is-a-list", "not a stack file", "config: [a]\n", ("config:", "got a list")),
    Case("unclosed-bracket", "not a stack file", "config:\n  vllm-serving:model: {deployName: m\n", ("not valid YAML", "line")),
    # --- secrets are never echoed ---
    Case("malformed-secure", "secret", stack(apiKey={"secure": 12345}), ("vllm-serving:apiKey.secure:",)),
    Case("secure-key-beside-an-error", "secret", stack(model=_model(deployName="BAD"), apiKey={"secure": CIPHERTEXT}),
         ("vllm-serving:model.deployName:",), (CIPHERTEXT, "Y2lwaGVydGV4dEhPU1RJTEU")),
    Case("plain-key-beside-an-error", "secret", stack(model=_model(deployName="BAD"), apiKey=PLAIN_KEY),
         ("vllm-serving:apiKey:", "vllm-serving:model.deployName:"), (PLAIN_KEY,)),
    # --- config validation that refuses these today ---
    Case("bad-deploy-name", "config validation", stack(model=_model(deployName="CodeLlama")), ("vllm-serving:model.deployName:",)),
    Case("bad-volume-size", "config validation", stack(model=_model(volume={"size": "24GB"})), ("vllm-serving:model.volume.size:",)),
    Case("negative-replicas", "config validation", stack(replicaCount=-1), ("vllm-serving:replicaCount:",)),
    Case("unknown-key", "config validation", stack(model=_model(deploy_name="m")), ("vllm-serving:model.deploy_name:",)),
    Case("extra-args-api-key", "config validation", stack(server={"extraArgs": ["--api-key=abc"]}), ("vllm-serving:server.extraArgs[0]:",),
         ("abc",)),
    Case("bad-pull-secret", "config validation", stack(imagePullSecrets=["Bad_Name"]), ("vllm-serving:imagePullSecrets",)),
    Case("wrong-type-model", "config validation", stack(model="m"), ("vllm-serving:model:",)),
    Case("wrong-type-env", "config validation", stack(env={"A": "b"}), ("vllm-serving:env:",)),
]
