"""The GPU machine's half of the cold-start benchmark (benchmarks/gpu_cold_start.py is the other).

Runs with the GPU image's own python3 (PyTorch 2.11, safetensors, tokenizers, transformers) and
vLLM 0.24 on PYTHONPATH; nothing of the project is imported here, so the folder travels alone.

    python3 device_bench.py make-models PLAN            # random-weight checkpoints, on the GPU
    python3 device_bench.py run PLAN OUT [--only NAME] [--deadline SECONDS]
    python3 device_bench.py run-group PLAN OUT            # issue 27: needs two GPUs
    python3 device_bench.py surface PLAN OUT [--rounds 3] [--deadline SECONDS]   # the allow-list's cost

PLAN is the JSON that `gpu_cold_start.py prepare` writes: the checkpoints to make (a config.json
each) and the runs (the rendered server argv and env, adjusted to this machine). `run` starts vLLM
once per run, as the Deployment would, and records from outside: the seconds to the first 200 of
/health, each log line's arrival time, time to first token and decode rate; from vLLM's own log
the figures benchmarks/gpu/vllm_log.py reads. It writes OUT/results.json after every run, and each
run's log as OUT/NAME.log.

`surface` measures what the allow-list (vllm_serving_surface.py, copied beside this file) costs
on the GPU: the plan's `surface` section holds the rendered server with the allow-list (guarded)
and without it (plain: its --middleware and env removed, nothing else changed). Each round starts
one and then the other (the guarded one first), the order swapped every round; each start serves warm-up requests, N
streamed completions of T tokens one after another, then C at once (ignore_eos each). It writes
OUT/surface.json after every start, so a later call on the same machine and OUT goes on where
the last one stopped; `surface_summary` gives the guarded/plain ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vllm_log  # beside this file, on the GPU machine as here

HEALTH_POLL_S = 0.25
PROMPT_TOKENS = 512
DECODE_TOKENS = 256
CONCURRENT_REQUESTS = 32


# ---------------------------------------------------------------------------------------------
# Checkpoints with a real architecture's shapes and random weights.


def tensor_shapes(config: dict[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    """The tensors of a Llama-family checkpoint (llama, mistral, qwen2), with Hugging Face's names.

    The names are those vLLM's LlamaForCausalLM / Qwen2ForCausalLM `load_weights` read
    (vllm/model_executor/models/llama.py, qwen2.py): q/k/v/o projections, gate/up/down MLP,
    two RMSNorms per layer, the final norm, the input embedding and (untied) lm_head. Qwen2's
    q, k and v projections carry a bias (transformers' Qwen2Attention, bias=True).
    """
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    inter, vocab = config["intermediate_size"], config["vocab_size"]
    family = config["model_type"]
    if family not in ("llama", "mistral", "qwen2"):
        raise ValueError(f"model_type {family!r}: only llama, mistral and qwen2 are laid out here")
    shapes: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (hidden,)),
            (p + "self_attn.q_proj.weight", (heads * head_dim, hidden)),
            (p + "self_attn.k_proj.weight", (kv_heads * head_dim, hidden)),
            (p + "self_attn.v_proj.weight", (kv_heads * head_dim, hidden)),
            (p + "self_attn.o_proj.weight", (hidden, heads * head_dim)),
            (p + "post_attention_layernorm.weight", (hidden,)),
            (p + "mlp.gate_proj.weight", (inter, hidden)),
            (p + "mlp.up_proj.weight", (inter, hidden)),
            (p + "mlp.down_proj.weight", (hidden, inter)),
        ]
        if family == "qwen2":
            shapes += [
                (p + "self_attn.q_proj.bias", (heads * head_dim,)),
                (p + "self_attn.k_proj.bias", (kv_heads * head_dim,)),
                (p + "self_attn.v_proj.bias", (kv_heads * head_dim,)),
            ]
    shapes.append(("model.norm.weight", (hidden,)))
    if not config.get("tie_word_embeddings", False):
        shapes.append(("lm_head.weight", (vocab, hidden)))
    return shapes


def parameter_count(config: dict[str, Any]) -> int:
    total = 0
    for _, shape in tensor_shapes(config):
        count = 1
        for dim in shape:
            count *= dim
        total += count
    return total


def write_tokenizer(out: Path, vocab_size: int) -> None:
    """A word-level tokenizer whose vocabulary is the model's whole vocabulary.

    Every id the random model can sample decodes to a word ("w123"), so vLLM's detokenizer never
    meets an id its tokenizer lacks; a prompt of N words ("w5 w6 ...") is N tokens.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>"]
    vocab = {token: i for i, token in enumerate(specials)}
    vocab.update({f"w{i}": i for i in range(len(specials), vocab_size)})
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(str(out))


def make_checkpoint(out: Path, config: dict[str, Any], shard_bytes: int = 4_000_000_000) -> dict[str, Any]:
    """Random bf16 weights drawn on the GPU, written as safetensors shards with an index."""
    import torch
    from safetensors.torch import save_file  # type: ignore[import-not-found]

    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    generator = torch.Generator(device="cuda").manual_seed(0)
    shard: dict[str, Any] = {}
    size = total = 0
    weight_map: dict[str, str] = {}
    files: list[str] = []
    write_s = 0.0

    def flush() -> None:
        nonlocal shard, size, write_s
        if not shard:
            return
        name = f"model-{len(files) + 1:05d}.safetensors"
        before = time.monotonic()
        save_file(shard, str(out / name), metadata={"format": "pt"})
        write_s += time.monotonic() - before
        files.append(name)
        weight_map.update(dict.fromkeys(shard, name))
        shard, size = {}, 0

    for name, shape in tensor_shapes(config):
        tensor = torch.empty(shape, dtype=torch.bfloat16, device="cuda")
        if name.endswith("norm.weight"):
            tensor.fill_(1.0)  # RMSNorm weights of a trained model sit near 1
        else:
            tensor.normal_(0.0, 0.02, generator=generator)
        shard[name] = tensor.cpu()
        size += tensor.numel() * 2
        total += tensor.numel() * 2
        if size >= shard_bytes:
            flush()
    flush()
    # The real checkpoints' shard names end in -of-NNNNN; vLLM reads whatever the index names.
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    (out / "config.json").write_text(json.dumps(config, indent=2))
    write_tokenizer(out, config["vocab_size"])
    os.sync()
    return {"bytes": total, "files": files, "seconds": round(time.monotonic() - started, 1), "write_s": round(write_s, 1)}


def make_models(plan: dict[str, Any]) -> None:
    for model in plan["models"]:
        out = Path(model["path"])
        done = out / ".complete"
        if done.exists():
            continue
        figures = make_checkpoint(out, model["config"])
        print(json.dumps({"model": model["name"], **figures}), flush=True)
        done.write_text(json.dumps(figures))


# ---------------------------------------------------------------------------------------------
# One server start, measured from outside.


def _drop_page_cache() -> bool:
    """Empty the kernel's page cache, so the next load reads the disk (root, on this VM only)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as error:
        print(f"could not drop the page cache: {error}", flush=True)
        return False
    return True


def _fresh_pod_caches(env: dict[str, str]) -> None:
    """Remove every compile artefact a new pod would not have, except the VLLM_CACHE_ROOT volume.

    vLLM points Inductor and Triton at directories under its own cache
    (vllm/compilation/compiler_interface.py, InductorAdaptor.initialize_cache), but torch's
    defaults (/tmp/torchinductor_$USER, ~/.triton) may still be written by other code paths.
    """
    home = Path.home()
    keep = Path(env["VLLM_CACHE_ROOT"]).resolve() if env.get("VLLM_CACHE_ROOT") else None
    for path in (Path("/tmp/torchinductor_root"), home / ".triton", home / ".cache" / "vllm",
                 home / ".cache" / "flashinfer", home / ".nv" / "ComputeCache"):
        if path.exists() and (keep is None or not keep.is_relative_to(path.resolve())):
            shutil.rmtree(path, ignore_errors=True)


class TimedLog:
    """Reads the server's output on a thread; each line is stamped with seconds since the start."""

    def __init__(self, process: subprocess.Popen[str], path: Path, started: float) -> None:
        self.lines: list[tuple[float, str]] = []
        self._file = path.open("w")
        self._thread = threading.Thread(target=self._read, args=(process, started), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str], started: float) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            at = time.monotonic() - started
            self.lines.append((at, line.rstrip("\n")))
            self._file.write(f"[{at:8.2f}] {line}")
            self._file.flush()

    def close(self) -> None:
        self._thread.join(timeout=10)
        self._file.close()

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def first(self, needle: str) -> float | None:
        return next((at for at, line in self.lines if needle in line), None)


