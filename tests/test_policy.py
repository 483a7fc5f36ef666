"""The policy pack (policy/): each rule against resources that must pass and resources that must not.

The rules are plain functions (policy/rules/); the pack itself is exercised the
way the Pulumi CLI runs it, as a gRPC analyzer process, at the end.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from fractions import Fraction
from typing import Any

import pytest

from policy import rules
from vllm_serving.render import render
from vllm_serving.stack_file import PROJECT_ROOT, STACKS_DIR

POLICY_DIR = PROJECT_ROOT / "policy"
STACK_FILES = sorted(STACKS_DIR.glob("Pulumi.*.yaml"))

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
POD = "kubernetes:core/v1:Pod"
CRONJOB = "kubernetes:batch/v1:CronJob"
PVC = rules.PVC_TYPE
LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"

HF_TOKEN = "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bD1fH3j"
PROBE = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10}


def server(**overrides: Any) -> dict[str, Any]:
    """A vLLM server container that passes every rule."""
    container = {
        "name": "vllm",
        "image": "docker.io/vllm/vllm-openai:v0.33.0",
        "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
        "args": ["--model=/model", "--tensor-parallel-size=1"],
        "resources": {
            "requests": {"cpu": "4", "memory": "64Gi", "nvidia.com/gpu": "1"},
            "limits": {"cpu": "4", "memory": "64Gi", "nvidia.com/gpu": "1"},
        },
        "startupProbe": PROBE,
        "readinessProbe": PROBE,
        "livenessProbe": PROBE,
    }
    container.update(overrides)
    return {key: value for key, value in container.items() if value is not None}


def helper(**overrides: Any) -> dict[str, Any]:
    """A container that is not a vLLM server (no GPU, no probes)."""
    container = {"name": "helper", "image": "docker.io/library/busybox:1.37.0", "command": ["sh", "-c", "true"]}
    container.update(overrides)
    return {key: value for key, value in container.items() if value is not None}


def pod_spec(containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers}
    if init:
        spec["initContainers"] = init
    return spec


def workload(resource_type: str, containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None):
    spec = pod_spec(containers, init)
    if resource_type == POD:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    if resource_type == CRONJOB:
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "c"},
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": spec}}}},
        }
    kind = resource_type.rsplit(":", 1)[1]
    return {"kind": kind, "metadata": {"name": "w"}, "spec": {"template": {"spec": spec}}}


def deployment(*containers: dict[str, Any], init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return workload(DEPLOYMENT, list(containers), init)


def check(rule: str, resource_type: str, props: dict[str, Any]) -> list[str]:
    return next(r for r in rules.RULES if r.name == rule).check(resource_type, props)


def pvc(storage: Any = "40Gi", model_bytes: Any = None, copies: Any = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "m-model"}
    if model_bytes is not None:
        metadata["annotations"] = {rules.MODEL_BYTES_ANNOTATION: model_bytes}
    if copies is not None:
        metadata.setdefault("annotations", {})[rules.MODEL_COPIES_ANNOTATION] = copies
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"]}
    if storage is not None:
        spec["resources"] = {"requests": {"storage": storage}}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


# --- quantities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1Gi", 2**30),
        ("1.5Gi", 3 * 2**29),
        ("1536Mi", 3 * 2**29),
        ("1Ki", 1024),
        ("2Ti", 2 * 2**40),
        ("1G", 10**9),
        ("1k", 1000),
        ("3M", 3 * 10**6),
        ("1T", 10**12),
        ("500m", Fraction(1, 2)),
        ("250u", Fraction(1, 4000)),
        ("1e3", 1000),
        ("1E3", 1000),
        ("5e-1", Fraction(1, 2)),
        ("1E", 10**18),
        (".5", Fraction(1, 2)),
        ("1.", 1),
        ("+2", 2),
        ("0", 0),
        (1, 1),
        (1.0, 1),
        (0.5, Fraction(1, 2)),
    ],
)
def test_quantities_parse_exactly(text, value):
    assert rules.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["24GB", "1gi", "1 Gi", "Gi", "", "one", "1e", "0x10", "1Gib", True, None, [1]])
def test_what_is_not_a_quantity_is_refused(text):
    with pytest.raises(rules.QuantityError):
        rules.parse_quantity(text)


# The pack runs in its own virtualenv with only policy/ on sys.path, so it cannot use the
# program's quantity parser (components.config) and keeps its own (policy/rules/quantity.py).
# These tables hold the two to one meaning: the same strings accepted, with the same value,
# and the same strings refused.
BOTH_ACCEPT = [
    "1Gi", "1.5Gi", "1536Mi", "1Ki", "2Ti", "1Pi", "1Ei", "1G", "1k", "3M", "1T", "2P", "1E", "500m", "250u",
    "100n", "1e3", "1E3", "5e-1", "12e+2", ".5", "1.", "+2", "0", "128974848", "24Gi", "0.5",
]
BOTH_REFUSE = ["24GB", "1gi", "1 Gi", "Gi", "one", "1e", "0x10", "1Gib", "100 gb", "1.5TB", "512MB", "1g", "5t"]


def _program_accepts(quantity: str) -> bool:
    """The program's quantity syntax, which every quantity key parses with. What a key also asks of
    the value (more than 0, held by Kubernetes as written, a memory floor) is a range, not syntax:
    tests/test_config_validation.py holds it."""
    from components.config.fields import quantity_value

    try:
        quantity_value(quantity)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("quantity", BOTH_ACCEPT)
def test_the_program_and_the_pack_read_a_quantity_alike(quantity):
    from components.config import quantity_bytes

    assert _program_accepts(quantity)
    # quantity_bytes is a float: equal to the pack's exact value within float rounding.
    assert quantity_bytes(quantity) == pytest.approx(float(rules.parse_quantity(quantity)), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("quantity", BOTH_REFUSE)
def test_the_program_and_the_pack_refuse_the_same_quantities(quantity):
    assert not _program_accepts(quantity)
    with pytest.raises(rules.QuantityError):
        rules.parse_quantity(quantity)


def test_only_the_pack_reads_a_negative_quantity():
    # Kubernetes' syntax allows a sign; the pack reads what any resource may hold, while the
    # program refuses a negative size or limit from its user.
    assert rules.parse_quantity("-1Gi") == -(2**30)
    assert not _program_accepts("-1Gi")


# --- pinned images ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "docker.io/vllm/vllm-openai:v0.33.0",
        "vllm/vllm-openai:v0.33.0",
        "registry.example.internal:5000/mirror/vllm-openai:v0.33.0",
        "localhost:5000/vllm:1",
        "vllm/vllm-openai@sha256:" + "a" * 64,
        "vllm/vllm-openai:latest@sha256:" + "0123456789abcdef" * 4,
    ],
)
def test_pinned_images_pass(image):
    assert check("pinned-images", DEPLOYMENT, deployment(server(image=image))) == []


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("vllm/vllm-openai:latest", ":latest"),
        ("vllm/vllm-openai:LATEST", ":latest"),
        ("vllm/vllm-openai", "no tag"),
        ("localhost:5000/vllm", "no tag"),
        ("vllm/vllm-openai:", "empty tag"),
        ("vllm/vllm-openai@sha256:abc", "malformed digest"),
        ("vllm/vllm-openai@", "malformed digest"),
        ("", "no image"),
        ("   ", "no image"),
        (None, "no image"),
    ],
)
def test_unpinned_images_are_refused(image, expected):
    found = check("pinned-images", DEPLOYMENT, deployment(server(image=image)))
    assert len(found) == 1 and expected in found[0] and "'vllm'" in found[0]


@pytest.mark.parametrize("resource_type", [DEPLOYMENT, JOB, POD, CRONJOB, "kubernetes:apps/v1:StatefulSet"])
def test_images_are_checked_in_every_workload_kind_and_init_container(resource_type):
    props = workload(resource_type, [server()], init=[helper(name="wait", image="busybox")])
    found = check("pinned-images", resource_type, props)
    assert len(found) == 1 and "init container 'wait'" in found[0]


def test_resources_without_pods_are_not_image_checked():
    config_map = {"kind": "ConfigMap", "data": {"image": "busybox"}, "spec": {"template": {"spec": {}}}}
    assert check("pinned-images", "kubernetes:core/v1:ConfigMap", config_map) == []


# --- which containers run vLLM ---------------------------------------------------------------


@pytest.mark.parametrize(
    "container",
    [
        server(),
        server(command=["vllm", "serve", "/model"], args=None),
        server(command=["/usr/local/bin/vllm"], args=["serve"]),
        server(command=["sh", "-c", "exec vllm serve /model --port 8000"], args=None),
        server(command=["python", "-m", "vllm.entrypoints.api_server"], args=None),
        # The image's own entrypoint is the server.
        server(command=None, args=["--model=/model"]),
        server(image="registry.example.internal/ml/vllm-rocm:v0.33.0", command=None, args=None),
        # Any image, when the command line starts vllm.
        server(image="registry.example.internal/ml/llm-server:1.0", command=None, args=["vllm", "serve"]),
    ],
)
def test_vllm_servers_are_recognised(container):
    assert rules.runs_vllm_server(container)


@pytest.mark.parametrize(
    "container",
    [
        # The program's download Job and wait-for-model init container run the vLLM image with a command of their own.
        helper(image="docker.io/vllm/vllm-openai:v0.33.0", command=["sh", "/scripts/download.sh"]),
        helper(
            image="docker.io/vllm/vllm-openai:v0.33.0",
            command=["sh", "-c", 'until [ "$(cat /model/.vllm-serving-complete)" = "abc" ]; do sleep 10; done'],
        ),
        helper(command=["python3", "/app/main.py"], args=["--model=/models/vllm", "--log=vllm.log"]),
        helper(image="vllm.registry.example.internal/tools/busybox:1.37.0", command=None),
        helper(image="docker.io/library/python:3.12", command=None, args=None),
    ],
)
def test_other_containers_are_not_taken_for_vllm_servers(container):
    assert not rules.runs_vllm_server(container)


# --- GPUs ------------------------------------------------------------------------------------


def with_gpu(limit: Any) -> dict[str, Any]:
    container = server()
    if limit is None:
        del container["resources"]["limits"]["nvidia.com/gpu"]
    else:
        container["resources"]["limits"]["nvidia.com/gpu"] = limit
    del container["resources"]["requests"]["nvidia.com/gpu"]
    return container


@pytest.mark.parametrize("limit", ["1", "8", 1, 1.0, 2, "1000m", "1e0"])
def test_whole_gpus_pass(limit):
    assert check("vllm-server-gpu", DEPLOYMENT, deployment(with_gpu(limit))) == []


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, "without a nvidia.com/gpu limit"),
        ("0", "'0'"),
        (0, "0"),
        ("0.5", "'0.5'"),
        (0.5, "0.5"),
        ("500m", "'500m'"),
        ("1.5", "'1.5'"),
        ("-1", "'-1'"),
        ("one", "not a Kubernetes quantity"),
        (True, "not a Kubernetes quantity"),
    ],
)
def test_missing_or_fractional_gpus_are_refused(limit, expected):
    found = check("vllm-server-gpu", DEPLOYMENT, deployment(with_gpu(limit)))
    assert len(found) == 1 and expected in found[0]


def test_containers_that_do_not_run_vllm_need_no_gpu():
    download = helper(image="docker.io/vllm/vllm-openai:v0.33.0", command=["sh", "/scripts/download.sh"])
    assert check("vllm-server-gpu", JOB, workload(JOB, [download])) == []


def test_a_vllm_server_in_a_bare_pod_needs_a_gpu_too():
    found = check("vllm-server-gpu", POD, workload(POD, [with_gpu(None)]))
    assert len(found) == 1


# --- probes ----------------------------------------------------------------------------------


def test_a_server_with_all_three_probes_passes():
    assert check("vllm-server-probes", DEPLOYMENT, deployment(server())) == []


@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
@pytest.mark.parametrize("value", [None, {}, {"periodSeconds": 10}])
def test_a_server_without_a_probe_is_refused(probe, value):
    found = check("vllm-server-probes", DEPLOYMENT, deployment(server(**{probe: value})))
    assert len(found) == 1 and probe in found[0]


def test_other_containers_need_no_probes():
    assert check("vllm-server-probes", DEPLOYMENT, deployment(server(), helper())) == []


@pytest.mark.parametrize("handler", [{"tcpSocket": {"port": 8000}}, {"exec": {"command": ["true"]}}, {"grpc": {"port": 1}}])
def test_any_probe_handler_counts(handler):
    container = server(startupProbe=handler, readinessProbe=handler, livenessProbe=handler)
    assert check("vllm-server-probes", DEPLOYMENT, deployment(container)) == []


# --- requests within limits ------------------------------------------------------------------


def resources(requests: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    return helper(resources={"requests": requests, "limits": limits})


@pytest.mark.parametrize(
    ("requests", "limits"),
    [
        ({"memory": "1Gi"}, {"memory": "1Gi"}),
        ({"memory": "1073741824"}, {"memory": "1Gi"}),
        ({"memory": "1.5Gi"}, {"memory": "1536Mi"}),
        ({"memory": "900Mi"}, {"memory": "1Gi"}),
        ({"memory": "1G"}, {"memory": "1Gi"}),
        ({"memory": "64Gi"}, {}),
        ({}, {"memory": "64Gi"}),
        ({"cpu": "500m"}, {"cpu": "1"}),
        ({"cpu": 0.5}, {"cpu": "500m"}),
    ],
)
def test_requests_within_limits_pass(requests, limits):
    assert check("requests-within-limits", DEPLOYMENT, deployment(resources(requests, limits))) == []


@pytest.mark.parametrize(
    ("requests", "limits", "expected"),
    [
        ({"memory": "2Gi"}, {"memory": "1Gi"}, "'2Gi' of memory"),
        ({"memory": "1025Mi"}, {"memory": "1Gi"}, "memory"),
        ({"memory": "1Gi"}, {"memory": "1G"}, "memory"),
        ({"memory": "1e10"}, {"memory": "9G"}, "memory"),
        ({"cpu": "1500m"}, {"cpu": "1"}, "cpu"),
        ({"memory": "24GB"}, {"memory": "32Gi"}, "not a Kubernetes quantity"),
    ],
)
def test_requests_above_limits_are_refused(requests, limits, expected):
    found = check("requests-within-limits", DEPLOYMENT, deployment(resources(requests, limits)))
    assert len(found) == 1 and expected in found[0]


def test_init_containers_requests_are_checked_too():
    init = helper(name="wait", resources={"requests": {"memory": "128Mi"}, "limits": {"memory": "64Mi"}})
    found = check("requests-within-limits", DEPLOYMENT, deployment(server(), init=[init]))
    assert len(found) == 1 and "init container 'wait'" in found[0]


# --- secrets ---------------------------------------------------------------------------------


SECRET_REF = {"secretKeyRef": {"name": "hf-token", "key": "token"}}


@pytest.mark.parametrize(
    "env",
    [
        {"name": "HF_TOKEN", "valueFrom": SECRET_REF},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": SECRET_REF},
        {"name": "HF_TOKEN", "value": ""},
        {"name": "TOKENIZERS_PARALLELISM", "value": "false"},
        {"name": "VLLM_MAX_TOKENS", "value": "4096"},
        {"name": "HF_TOKEN_PATH", "value": "/var/run/secrets/hf/token"},
        {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/var/run/secrets/gcp/key.json"},
        {"name": "HUGGING_FACE_HUB_TOKEN", "value": "$(HF_TOKEN)"},
        {"name": "HTTP_PROXY", "value": "http://proxy.example.internal:3128"},
        {"name": "MODEL_ID", "value": "hf_internal/model"},
        {"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "1"},
    ],
)
def test_references_and_harmless_values_pass(env):
    assert check("no-plaintext-secrets", DEPLOYMENT, deployment(server(env=[env]))) == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"name": "HF_TOKEN", "value": "not-a-known-format"}, "HF_TOKEN looks like a credential"),
        ({"name": "hf_token", "value": "xyz"}, "hf_token looks like a credential"),
        ({"name": "VLLM_API_KEY", "value": "xyz"}, "VLLM_API_KEY"),
        ({"name": "OPENAI_APIKEY", "value": "xyz"}, "OPENAI_APIKEY"),
        ({"name": "AWS_SECRET_ACCESS_KEY", "value": "xyz"}, "AWS_SECRET_ACCESS_KEY"),
        ({"name": "AWS_ACCESS_KEY_ID", "value": "xyz"}, "AWS_ACCESS_KEY_ID"),
        ({"name": "DB_PASSWORD", "value": "xyz"}, "DB_PASSWORD"),
        ({"name": "GIT_CREDENTIALS", "value": "user:pw"}, "GIT_CREDENTIALS"),
        ({"name": "EXTRA", "value": HF_TOKEN}, "Hugging Face token"),
        ({"name": "EXTRA", "value": "ghp_" + "A1b2C3d4E5" * 4}, "GitHub token"),
        ({"name": "EXTRA", "value": "github_pat_" + "A1b2C3d4E5_" * 3}, "GitHub token"),
        ({"name": "EXTRA", "value": "glpat-" + "A1b2C3d4E5" * 2}, "GitLab token"),
        ({"name": "EXTRA", "value": "AKIA" + "ABCDEFGHIJKLMNOP"}, "AWS access key id"),
        ({"name": "EXTRA", "value": "sk-proj-" + "A1b2C3d4E5" * 3}, "API secret key"),
        ({"name": "EXTRA", "value": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc"}, "private key"),
        ({"name": "HTTPS_PROXY", "value": "http://alice:s3cr3t@proxy.example.internal:3128"}, "password inside a URL"),
    ],
)
def test_literal_credentials_in_env_are_refused(env, expected):
    found = check("no-plaintext-secrets", DEPLOYMENT, deployment(server(env=[env])))
    assert len(found) == 1 and expected in found[0]
    # The report ends up in CI logs: it names the variable, never the value.
    assert env["value"] not in found[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--api-key=not-a-known-format"],
        ["--api-key", "not-a-known-format"],
        ["--hf-token=xyz"],
        # vLLM reads underscores in flag names as dashes.
        ["--api_key=xyz"],
        ["--download-dir=/models", f"--note={HF_TOKEN}"],
    ],
)
def test_literal_credentials_on_the_command_line_are_refused(args):
    found = check("no-plaintext-secrets", DEPLOYMENT, deployment(server(args=["--model=/model", *args])))
    assert len(found) == 1
    assert "not-a-known-format" not in found[0] and "xyz" not in found[0] and HF_TOKEN not in found[0]


def test_a_token_inside_a_shell_script_is_refused():
    container = server(command=["sh", "-c", f"HF_TOKEN={HF_TOKEN} vllm serve /model"], args=None)
    found = check("no-plaintext-secrets", DEPLOYMENT, deployment(container))
    assert len(found) == 1 and "Hugging Face token" in found[0] and HF_TOKEN not in found[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--api-key=$(VLLM_API_KEY)"],
        ["--api-key", "$(VLLM_API_KEY)"],
        ["--max-num-batched-tokens=8192", "--tokenizer=/model", "--tokenizer-mode", "auto"],
        ["--api-key", "--port=8000"],
    ],
)
def test_command_lines_without_literal_credentials_pass(args):
    assert check("no-plaintext-secrets", DEPLOYMENT, deployment(server(args=args))) == []


def test_a_shell_variable_is_not_a_literal_credential():
    container = server(command=["sh", "-c", "exec vllm serve /model --api-key \"$VLLM_API_KEY\""], args=None)
    assert check("no-plaintext-secrets", DEPLOYMENT, deployment(container)) == []


def test_secrets_in_init_containers_and_jobs_are_found_too():
    init = helper(name="fetch", env=[{"name": "GIT_TOKEN", "value": "abc"}])
    assert len(check("no-plaintext-secrets", JOB, workload(JOB, [helper()], init=[init]))) == 1


# --- the model volume ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("storage", "model_bytes"),
    [
        ("40Gi", None),
        ("16Gi", str(16 * 2**30)),
        ("17179869184", str(16 * 2**30)),
        ("15G", "15000000000"),
        ("1Ti", "549755813888"),
        ("40Gi", " 14483456000 "),
    ],
)
def test_a_claim_large_enough_for_its_model_passes(storage, model_bytes):
    assert check("model-volume-fits-model", PVC, pvc(storage, model_bytes)) == []


@pytest.mark.parametrize(
    ("storage", "model_bytes", "expected"),
    [
        ("24Gi", "27000000000", "less than the model's"),
        ("16Gi", str(16 * 2**30 + 1), "less than the model's"),
        ("15G", str(15 * 2**30), "less than the model's"),
        (None, "1000", "requests no storage"),
        ("24GB", "1000", "not a Kubernetes quantity"),
        ("40Gi", "14.5Gi", "whole number of bytes"),
        ("40Gi", "-1", "whole number of bytes"),
        ("40Gi", "", "whole number of bytes"),
    ],
)
def test_a_claim_smaller_than_its_model_is_refused(storage, model_bytes, expected):
    found = check("model-volume-fits-model", PVC, pvc(storage, model_bytes))
    assert len(found) == 1 and expected in found[0]


@pytest.mark.parametrize(
    ("storage", "copies", "expected"),
    [
        # CodeLlama's 13.5 GB: one copy fits the chart's 24Gi, the two of a model change do not.
        ("24Gi", "2", ["the claim requests '24Gi' = 24.0Gi (25769803776 bytes), less than the 2 copies × 12.6Gi"]),
        ("32Gi", "2", []),
        ("32Gi", "3", ["less than the 3 copies × "]),
        ("24Gi", "1", []),
        ("40Gi", "two", ["annotation vllm-serving/model-copies is 'two'; it must be a whole number"]),
    ],
)
def test_a_claim_holds_every_copy_its_annotation_counts(storage, copies, expected):
    found = check("model-volume-fits-model", PVC, pvc(storage, "13500000000", copies))
    assert len(found) == len(expected)
    for message, start in zip(found, expected, strict=False):
        assert start in message


def test_only_claims_are_size_checked():
    annotated = deployment(server())
    annotated["metadata"]["annotations"] = {rules.MODEL_BYTES_ANNOTATION: "10"}
    assert check("model-volume-fits-model", DEPLOYMENT, annotated) == []


# --- the program's own resources -------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered_stacks():
    return {path.name: render(path) for path in STACK_FILES}


def kubernetes_resources(rendering):
    return [(resource.type, resource.inputs) for resource in rendering.resources if resource.is_kubernetes]


def test_every_stack_file_passes_every_policy(rendered_stacks):
    assert STACK_FILES, "no stack files under stacks/"
    failures = {
        f"{stack}: {resource_type} {props['metadata']['name']}": found
        for stack, rendering in rendered_stacks.items()
        for resource_type, props in kubernetes_resources(rendering)
        if (found := rules.violations(resource_type, props))
    }
    assert failures == {}


def test_the_stacks_give_the_server_rules_something_to_check(rendered_stacks):
    # Passing every policy means little if the rules never saw a server: each stack's
    # Deployment (or LeaderWorkerSet: its leader and its worker) has exactly one vLLM server, and
    # its helper containers are not taken for one.
    for stack, rendering in rendered_stacks.items():
        if rendering.by_kind("LeaderWorkerSet"):
            props = rendering.one("LeaderWorkerSet").inputs
            servers = [where for where, _ in rules.server_containers(LWS, props)]
            assert servers == ["leader container 'vllm'", "worker container 'vllm'"], stack
            continue
        # With routing, the endpoint picker's Deployment is beside the server's: it has no server.
        servers = [
            [where for where, _ in rules.server_containers(DEPLOYMENT, deployment.inputs)]
            for deployment in rendering.by_kind("Deployment")
        ]
        assert sorted(servers) == [[]] * (len(servers) - 1) + [["container 'vllm'"]], stack
        for job in rendering.by_kind("Job"):
            assert list(rules.server_containers(JOB, job.inputs)) == [], stack


@pytest.mark.parametrize(
    ("rule", "break_it"),
    [
        ("pinned-images", lambda c: c.update(image="docker.io/vllm/vllm-openai:latest")),
        ("vllm-server-gpu", lambda c: [c["resources"][k].update({"nvidia.com/gpu": "0.5"}) for k in ("requests", "limits")]),
        ("vllm-server-probes", lambda c: c.pop("livenessProbe")),
        ("requests-within-limits", lambda c: c["resources"]["requests"].update(memory="65Gi")),
        ("no-plaintext-secrets", lambda c: c["env"].append({"name": "HF_TOKEN", "value": HF_TOKEN})),
    ],
)
def test_a_broken_rendered_deployment_fails_only_the_rule_it_breaks(rendered_stacks, rule, break_it):
    props = copy.deepcopy(rendered_stacks["Pulumi.codellama-7b.yaml"].one("Deployment").inputs)
    vllm = next(c for c in props["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm")
    break_it(vllm)
    assert list(rules.violations(DEPLOYMENT, props)) == [rule]


def test_a_rendered_claim_fails_once_annotated_with_a_larger_model(rendered_stacks):
    props = copy.deepcopy(rendered_stacks["Pulumi.codellama-7b.yaml"].one("PersistentVolumeClaim").inputs)
    # As rendered: 13.5 GB, two copies at once, on 32Gi.
    assert props["metadata"]["annotations"] == {
        rules.MODEL_BYTES_ANNOTATION: str(13_500_000_000), rules.MODEL_COPIES_ANNOTATION: "2"}
    assert rules.violations(PVC, props) == {}
    props["metadata"]["annotations"][rules.MODEL_BYTES_ANNOTATION] = str(20 * 2**30)
    assert list(rules.violations(PVC, props)) == ["model-volume-fits-model"]
    # Three copies of the real size (keepPreviousVersions 2) do not fit either.
    props["metadata"]["annotations"] = {rules.MODEL_BYTES_ANNOTATION: str(13_500_000_000), rules.MODEL_COPIES_ANNOTATION: "3"}
    assert list(rules.violations(PVC, props)) == ["model-volume-fits-model"]


# --- the pack, as pulumi_policy runs it -------------------------------------------------------


@pytest.fixture(scope="module")
def pulumi_policy():
    return pytest.importorskip("pulumi_policy")


def proxied(props: dict[str, Any]):
    """Props as the analyzer hands them to a policy: read-only proxies that raise on unknowns."""
    from pulumi_policy.proxy import unknown_checking_proxy

    return unknown_checking_proxy(copy.deepcopy(props))


def validation_args(pulumi_policy, resource_type: str, props: Any):
    options = pulumi_policy.PolicyResourceOptions(
        False, [], None, [], pulumi_policy.PolicyCustomTimeouts(0, 0, 0), [], None
    )
    return pulumi_policy.ResourceValidationArgs(resource_type, props, "urn:test", "test", options, None)


def run_policy(policy, resource_type: str, props: Any) -> list[str]:
    import pulumi_policy

    reported: list[str] = []
    args = validation_args(pulumi_policy, resource_type, props)
    policy.validate(args, lambda message, _urn=None: reported.append(message))
    return reported


@pytest.fixture(scope="module")
def pack_policies(pulumi_policy):
    # PolicyPack() starts the analyzer's gRPC server and blocks forever, so __main__ builds it only when
    # run as the pack; importing it gives the policy list it would serve.
    import policy.__main__ as pack

    return pack.build_policies()


def test_the_pack_serves_one_mandatory_policy_per_rule(pack_policies, pulumi_policy):
    assert [p.name for p in pack_policies] == [r.name for r in rules.RULES]
    assert {p.enforcement_level for p in pack_policies} == {pulumi_policy.EnforcementLevel.MANDATORY}
    assert all(isinstance(p, pulumi_policy.ResourceValidationPolicy) for p in pack_policies)


def test_the_packs_policies_report_what_the_rules_find(pack_policies, rendered_stacks):
    bad = deployment(server(image="vllm/vllm-openai:latest", livenessProbe=None))
    by_name = {p.name: p for p in pack_policies}
    assert run_policy(by_name["pinned-images"], DEPLOYMENT, proxied(bad)) == check("pinned-images", DEPLOYMENT, bad)
    assert len(run_policy(by_name["vllm-server-probes"], DEPLOYMENT, proxied(bad))) == 1
    for rendering in rendered_stacks.values():
        for resource_type, props in kubernetes_resources(rendering):
            for policy in pack_policies:
                assert run_policy(policy, resource_type, proxied(props)) == [], (policy.name, resource_type)


def test_policies_run_in_preview_when_other_resources_names_are_unknown(pack_policies, rendered_stacks):
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    # In a first preview, names that come from other resources' outputs (the claim, the scripts
    # ConfigMap) are unknown; no check needs them, so none may give up on the resource.
    job = copy.deepcopy(rendered_stacks["Pulumi.codellama-7b.yaml"].one("Job").inputs)
    for volume in job["spec"]["template"]["spec"]["volumes"]:
        for source in ("persistentVolumeClaim", "configMap"):
            if source in volume:
                key = "claimName" if source == "persistentVolumeClaim" else "name"
                volume[source][key] = UNKNOWN_STRING_VALUE
    for policy in pack_policies:
        assert run_policy(policy, JOB, proxied(job)) == []


def _analyze_request(resource_type: str, props: dict[str, Any], name: str):
    from google.protobuf import json_format, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    properties = json_format.ParseDict(props, struct_pb2.Struct())
    return analyzer_pb2.AnalyzeRequest(
        type=resource_type, properties=properties, urn=f"urn:pulumi:test::vllm-serving::{resource_type}::{name}", name=name
    )


def test_the_pack_runs_as_the_pulumi_cli_starts_it(pulumi_policy, rendered_stacks, tmp_path):
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    # What pulumi-analyzer-policy-python runs: the SDK's runner, given an engine address and the
    # pack directory; the pack prints the port of its gRPC server. Started elsewhere than the
    # repository, to prove the pack finds its own modules.
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(POLICY_DIR)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.stdout, process.stderr
    assert stdout is not None and stderr is not None  # both are pipes
    try:
        port = stdout.readline().strip()
        assert port.isdigit(), stderr.read() if process.poll() is not None else port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            analyzer = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert info.name == "vllm-serving"
            assert [p.name for p in info.policies] == [r.name for r in rules.RULES]
            assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}

            for rendering in rendered_stacks.values():
                for resource in rendering.resources:
                    if resource.is_kubernetes:
                        request = _analyze_request(resource.type, resource.inputs, resource.name)
                        response = analyzer.Analyze(request, timeout=30)
                        assert list(response.diagnostics) == [], (rendering.stack, resource.name)

            bad = deployment(server(env=[{"name": "HF_TOKEN", "value": HF_TOKEN}]))
            response = analyzer.Analyze(_analyze_request(DEPLOYMENT, bad, "bad"), timeout=30)
            assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
                ("no-plaintext-secrets", analyzer_pb2.MANDATORY)
            ]
            assert HF_TOKEN not in response.diagnostics[0].message
    finally:
        process.kill()
        process.wait(timeout=10)
        stdout.close()
        stderr.close()


def test_a_group_leader_needs_probes_and_only_a_headless_worker_goes_without(rendered_stacks):
    props = rendered_stacks["Pulumi.llama-3-1-405b-multinode.yaml"].one("LeaderWorkerSet").inputs
    assert rules.violations(LWS, props) == {}
    no_probe = copy.deepcopy(props)
    no_probe["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0].pop("livenessProbe")
    assert list(rules.violations(LWS, no_probe)) == ["vllm-server-probes"]
    not_headless = copy.deepcopy(props)
    worker = not_headless["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
    worker["args"].remove("--headless")
    assert list(rules.violations(LWS, not_headless)) == ["vllm-server-probes"]
    no_gpu = copy.deepcopy(props)
    worker = no_gpu["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
    worker["resources"]["limits"].pop("nvidia.com/gpu")
    assert list(rules.violations(LWS, no_gpu)) == ["vllm-server-gpu"]
