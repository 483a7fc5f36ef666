"""The lifecycle on a real vLLM server: the rendered pods of example stacks, run by the pod runner.

Each stack is rendered as `pulumi up` would render it (with `image.tag: v0.32.0`, the release of
PyPI's CPU build that runs here, one "GPU", and the local Hugging Face / git / S3 test servers as
sources); its download Job's pod fetches the tiny random-weight model (tests/serve/tiny_model.py)
and the Deployment's pod serves it with the rendered command, args, env, mounts and probes.

Not part of the fast suite (vLLM starts in 1-2 min on two cores): `.ci/run` runs it as its own
step with VLLM_SERVE=1, after tests/serve/vllm_cpu_env.sh has made .venv-vllm-cpu. One server
runs at a time; the scenarios of one stack share its server where the scenario allows.
Figures (seconds to ready, what /health and new requests get during a drain, the key's reach)
go to build/real-server/*.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.download.hub_fake import FakeHub
from tests.pod_runner.images import VLLM_CPU_VENV

from .deployer import Deployer, files_of, hub_env, loaded_files

if os.environ.get("VLLM_SERVE") != "1":
    pytest.skip("the real-server lifecycle runs as its own step of .ci/run (VLLM_SERVE=1)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("REAL_SERVER_RESULTS", REPO / "build" / "real-server"))
TINY = Path(__file__).parent / "tiny_model.py"
# Files a published repository has that vLLM does not load: the selection must leave them out.
NOT_LOADED = ("original/consolidated.00.pth", "pytorch_model.bin")


def record(name: str, data: Any) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(data) if isinstance(data, dict) else None
    path.write_text(json.dumps(old if isinstance(data, dict) else data, indent=1, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Two revisions of the tiny model (different weights) and a LoRA adapter for it, each with
    files of a published repository that vLLM does not load."""
    if not (VLLM_CPU_VENV / ".installed-from").exists():
        pytest.fail(f"no vLLM CPU environment at {VLLM_CPU_VENV}: run tests/serve/vllm_cpu_env.sh first")
    root = tmp_path_factory.mktemp("models")
    python = str(VLLM_CPU_VENV / "bin" / "python")
    for name, seed in (("v1", 0), ("v2", 1)):
        subprocess.run([python, str(TINY), "model", str(root / name), "--seed", str(seed)], check=True, capture_output=True)
        for extra in NOT_LOADED:
            (root / name / extra).parent.mkdir(parents=True, exist_ok=True)
            (root / name / extra).write_bytes(os.urandom(1024))
    subprocess.run([python, str(TINY), "adapter", str(root / "v1"), str(root / "lora")], check=True, capture_output=True)
    return {"v1": root / "v1", "v2": root / "v2", "lora": root / "lora"}


@pytest.fixture(scope="session")
def hub(models):
    server = FakeHub().start()
    repo = server.add_repo("acme/tiny")
    repo.commit(files_of(models["v1"]), tags=("v1",))
    repo.commit(files_of(models["v2"]), tags=("v2",))
    server.add_repo("acme/tiny-lora", gated=True, token="hf-secret").commit(files_of(models["lora"]))
    # The production example's model is gated: its token comes from the Secret hf-token.
    server.add_repo("acme/tiny-gated", gated=True, token="hf-secret").commit(files_of(models["v1"]))
    yield server
    server.stop()