HERE = Path(__file__).resolve().parent
BENCH_DIR = "{bench_dir}"  # gpu_cold_start.BENCH_DIR: the rendered PYTHONPATH, meant for this folder


def server_env(run_env: dict[str, str], outer: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with the run's on top. The rendered PYTHONPATH (the allow-list
    module's mount, BENCH_DIR in the plan) becomes this folder, in front of this process's own
    PYTHONPATH, which holds the carried vLLM."""
    outer = dict(os.environ if outer is None else outer)
    env = {**outer, **run_env}
    if run_env.get("PYTHONPATH") == BENCH_DIR:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), outer.get("PYTHONPATH", "")) if p)
    policy = run_env.get("VLLM_SERVING_SURFACE")
    if policy:
        Path(json.loads(policy)["drainDir"]).mkdir(parents=True, exist_ok=True)
    return env


def _headers(key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _get(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0


def _post(url: str, body: dict[str, Any], timeout: float = 120, key: str | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=_headers(key))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def _time_to_first_token(url: str, model: str, prompt: str, key: str | None = None) -> float:
    """Seconds from sending a streamed completion to its first token's chunk."""
    body = {"model": model, "prompt": prompt, "max_tokens": 2, "temperature": 0, "stream": True, "ignore_eos": True}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=_headers(key))
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=120) as response:
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("data:") and line != "data: [DONE]":
                first = time.monotonic() - started
                response.read()
                return first
    raise RuntimeError("the stream ended without a token")


