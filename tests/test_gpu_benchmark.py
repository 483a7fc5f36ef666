"""The GPU cold-start benchmark's own logic, checked here without a GPU (docs/gpu-cold-start.md).

The log reader is held on vLLM 0.24's own lines as the GPU machine captured them; the checkpoint
maker on the fixture models' published parameter counts; the argv on the program's rendering.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import container, render_values, unprefixed

# The benchmark's scripts run from their own folders (the GPU machine's half travels alone).
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path[:0] = [str(BENCHMARKS), str(BENCHMARKS / "gpu")]
import device_bench  # noqa: E402
import vllm_log  # noqa: E402
from gpu_cold_start import STACKS, device_argv, device_env, model_dir, stack_config  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARCHITECTURES = yaml.safe_load((FIXTURES / "model_architectures.yaml").read_text())["models"]


def _fixture(model_id: str) -> dict:
    return next(model for model in ARCHITECTURES if model["id"] == model_id)


# --- the log reader ----------------------------------------------------------------------------


def test_the_log_reader_takes_vllm_0_24_s_lines_as_the_gpu_machine_wrote_them():
    figures = vllm_log.parse((FIXTURES / "gpu" / "vllm-0.24-llama-load.log").read_text())
    # "Loading weights took 7.65 seconds", "Model loading took 15.0 GiB and 9.207845 seconds" (V2 runner)
    assert figures.weights_load_s == 7.65
    assert figures.model_load_gib == 15.0
    assert figures.model_load_s == pytest.approx(9.207845)
    assert figures.kv_tokens is None  # that start-up stopped before the KV cache was sized


def test_the_log_reader_takes_every_start_up_figure_in_vllm_0_24_s_formats():
    # Each line is the vLLM 0.24.0 format string (vllm_log.py names where) filled in.
    log = "\n".join([
        "(EngineCore pid=7) INFO 12-07 19:48:43 [gpu_model_runner.py:5256] Model loading took 14.99 GiB memory and 5.802133 seconds",
        "(EngineCore pid=7) INFO 12-07 19:48:50 [backends.py:1148] Dynamo bytecode transform time: 4.81 s",
        "(EngineCore pid=7) INFO 12-07 19:48:55 [backends.py:1090] Using cache directory: /c/torch_compile_cache/ab12/rank_0_0/backbone for vLLM's torch.compile",
        "(EngineCore pid=7) INFO 12-07 19:49:10 [backends.py:394] Compiling a graph for compile range (1, 8192) takes 20.10 s",
        "(EngineCore pid=7) INFO 12-07 19:49:10 [backends.py:292] Directly load the compiled graph(s) for compile range (1, 8192) from the cache, took 1.234 s",
        "(EngineCore pid=7) INFO 12-07 19:49:11 [monitor.py:53] torch.compile took 27.36 s in total",
        "(EngineCore pid=7) INFO 12-07 19:49:12 [gpu_worker.py:509] Available KV cache memory: 53.72 GiB",
        ("(EngineCore pid=7) INFO 12-07 19:49:12 [gpu_worker.py:520] CUDA graph memory profiling is enabled (default since "
         "v0.21.0). The current --gpu-memory-utilization=0.9200 is equivalent to --gpu-memory-utilization=0.9080 without "
         "CUDA graph memory profiling."),
        "(EngineCore pid=7) INFO 12-07 19:49:12 [kv_cache_utils.py:2146] GPU KV cache size: 440,064 tokens",
        "(EngineCore pid=7) INFO 12-07 19:49:12 [kv_cache_utils.py:2148] Maximum concurrency for 16,384 tokens per request: 26.86x",
        "(EngineCore pid=7) INFO 12-07 19:49:22 [gpu_model_runner.py:6657] Graph capturing finished in 9 secs, took 0.53 GiB",
        "(EngineCore pid=7) INFO 12-07 19:49:22 [core.py:338] init engine (profile, create kv cache, warmup model) took 45.10 s (compilation: 27.36 s)",
        "(EngineCore pid=7) INFO 12-07 19:49:30 [gpu_worker.py:509] Available KV cache memory: 1.00 GiB",
    ])
    figures = vllm_log.parse(log)
    assert (figures.model_load_gib, figures.model_load_s) == (14.99, 5.802133)
    assert figures.dynamo_s == 4.81
    assert figures.compile_cache_dir == "/c/torch_compile_cache/ab12/rank_0_0/backbone"
    assert figures.compiled_ranges == {"(1, 8192)": 20.10}
    assert figures.cache_loaded_ranges == {"(1, 8192)": 1.234}
    assert figures.compile_total_s == 27.36
    assert figures.kv_available_gib == 53.72  # the first start-up's figure; a later repeat is ignored
    assert (figures.utilization_set, figures.utilization_without_graphs) == (0.92, 0.908)
    assert (figures.kv_tokens, figures.max_model_len, figures.max_concurrency) == (440064, 16384, 26.86)
    assert (figures.graph_capture_s, figures.graph_capture_gib) == (9.0, 0.53)
    assert (figures.init_engine_s, figures.init_engine_compile_s) == (45.10, 27.36)


def test_a_log_without_the_figures_leaves_them_unset():
    figures = vllm_log.parse("(APIServer pid=1) INFO Resolved architecture: LlamaForCausalLM\n")
    assert figures.kv_tokens is None and figures.compiled_ranges == {} and not figures.aot_loaded


# --- the random checkpoints -----------------------------------------------------------------


@pytest.mark.parametrize("model_id", ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct"])
def test_the_random_checkpoint_has_the_real_model_s_tensors_and_bytes(model_id):
    model = _fixture(model_id)
    count = device_bench.parameter_count(model["config"])
    assert count * 2 == model["weight_total_size"]  # bf16: the published checkpoint's bytes exactly
    assert count == pytest.approx(model["reference"]["params"], rel=1e-3)


def test_the_checkpoint_maker_refuses_a_family_it_does_not_lay_out():
    with pytest.raises(ValueError, match="only llama, mistral and qwen2"):
        device_bench.tensor_shapes({**_fixture("Qwen/Qwen2.5-7B-Instruct")["config"], "model_type": "qwen3"})


# --- the argv is the program's ---------------------------------------------------------------


def test_the_benchmark_runs_the_rendered_argv_with_only_model_path_and_host_changed():
    stack = stack_config("Pulumi.bench-llama-3-1-8b.yaml", {"engine": {"gpuMemoryUtilization": 0.8}})
    values = unprefixed(stack["config"])
    server = container(render_values(values), "Deployment", "vllm")
    directory = model_dir(server)
    argv = device_argv(server, directory)
    assert directory == "/root/models/Llama-3.1-8B"
    rendered = server["command"] + server["args"]
    changed = [(before, after) for before, after in zip(rendered, argv, strict=True) if before != after]
    assert changed == [("--model=/model", "--model=/root/models/Llama-3.1-8B"), ("--host=0.0.0.0", "--host=127.0.0.1")]
    assert "--gpu-memory-utilization=0.8" in argv
    env = device_env(server)
    # The compile cache: the directory server.compileCache mounts (compile-cache/<key>), on this machine.
    mount = next(m for m in server["volumeMounts"] if m["mountPath"] == "/vllm-cache")
    assert env["VLLM_CACHE_ROOT"] == f"/root/vllm-cache/{mount['subPath']}"
    assert mount["subPath"].startswith("compile-cache/")


def test_the_benchmark_stacks_are_the_fixture_models():
    for stack_file, model_id in (("Pulumi.bench-llama-3-1-8b.yaml", "meta-llama/Llama-3.1-8B-Instruct"),
                                 ("Pulumi.bench-qwen2-5-7b.yaml", "Qwen/Qwen2.5-7B-Instruct")):
        stack = yaml.safe_load((STACKS / stack_file).read_text())["config"]
        expected = _fixture(model_id)["config"]
        assert {key: stack["vllm-serving:model"]["architecture"].get(key) for key in expected if key != "architectures"} == {
            key: value for key, value in expected.items() if key != "architectures"}


# --- issue 27: the multi-node group as two processes of one host ------------------------------


def test_the_group_runs_the_leader_s_and_the_worker_s_rendered_argv_with_lws_variables_filled():
    from gpu_cold_start import GROUP_STACK, group_process

    values = unprefixed(stack_config(GROUP_STACK)["config"])
    rendering = render_values(values)
    lws = next(m for m in rendering.manifests if m["kind"] == "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    leader = group_process(template["leaderTemplate"]["spec"]["containers"][0], 0)
    worker = group_process(template["workerTemplate"]["spec"]["containers"][0], 1)
    assert leader["argv"][:2] == ["vllm", "serve"]
    assert "--node-rank=0" in leader["argv"] and "--headless" not in leader["argv"]
    assert "--node-rank=1" in worker["argv"] and "--headless" in worker["argv"]
    for process in (leader, worker):
        assert "--master-addr=127.0.0.1" in process["argv"]
        assert "--nnodes=2" in process["argv"] and "--pipeline-parallel-size=2" in process["argv"]
        assert not any("$(" in arg for arg in process["argv"])
        assert process["env"]["NCCL_NVLS_ENABLE"] == "0"
    assert (leader["env"]["CUDA_VISIBLE_DEVICES"], worker["env"]["CUDA_VISIBLE_DEVICES"]) == ("0", "1")


# --- the measured cases (docs/gpu-cold-start.md, one H100, vLLM 0.24.0) -------------------------

MEASURED = FIXTURES.parent.parent / "docs" / "gpu-cold-start" / "h100-2026-12-07" / "3-results.json"


def _measured_runs() -> list[dict]:
    import json

    return json.loads(MEASURED.read_text())["runs"]


def test_the_fit_check_s_weights_per_gpu_are_within_half_a_percent_of_what_vllm_allocated():
    from compare import compare_run

    for run in _measured_runs():
        compared = compare_run(run, total_bytes=85017493504)
        # vLLM 0.24: "Model loading took 15.0 GiB" (rounded to 0.01 GiB); the fit check: 14.96 GiB.
        assert compared["program_weights_gib"] == pytest.approx(compared["engine_weights_gib"], rel=0.005)


def test_the_predicted_load_term_never_under_states_the_measured_load_from_a_local_disk():
    # 16.06 GB at server.assumedLoadRateGBps 0.5 is 32.1 s; vLLM read them in 7.14-7.65 s from the
    # machine's local disk (2.1-2.25 GB/s). A slower network volume is what the default stands for.
    from compare import stack_of

    from components.config.rules import STARTUP_OVERHEAD_SECONDS
    from components.server.cold_start import predict_cold_start

    for run in _measured_runs():
        predicted = predict_cold_start(stack_of(run))
        assert predicted is not None
        load_term = predicted.load_seconds - STARTUP_OVERHEAD_SECONDS
        measured = run["log_figures"]["weights_load_s"]
        assert measured <= load_term <= 5 * measured


# --- the allow-list's cost on the GPU (device_bench.py surface) ---------------------------------


def test_the_surface_plan_removes_the_allow_list_and_nothing_else():
    from gpu_cold_start import BENCH_DIR, BENCH_KEY, DRAIN_DIR, surface_plan

    plan = surface_plan()
    guarded, plain = plan["variants"]["guarded"], plan["variants"]["plain"]
    assert "--middleware=vllm_serving_surface.SurfaceGuard" in guarded["argv"]
    assert [arg for arg in guarded["argv"] if not arg.startswith("--middleware=")] == plain["argv"]
    assert {k: v for k, v in guarded["env"].items() if k not in ("PYTHONPATH", "VLLM_SERVING_SURFACE")} == plain["env"]
    # The key: the Secret reference becomes the benchmark's key, which the requests send; both
    # variants keep vLLM's own key check.
    assert guarded["env"]["VLLM_API_KEY"] == plain["env"]["VLLM_API_KEY"] == plan["api_key"] == BENCH_KEY
    policy = json.loads(guarded["env"]["VLLM_SERVING_SURFACE"])
    assert policy["requireKey"] is True and policy["keyedPrefixes"] == ["/v1"] and policy["drainDir"] == DRAIN_DIR
    assert guarded["env"]["PYTHONPATH"] == BENCH_DIR
    # The same compile cache as the cold-start plan's Llama runs: the key changes no cache key.
    from gpu_cold_start import plan as cold_start_plan

    llama_cold = next(run for run in cold_start_plan()["runs"] if run["name"] == "llama-cold")
    assert guarded["env"]["VLLM_CACHE_ROOT"] == llama_cold["env"]["VLLM_CACHE_ROOT"]


def test_the_server_env_puts_the_bench_folder_before_the_carried_vllm():
    env = device_bench.server_env({"PYTHONPATH": "{bench_dir}", "A": "1"}, outer={"PYTHONPATH": "/tmp/site", "B": "2"})
    assert env["PYTHONPATH"] == f"{device_bench.HERE}:/tmp/site"
    assert (env["A"], env["B"]) == ("1", "2")
    plain = device_bench.server_env({"A": "1"}, outer={"PYTHONPATH": "/tmp/site"})
    assert plain["PYTHONPATH"] == "/tmp/site"


def test_the_device_env_refuses_a_secret_it_cannot_stand_in_for():
    with pytest.raises(ValueError, match="stand in"):
        device_env({"env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}]})


def test_server_sent_events_split_across_reads_are_parsed_once_whole():
    first = b'data: {"choices": [{"text": " w1"}]}\n\ndata: {"choi'
    events, rest = device_bench.parse_sse(b"", first)
    assert events == [{"choices": [{"text": " w1"}]}]
    events, rest = device_bench.parse_sse(rest, b'ces": [], "usage": {"completion_tokens": 2}}\n\ndata: [DONE]\n\n')
    assert events == [{"choices": [], "usage": {"completion_tokens": 2}}] and rest == b""


def test_a_stream_s_figures():
    figures = device_bench.stream_figures(10.0, [10.02, 10.03, 10.52], tokens=51)
    assert figures["ttft_s"] == pytest.approx(0.02)
    assert figures["per_token_s"] == pytest.approx(0.52 / 51)
    assert figures["decode_per_token_s"] == pytest.approx(0.50 / 50)


def test_the_surface_rounds_alternate_the_order_and_start_with_the_rendered_server():
    assert device_bench.surface_schedule(3) == [(1, "guarded"), (1, "plain"), (2, "plain"), (2, "guarded"),
                                                (3, "guarded"), (3, "plain")]


def _start(number: int, variant: str, per_token: float, ttft: float) -> dict:
    sample = {"per_token_s": per_token, "decode_per_token_s": per_token * 0.9, "ttft_s": ttft}
    measured = {kind: {"samples": [sample, {**sample, "per_token_s": per_token * 3}, sample]} for kind in ("sequential", "concurrent")}
    return {"round": number, "variant": variant, "measured": measured}


def test_the_surface_summary_gives_per_round_ratios_of_medians_and_their_min_and_median():
    starts = [_start(1, "guarded", 0.0071, 0.020), _start(1, "plain", 0.0070, 0.020),
              _start(2, "plain", 0.0070, 0.025), _start(2, "guarded", 0.0070, 0.020),
              _start(3, "guarded", 0.0077, 0.022), _start(3, "plain", 0.0070, 0.020),
              {"round": 4, "variant": "guarded", "measured": None}, _start(4, "plain", 0.001, 0.001)]  # incomplete: left out
    summary = device_bench.surface_summary(starts)
    assert [row["round"] for row in summary["rounds"]] == [1, 2, 3]
    assert [row["sequential_per_token_ratio"] for row in summary["rounds"]] == [1.0143, 1.0, 1.1]  # rounded to 4 places
    assert summary["rounds"][0]["sequential_per_token_ms"] == {"plain": 7.0, "guarded": 7.1}
    assert summary["overall"]["sequential_per_token_ratio"] == {"min": 1.0, "median": pytest.approx(1.0143, abs=1e-4)}
    assert summary["overall"]["concurrent_ttft_ratio"] == {"min": 0.8, "median": 1.0}