def completion(url: str, model: str, key: str | None = None, **body: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(f"{url}/v1/completions", json={"model": model, "prompt": "Hello", "max_tokens": 4, **body},
                         headers=headers, timeout=120)


# --- the chart example, Hugging Face source: first deploy, model change, rollback ----------------


@pytest.fixture(scope="module")
def chart(tmp_path_factory, hub):
    deployer = Deployer("codellama-7b", tmp_path_factory.mktemp("chart"), {
        "model": {"huggingface": {"id": "acme/tiny", "revision": "v1"}, "size": "10M"}, "env": hub_env(hub)})
    yield deployer
    deployer.stop_server()


def test_chart_first_deploy(chart, hub):
    rendering = chart.render()
    report = chart.up(rendering)
    server = chart.server
    assert [job.exit_code for job in report["jobs"]] == [0]
    model_dir = next(Path(d) for m, d in server.containers[0].mounts if m == "/model")
    # g. Selection is enough to load: exactly what the Job selected, and the server loaded it.
    assert loaded_files(model_dir) == ["config.json", "generation_config.json", "model.safetensors",
                                       "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    events = [e.what for e in server.events]
    assert "wait-for-model: exited 0" in events
    assert "vllm: started (startup probe passed)" in events and "vllm: ready" in events
    assert completion(server.url(), "codellama-7b").status_code == 200
    verify = subprocess.run([sys.executable, "-m", "vllm_serving", "verify", "--url", f"{server.url()}/v1",
                             "--model", "codellama-7b", "--timeout", "120"], capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    record("time-to-ready", {"codellama-7b (huggingface)": round(report["seconds_to_ready"], 1)})


def test_chart_model_change_and_rollback(chart, hub):
    first_root = chart.served_root("codellama-7b")
    # b. A new revision: a new Job downloads it beside the served copy, the server comes back on it.
    report = chart.up(chart.render(model={"huggingface": {"revision": "v2"}}))
    assert report["replaced"] and [job.exit_code for job in report["jobs"]] == [0]
    # The pod's /model (the runner shows the directory it maps to, the claim's subPath).
    second_root = chart.served_root("codellama-7b")
    versions_dir = chart.cluster.claims["codellama-7b-model"] / "CodeLlama-7b-Instruct-hf"
    assert Path(second_root).parent == Path(first_root).parent == versions_dir and second_root != first_root
    # keepPreviousVersions: 1 (the default): the served copy and the previous one.
    assert sorted(p.name for p in versions_dir.iterdir()) == sorted({Path(first_root).name, Path(second_root).name})
    v2_dir = Path(second_root)
    # Rollback: the old copy is still complete, so the Job downloads nothing and the server loads it.
    hub.requests.clear()
    report = chart.up(chart.render(model={"huggingface": {"revision": "v1"}}))
    assert report["replaced"]
    assert [job.exit_code for job in report["jobs"]] == [0]
    assert "model already complete" in report["jobs"][0].log
    assert hub.file_requests() == []
    assert chart.served_root("codellama-7b") == first_root
    assert (Path(first_root) / ".vllm-serving-complete").exists() and v2_dir.exists()
    assert completion(chart.server.url(), "codellama-7b").status_code == 200
    record("time-to-ready", {"codellama-7b rollback (no download)": round(report["seconds_to_ready"], 1)})


# --- the production example: API key, LoRA, the key's reach, rotation, drain ----------------------


def production_deployer(root: Path, hub: FakeHub, **more: Any) -> Deployer:
    deployer = Deployer("llama-3-70b-production", root, {
        "model": {"huggingface": {"id": "acme/tiny-gated"}, "size": "10M"}, "env": hub_env(hub), **more})
    deployer.cluster.secrets.update({"hf-token": {"token": "hf-secret"}, "llama-70b-api-key": {"apiKey": "key-one"},
                                     "llama-70b-tls": {"tls.crt": "", "tls.key": ""}})
    return deployer


@pytest.fixture(scope="module")
def production(tmp_path_factory, hub):
    # KEDA's ScaledObject, the Ingress, the ServiceMonitor are rendered; nothing here acts on them.
    deployer = production_deployer(tmp_path_factory.mktemp("production"), hub)
    yield deployer
    deployer.stop_server()


def test_production_first_deploy_with_key(production):
    report = production.up(production.render())
    assert [job.exit_code for job in report["jobs"]] == [0]
    url = production.server.url()
    assert completion(url, "llama-3-70b").status_code == 401
    assert completion(url, "llama-3-70b", key="wrong").status_code == 401
    assert completion(url, "llama-3-70b", key="key-one").status_code == 200
    record("time-to-ready", {"llama-3-70b-production (huggingface, key)": round(report["seconds_to_ready"], 1)})


def test_the_keys_reach(production):
    """d. Every route of the running server's own table, with and without the key."""
    routes = production.routes()
    assert len(routes) > 10 and ("/v1/completions", ["POST"]) in routes
    url = production.server.url()
    reach = []
    for path, methods in routes:
        concrete = path.replace("{", "").replace("}", "")  # a path parameter: any value reaches the guard
        method = "GET" if "GET" in methods else methods[0]
        answers = {}
        for with_key in (False, True):
            headers = {"Authorization": "Bearer key-one"} if with_key else {}
            kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            try:
                answer = requests.request(method, url + concrete, headers=headers, timeout=60, **kwargs)
                answers["with key" if with_key else "without key"] = answer.status_code
            except requests.RequestException as error:
                answers["with key" if with_key else "without key"] = type(error).__name__
        reach.append({"path": path, "methods": methods, "method called": method, **answers,
                      "guarded": answers["without key"] == 401})
    record("key-reach", {"server": "vllm-cpu 0.32.0, llama-3-70b-production example (API key, LoRA)", "routes": reach})
    guarded = {r["path"] for r in reach if r["guarded"]}
    # The guard covers the OpenAI API the Ingress publishes (vllm/entrypoints/.../authenticate.py).
    assert {"/v1/completions", "/v1/chat/completions", "/v1/models"} <= guarded
    # The probe path answers without a key: the kubelet sends none.
    assert next(r for r in reach if r["path"] == "/health")["without key"] == 200


def test_key_rotation(production):
    """e. A new key: the checksum annotation changes the pod template, the rollout starts a new
    server; the new key works and the old one is refused."""
    old_annotation = production.server_template["metadata"]["annotations"]["vllm-serving/api-key-checksum"]
    production.cluster.secrets["llama-70b-api-key"] = {"apiKey": "key-two"}
    rendering = production.render()
    template = rendering.one("Deployment").inputs["spec"]["template"]
    assert template["metadata"]["annotations"]["vllm-serving/api-key-checksum"] != old_annotation
    report = production.up(rendering)
    assert report["replaced"] and report["jobs"] == []  # nothing to download again
    url = production.server.url()
    assert completion(url, "llama-3-70b", key="key-two").status_code == 200
    assert completion(url, "llama-3-70b", key="key-one").status_code == 401


def test_drain_with_a_long_stream_in_flight(production):
    """c. The kubelet's termination with a long streaming completion in flight: the stream must
    finish, the process must exit within the grace period. What /health and new requests get
    meanwhile is recorded (build/real-server/drain.json)."""
    server = production.server
    url, key = server.url(), server.containers[0].env["VLLM_API_KEY"]  # after a rotation or not
    stream_result: dict[str, Any] = {}

    def stream() -> None:
        started = time.monotonic()
        tokens, finish = 0, None
        try:
            with requests.post(f"{url}/v1/completions", stream=True, timeout=600, headers={"Authorization": f"Bearer {key}"},
                               json={"model": "llama-3-70b", "prompt": "Hello", "max_tokens": stream_tokens,
                                     "ignore_eos": True, "stream": True}) as answer:
                stream_result["status"] = answer.status_code
                for line in answer.iter_lines():
                    if line.startswith(b"data: {"):
                        # A chunk of text, the last one with usage only, or an error in band.
                        chunk = json.loads(line[6:])
                        if "error" in chunk:
                            stream_result["error in band"] = chunk["error"]
                        for choice in chunk.get("choices", []):
                            tokens += 1
                            finish = choice.get("finish_reason") or finish
                    elif line.startswith(b"data: [DONE]"):
                        stream_result["done"] = True
        except requests.RequestException as error:
            stream_result["error"] = repr(error)
        stream_result.update(tokens=tokens, finish_reason=finish, seconds=round(time.monotonic() - started, 1),
                             ended=time.monotonic())

    def sample(phase: str) -> dict[str, Any]:
        health = _status(lambda: requests.get(f"{url}/health", timeout=5))
        new = _status(lambda: completion(url, "llama-3-70b", key=key))
        return {"phase": phase, "t": round(time.monotonic() - t0, 1), "/health": health, "new request": new,
                "ready (readiness probe)": server.ready}

    # A stream that lasts about three times the preStop wait at this machine's pace now: in flight
    # at SIGTERM (after the wait) even if the pace was under-measured twofold, and done well within
    # --shutdown-timeout (300 s) even if it was over-measured twofold. The pace is measured on 1000
    # tokens: on 200, start-up costs dominate and a quiet machine streamed twice as fast as measured,
    # ending the stream before SIGTERM.
    probe_tokens = 1000
    probe_start = time.monotonic()
    assert completion(url, "llama-3-70b", key=key, max_tokens=probe_tokens, ignore_eos=True).status_code == 200
    rate = probe_tokens / (time.monotonic() - probe_start)
    pre_stop = float(server.containers[0].spec["lifecycle"]["preStop"]["exec"]["command"][-1])
    stream_tokens = min(int(rate * pre_stop * 3), 30000)
    t0 = time.monotonic()
    streaming = threading.Thread(target=stream)
    streaming.start()
    time.sleep(3)
    samples: list[dict[str, Any]] = []
    stop_sampling = threading.Event()

    def sampler() -> None:
        while not stop_sampling.is_set():
            sigterm = any(e.what == "vllm: SIGTERM" for e in server.events)
            samples.append(sample("after SIGTERM" if sigterm else "preStop"))
            stop_sampling.wait(5)

    sampling = threading.Thread(target=sampler)
    sampling.start()
    took = production.stop_server()
    stop_sampling.set()
    sampling.join()
    streaming.join()
    events = [(e.at, e.what) for e in server.events]
    grace = float(server.spec["terminationGracePeriodSeconds"])
    record("drain", {"stream": {k: v for k, v in stream_result.items() if k != "ended"}, "tokens asked": stream_tokens, "samples": samples, "seconds to exit": round(took or 0, 1),
                     "grace period": grace,
                     "events": [(round(at, 1), what) for at, what in events[-6:]]})
    assert stream_result.get("done") and stream_result["finish_reason"] == "length", stream_result
    # The stream was still running when vLLM got SIGTERM (else this tested only the preStop sleep).
    sigterm_at = server.t0 + next(at for at, what in events if what == "vllm: SIGTERM")
    assert stream_result["ended"] > sigterm_at, "the stream ended before SIGTERM"
    assert took is not None and took < grace
    assert "vllm: SIGKILL at the end of the grace period" not in [e.what for e in server.events]
    # Behind the allow-list (components/server/surface.py): the readiness probe (/ready) fails from
    # the preStop hook's first probe period on, and a request that still arrives after SIGTERM gets
    # a retryable 503 (vLLM alone answered 500). The last sample may meet the process gone.
    after = [sample for sample in samples if sample["phase"] == "after SIGTERM"]
    assert after and not any(sample["ready (readiness probe)"] for sample in after), after
    assert all(sample["new request"] == 503 for sample in after[:-1]), after
    assert "vllm: not ready" in [what for _, what in events]


def _status(call) -> Any:
    try:
        return call().status_code
    except requests.RequestException as error:
        return type(error).__name__


def test_lora_adapter_is_served(tmp_path_factory, hub):
    """f. The production example with a static adapter: its Job downloads it beside the model, the
    server starts with it, lists it under its name and generates through it."""
    deployer = production_deployer(tmp_path_factory.mktemp("lora"), hub, lora={"adapters": [
        {"name": "tiny-lora", "source": "huggingface", "huggingface": {"id": "acme/tiny-lora", "existingSecret": "hf-token"}}]})
    try:
        report = deployer.up(deployer.render())
        assert sorted(job.exit_code for job in report["jobs"]) == [0, 0]  # the model's Job and the adapter's
        url = deployer.server.url()
        models = requests.get(f"{url}/v1/models", headers={"Authorization": "Bearer key-one"}, timeout=30).json()["data"]
        assert {m["id"] for m in models} == {"llama-3-70b", "tiny-lora"}
        answer = completion(url, "tiny-lora", key="key-one")
        assert answer.status_code == 200, answer.text
        assert completion(url, "llama-3-70b", key="key-one").status_code == 200
    finally:
        deployer.stop_server()


# --- one git and one S3 source: first deploy, selection is enough to load ------------------------


def test_git_source_first_deploy(tmp_path_factory, models, git_server):
    deployer = Deployer("qwen-git", tmp_path_factory.mktemp("git"), {
        "model": {"git": {"url": git_server.repo_url("tiny"), "ref": "v1.0.0"}, "size": "10M"}})
    deployer.cluster.secrets["git-token"] = {"token": "git-secret"}
    try:
        report = deployer.up(deployer.render())
        model_dir = next(Path(d) for m, d in deployer.server.containers[0].mounts if m == "/model")
        assert "pytorch_model.bin" not in loaded_files(model_dir)
        assert not any(name.startswith("original/") for name in loaded_files(model_dir))
        assert completion(deployer.server.url(), "qwen2-5-7b").status_code == 200
        record("time-to-ready", {"qwen-git (git)": round(report["seconds_to_ready"], 1)})
    finally:
        deployer.stop_server()


def test_s3_source_first_deploy(tmp_path_factory, models, s3):
    deployer = Deployer("mistral-s3", tmp_path_factory.mktemp("s3"), {
        "model": {"s3": {"url": "s3://models/tiny/"}, "size": "10M"}})
    deployer.cluster.secrets["s3-models"] = {"accessKeyID": s3.access_key, "secretAccessKey": s3.secret_key,
                                             "endpoint": s3.url}
    try:
        report = deployer.up(deployer.render())
        model_dir = next(Path(d) for m, d in deployer.server.containers[0].mounts if m == "/model")
        assert "pytorch_model.bin" not in loaded_files(model_dir)
        assert completion(deployer.server.url(), "mistral-7b").status_code == 200
        record("time-to-ready", {"mistral-s3 (s3)": round(report["seconds_to_ready"], 1)})
    finally:
        deployer.stop_server()


@pytest.fixture(scope="module")
def git_server(models, tmp_path_factory):
    from tests.download.git_fake import GitServer, GitStore, RepoBuilder

    store = GitStore(tmp_path_factory.mktemp("git-store"))
    builder = RepoBuilder(store, "tiny")
    builder.tag("v1.0.0", builder.commit(files_of(models["v1"]), "the tiny model"))
    server = GitServer(store, token="git-secret").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3(models):
    from tests.download.s3_fake import S3Server

    server = S3Server().start()
    server.upload("models", "tiny", files_of(models["v1"]))
    yield server
    server.stop()