def _decode(url: str, model: str, prompt: str, tokens: int, key: str | None = None) -> tuple[float, int]:
    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0, "ignore_eos": True}
    started = time.monotonic()
    result = _post(url, body, key=key)
    return time.monotonic() - started, int(result["usage"]["completion_tokens"])


def _at_once(request: Callable[[int], Any], count: int) -> tuple[list[Any], list[str], float]:
    """`count` requests at once, one thread each (request(i) for i in range(count)): the results of
    those that finished, the errors of the others (counted and reported: the figures are over the
    requests that finished), and the seconds from the first start to the last end."""
    results: list[Any] = []
    errors: list[str] = []

    def one(i: int) -> None:
        try:
            results.append(request(i))
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors, time.perf_counter() - started


def measure_requests(port: int, model: str, key: str | None = None) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/v1/completions"
    prompt = " ".join(f"w{3 + i % 1000}" for i in range(PROMPT_TOKENS))
    first_ttft = _time_to_first_token(url, model, prompt, key)
    ttfts = [_time_to_first_token(url, model, prompt + f" w{5000 + i}", key) for i in range(5)]
    ttft = statistics.median(ttfts)
    decode_s, produced = _decode(url, model, prompt + " w9999", DECODE_TOKENS, key)
    single = (produced - 1) / (decode_s - ttft)
    results, errors, batch_s = _at_once(
        lambda i: _decode(url, model, prompt + f" w{7000 + i}", DECODE_TOKENS, key), CONCURRENT_REQUESTS
    )
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "first_request_ttft_s": round(first_ttft, 4),
        "ttft_s_median_of_5": round(ttft, 4),
        "ttft_s_all": [round(t, 4) for t in ttfts],
        "decode_tokens": produced,
        "decode_request_s": round(decode_s, 3),
        "decode_tokens_per_s_single": round(single, 1),
        "concurrent_requests": CONCURRENT_REQUESTS,
        "concurrent_output_tokens_per_s": round(sum(n for _, n in results) / batch_s, 1),
        "concurrent_errors": errors,
    }


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen[str]) -> float:
    """SIGTERM to the server's process group, as the kubelet stops the pod; the seconds until every
    process of it is gone (the engine core too: the next run must find the GPU's memory free)."""
    started = time.monotonic()
    pgid = process.pid
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    while _group_alive(pgid) and time.monotonic() - started < 60:
        process.poll()
        time.sleep(0.2)
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
        while _group_alive(pgid):
            time.sleep(0.2)
    process.wait()
    return time.monotonic() - started


def _port(argv: list[str]) -> int:
    return int(next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--port=")))


def _model_name(argv: list[str]) -> str:
    return next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--served-model-name="))


def start_server(run: dict[str, Any], out: Path, health_timeout: float, log_name: str | None = None
                 ) -> tuple[subprocess.Popen[str], TimedLog, dict[str, Any]]:
    """Start the run's argv as a new pod would (page cache dropped if asked, no compile artefact
    outside VLLM_CACHE_ROOT) and wait for /health; result["health_s"] is None if it never answered."""
    env = server_env(run["env"])
    if run.get("fresh_compile_cache") and env.get("VLLM_CACHE_ROOT"):
        shutil.rmtree(env["VLLM_CACHE_ROOT"], ignore_errors=True)
    if env.get("VLLM_CACHE_ROOT"):
        Path(env["VLLM_CACHE_ROOT"]).mkdir(parents=True, exist_ok=True)
    _fresh_pod_caches(env)
    dropped = _drop_page_cache() if run.get("drop_page_cache") else False
    argv = run["argv"]
    result: dict[str, Any] = {"name": run["name"], "stack": run.get("stack"), "overrides": run.get("overrides", {}),
                              "argv": argv, "env": run["env"], "page_cache_dropped": dropped, "notes": run.get("notes", "")}
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    log = TimedLog(process, out / f"{log_name or run['name']}.log", started)
    port = _port(argv)
    health = None
    while time.monotonic() - started < health_timeout and process.poll() is None:
        if _get(f"http://127.0.0.1:{port}/health", timeout=2) == 200:
            health = time.monotonic() - started
            break
        time.sleep(HEALTH_POLL_S)
    result["health_s"] = None if health is None else round(health, 2)
    if health is None:
        result["exit_code"] = process.poll()
    return process, log, result


def finish_server(process: subprocess.Popen[str], log: TimedLog, result: dict[str, Any]) -> dict[str, Any]:
    """Stop the server as the kubelet would, then read its start-up figures from the log."""
    result["stop_s"] = round(_stop(process), 2)
    log.close()
    result["log_figures"] = vllm_log.parse(log.text()).as_dict()
    # The same milestones, as seconds since the process started, read from the line stamps.
    result["timeline_s"] = {
        key: None if (at := log.first(needle)) is None else round(at, 2)
        for key, needle in (("first_log_line", ""), ("weights_loaded", "Loading weights took"),
                            ("model_loaded", "Model loading took"), ("compiled", "torch.compile"),
                            ("kv_cache_sized", "GPU KV cache size"), ("graphs_captured", "Graph capturing finished"),
                            ("engine_ready", "init engine"), ("api_up", "Application startup complete"))
    }
    return result


def run_one(run: dict[str, Any], out: Path, health_timeout: float) -> dict[str, Any]:
    process, log, result = start_server(run, out, health_timeout)
    if result["health_s"] is not None:
        try:
            result["requests"] = measure_requests(_port(run["argv"]), _model_name(run["argv"]), run.get("api_key"))
        except Exception as error:  # a failed request still leaves the start-up figures worth keeping
            result["requests_error"] = repr(error)
    return finish_server(process, log, result)


def _group_argv(argv: list[str]) -> list[str]:
    # The LeaderWorkerSet runs `vllm serve`: the console script of vLLM's wheel
    # (vllm = vllm.entrypoints.cli.main:main), which pip --target leaves off PATH here.
    return [sys.executable, "-m", "vllm.entrypoints.cli.main", *argv[1:]] if argv[0] == "vllm" else argv


def run_group(group: dict[str, Any], out: Path, health_timeout: float) -> dict[str, Any]:
    """Issue 27: the leader's and the worker's rendered argv as two processes, one GPU each.

    Records the seconds to the leader's /health, one completion through the leader, then stops the
    worker (SIGTERM, as the kubelet would) and records what the leader does in the next 90 s: its
    /health answers and whether it exits (README, "Models larger than one node": the group is
    recreated as a whole, since a broken NCCL communicator cannot be rejoined).
    """
    started = time.monotonic()
    processes, logs = [], []
    for spec in group["processes"]:
        process = subprocess.Popen(_group_argv(spec["argv"]), env=server_env(spec["env"]), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        processes.append(process)
        logs.append(TimedLog(process, out / f"{group['name']}-{spec['index']}.log", started))
    leader, worker = processes
    port = _port(group["processes"][0]["argv"])
    health_url = f"http://127.0.0.1:{port}/health"
    result: dict[str, Any] = {"name": group["name"], "processes": group["processes"]}
    health = None
    while time.monotonic() - started < health_timeout and all(p.poll() is None for p in processes):
        if _get(health_url, timeout=2) == 200:
            health = time.monotonic() - started
            break
        time.sleep(HEALTH_POLL_S)
    result["health_s"] = None if health is None else round(health, 2)
    result["exit_codes_before_stop"] = [p.poll() for p in processes]
    if health is not None:
        try:
            seconds, produced = _decode(f"http://127.0.0.1:{port}/v1/completions", _model_name(group["processes"][0]["argv"]),
                                        "w5 w6 w7 w8", 32)
            result["completion"] = {"seconds": round(seconds, 3), "tokens": produced}
        except Exception as error:  # the group's failure to serve is the finding
            result["completion_error"] = repr(error)
        stopped = time.monotonic()
        result["worker_stop_s"] = round(_stop(worker), 2)
        answers = []
        while time.monotonic() - stopped < 90 and leader.poll() is None:
            answers.append((round(time.monotonic() - stopped, 1), _get(health_url, timeout=2)))
            time.sleep(1)
        result["leader_health_after_worker_stop"] = answers
        result["leader_exit_code"] = leader.poll()
        result["leader_exited_after_s"] = None if leader.poll() is None else round(time.monotonic() - stopped, 1)
    for process in processes:
        _stop(process)
    for log in logs:
        log.close()
    result["leader_log_figures"] = vllm_log.parse(logs[0].text()).as_dict()
    result["worker_log_figures"] = vllm_log.parse(logs[1].text()).as_dict()
    return result


# ---------------------------------------------------------------------------------------------
# The allow-list's cost: guarded against plain, one server start per variant per round.

SURFACE_PROMPT = " ".join(f"w{5 + i}" for i in range(16))  # 16 tokens of the word-level tokenizer


def parse_sse(pending: bytes, chunk: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """The complete server-sent events in pending + chunk (their JSON), and what is left over."""
    *events, rest = (pending + chunk).split(b"\n\n")
    parsed = [json.loads(event[len(b"data: "):]) for event in events if event.startswith(b"data: {")]
    return parsed, rest


def stream_figures(started: float, arrivals: list[float], tokens: int) -> dict[str, float]:
    """One stream's figures: time to the first event, the whole stream's time per token (as
    benchmarks/surface_latency.py: vLLM merges several steps' tokens into one event when the API
    server lags, so gaps between events are no per-token figure), and the decode time per token
    after the first one."""
    if not arrivals or tokens < 2:
        raise ValueError("a stream of at least two tokens is needed")
    return {"ttft_s": arrivals[0] - started, "per_token_s": (arrivals[-1] - started) / tokens,
            "decode_per_token_s": (arrivals[-1] - arrivals[0]) / (tokens - 1)}


def stream_once(port: int, model: str, key: str | None, tokens: int, prompt: str = SURFACE_PROMPT) -> dict[str, Any]:
    """One streamed completion of `tokens` tokens (ignore_eos), read with read1 as bytes arrive."""
    import http.client

    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    started = time.perf_counter()
    connection.request("POST", "/v1/completions", body=json.dumps(body), headers=_headers(key))
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:300]!r}")
    arrivals: list[float] = []
    pending, produced = b"", 0
    while chunk := response.read1(65536):
        now = time.perf_counter()
        events, pending = parse_sse(pending, chunk)
        for event in events:
            if event.get("choices"):
                arrivals.append(now)
            if event.get("usage"):
                produced = int(event["usage"]["completion_tokens"])
    connection.close()
    if produced != tokens:
        raise RuntimeError(f"asked for {tokens} tokens, the server produced {produced}")
    return stream_figures(started, arrivals, tokens)


def _streams(port: int, model: str, key: str | None, *, tokens: int, count: int, concurrent: bool) -> dict[str, Any]:
    if not concurrent:
        samples = [stream_once(port, model, key, tokens) for _ in range(count)]
        return {"samples": samples}
    samples, errors, wall = _at_once(lambda _: stream_once(port, model, key, tokens), count)
    return {"samples": samples, "errors": errors, "wall_s": round(wall, 3),
            "output_tokens_per_s": round(len(samples) * tokens / wall, 1)}


def measure_surface(port: int, model: str, key: str | None, *, streams: int, tokens: int, concurrent: int) -> dict[str, Any]:
    for _ in range(2):
        stream_once(port, model, key, tokens)  # warm-up: the first requests' one-off costs
    _streams(port, model, key, tokens=16, count=concurrent, concurrent=True)  # warm-up of the batched shapes
    return {"sequential": _streams(port, model, key, tokens=tokens, count=streams, concurrent=False),
            "concurrent": _streams(port, model, key, tokens=tokens, count=concurrent, concurrent=True)}


def surface_schedule(rounds: int) -> list[tuple[int, str]]:
    """(round, variant) per start: guarded then plain, the order swapped every round. The first start
    is the rendered server as it is (the cold one, with --cold-first)."""
    schedule = []
    for index in range(rounds):
        order = ("guarded", "plain") if index % 2 == 0 else ("plain", "guarded")
        schedule += [(index + 1, variant) for variant in order]
    return schedule


def _median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def surface_summary(starts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per round and batch kind: the medians (ms) of each variant and the guarded/plain ratios of the
    median time per token, decode time per token and time to first token; over the complete rounds,
    min and median of each ratio."""
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for start in starts:
        if start.get("measured"):
            by_round.setdefault(start["round"], {})[start["variant"]] = start["measured"]
    rounds: list[dict[str, Any]] = []
    ratios: dict[str, list[float]] = {}
    for number in sorted(by_round):
        variants = by_round[number]
        if set(variants) != {"guarded", "plain"}:
            continue
        row: dict[str, Any] = {"round": number}
        for kind in ("sequential", "concurrent"):
            for figure in ("per_token_s", "decode_per_token_s", "ttft_s"):
                plain = _median(variants["plain"][kind]["samples"], figure)
                guarded = _median(variants["guarded"][kind]["samples"], figure)
                name = f"{kind}_{figure[:-2]}"
                row[f"{name}_ms"] = {"plain": round(plain * 1e3, 3), "guarded": round(guarded * 1e3, 3)}
                row[f"{name}_ratio"] = round(guarded / plain, 4)
                ratios.setdefault(f"{name}_ratio", []).append(guarded / plain)
        rounds.append(row)
    overall = {name: {"min": round(min(values), 4), "median": round(statistics.median(values), 4)}
               for name, values in ratios.items()}
    return {"rounds": rounds, "overall": overall}


def surface(plan: dict[str, Any], out: Path, *, rounds: int, streams: int, tokens: int, concurrent: int,
            deadline: float, health_timeout: float, cold_first: bool, start_estimate: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "surface.json"
    spec = plan["surface"]
    record: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {
        "gpu": gpu_facts(), "stack": spec["stack"], "overrides": spec["overrides"], "streams": streams,
        "tokens": tokens, "concurrent": concurrent, "prompt_words": len(SURFACE_PROMPT.split()), "starts": []}
    started = time.monotonic()
    for index, (number, variant) in enumerate(surface_schedule(rounds)):
        if index < len(record["starts"]):
            continue  # done by an earlier call
        # A start takes as long as the slowest warm one so far (the first, cold one compiles).
        durations = [s["seconds"] for s in record["starts"][1:]] or [start_estimate]
        if time.monotonic() - started + max(durations) + 10 > deadline:
            print(f"stopped before start {index + 1}: not enough time left before the deadline", flush=True)
            break
        cold = cold_first and index == 0
        run = {**spec["variants"][variant], "name": f"surface-{index + 1}-r{number}-{variant}",
               "drop_page_cache": True, "fresh_compile_cache": cold}
        print(f"start {index + 1}: round {number}, {variant}{' (empty compile cache)' if cold else ''} ...", flush=True)
        began = time.monotonic()
        process, log, result = start_server(run, out, health_timeout)
        result |= {"round": number, "variant": variant, "cold": cold}
        if result["health_s"] is not None:
            port, model = _port(run["argv"]), _model_name(run["argv"])
            try:
                if cold:
                    result["requests"] = measure_requests(port, model, spec["api_key"])
                result["measured"] = measure_surface(port, model, spec["api_key"], streams=streams, tokens=tokens,
                                                     concurrent=concurrent)
            except Exception as error:  # the start-up figures are still worth keeping
                result["measure_error"] = repr(error)
        finish_server(process, log, result)
        result["seconds"] = round(time.monotonic() - began, 1)
        record["starts"].append(result)
        record["summary"] = surface_summary(record["starts"])
        path.write_text(json.dumps(record, indent=1))
        print(json.dumps({k: result.get(k) for k in ("name", "health_s", "stop_s", "seconds", "measure_error")}), flush=True)
        if result["health_s"] is None or "measure_error" in result:
            print("\n".join(log.text().splitlines()[-40:]), flush=True)
            break
    print(json.dumps(record.get("summary"), indent=1), flush=True)


def gpu_facts() -> dict[str, Any]:
    script = ("import json, torch; f, t = torch.cuda.mem_get_info(); p = torch.cuda.get_device_properties(0);"
              "print(json.dumps({'name': p.name, 'total_bytes': t, 'free_bytes': f, 'torch': torch.__version__,"
              " 'cuda': torch.version.cuda, 'count': torch.cuda.device_count()}))")
    probe = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    facts: dict[str, Any] = json.loads(probe.stdout) if probe.returncode == 0 else {"error": probe.stderr[-500:]}
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True)
        facts["nvidia_smi"] = smi.stdout.strip()
    versions = subprocess.run([sys.executable, "-c", "import vllm, transformers; print(vllm.__version__, transformers.__version__)"],
                              capture_output=True, text=True)
    facts["vllm_transformers"] = versions.stdout.strip() or versions.stderr.strip()[-500:]
    return facts


def disk_read_rate(path: Path) -> dict[str, Any]:
    """One shard read with dd after the page cache is dropped: the disk's own sequential rate."""
    _drop_page_cache()
    started = time.monotonic()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=16M"], capture_output=True, check=True)
    seconds = time.monotonic() - started
    size = path.stat().st_size
    return {"file": str(path), "bytes": size, "seconds": round(seconds, 2), "GBps": round(size / seconds / 1e9, 2)}


def run(plan: dict[str, Any], out: Path, only: list[str], deadline: float, health_timeout: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {"runs": []}
    results.setdefault("gpu", gpu_facts())
    started = time.monotonic()
    for spec in plan["runs"]:
        if only and spec["name"] not in only:
            continue
        if spec.get("gpus", 1) > results["gpu"].get("count", 1):
            print(f"skipped {spec['name']}: it needs {spec['gpus']} GPUs", flush=True)
            continue
        if time.monotonic() - started + spec.get("budget_s", 180) > deadline:
            print(f"skipped {spec['name']}: not enough time left before the deadline", flush=True)
            continue
        if spec.get("disk_probe"):
            results.setdefault("disk", disk_read_rate(Path(spec["disk_probe"])))
        print(f"run {spec['name']} ...", flush=True)
        result = run_one(spec, out, health_timeout)
        results["runs"].append(result)
        results_path.write_text(json.dumps(results, indent=1))
        print(json.dumps({k: result.get(k) for k in ("name", "health_s", "requests", "stop_s")}), flush=True)
        print(json.dumps(result["log_figures"]), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make-models")
    make.add_argument("plan", type=Path)
    runs = sub.add_parser("run")
    runs.add_argument("plan", type=Path)
    runs.add_argument("out", type=Path)
    runs.add_argument("--only", action="append", default=[])
    runs.add_argument("--deadline", type=float, default=540, help="seconds this call may take in all")
    runs.add_argument("--health-timeout", type=float, default=300)
    groups = sub.add_parser("run-group", help="issue 27: a multi-node group's pods as processes of one host")
    groups.add_argument("plan", type=Path)
    groups.add_argument("out", type=Path)
    groups.add_argument("--health-timeout", type=float, default=400)
    guard = sub.add_parser("surface", help="the allow-list's cost: guarded against plain starts, alternating")
    guard.add_argument("plan", type=Path)
    guard.add_argument("out", type=Path)
    guard.add_argument("--rounds", type=int, default=3)
    guard.add_argument("--streams", type=int, default=8, help="streams one after another, per start")
    guard.add_argument("--tokens", type=int, default=256)
    guard.add_argument("--concurrent", type=int, default=32, help="streams at once, per start")
    guard.add_argument("--cold-first", action="store_true", help="empty the compile cache before the first start")
    guard.add_argument("--deadline", type=float, default=540, help="seconds this call may take in all")
    guard.add_argument("--health-timeout", type=float, default=300)
    guard.add_argument("--start-estimate", type=float, default=120, help="seconds a start and its requests take, until one is timed")
    args = parser.parse_args()
    plan = json.loads(args.plan.read_text())
    if args.command == "make-models":
        make_models(plan)
    elif args.command == "surface":
        surface(plan, args.out, rounds=args.rounds, streams=args.streams, tokens=args.tokens, concurrent=args.concurrent,
                deadline=args.deadline, health_timeout=args.health_timeout, cold_first=args.cold_first,
                start_estimate=args.start_estimate)
    elif args.command == "run-group":
        args.out.mkdir(parents=True, exist_ok=True)
        results = {"gpu": gpu_facts(), "groups": [run_group(group, args.out, args.health_timeout) for group in plan["groups"]]}
        (args.out / "group-results.json").write_text(json.dumps(results, indent=1))
    else:
        run(plan, args.out, args.only, args.deadline, args.health_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
