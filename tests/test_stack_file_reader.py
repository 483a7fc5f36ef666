"""The stack file reader: what it accepts reads as the Pulumi CLI reads it; its bounds hold at the edge."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import pytest
import yaml

from vllm_serving import cli, safe_yaml
from vllm_serving.failure import SIZE_LIMIT, TRACEBACK_VARIABLE, bounded
from vllm_serving.manifests import offline_secret_placeholder
from vllm_serving.stack_file import STACKS_DIR, StackFileError, load_engine_config

MODEL = '  vllm-serving:model: {deployName: m, source: huggingface, huggingface: {id: org/m}}\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Pulumi.reader.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(StackFileError) as raised:
        load_engine_config(write(tmp_path, text))
    return str(raised.value)


def run_main(argv: list[str]) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        code = cli.main(argv)
    return code, stderr.getvalue()


@pytest.mark.parametrize("stack", sorted(STACKS_DIR.glob("Pulumi.*.yaml")), ids=lambda path: path.name)
def test_every_example_stack_reads_as_before(stack: Path):
    # What the reader replaced: yaml.safe_load, then each value as the engine passes it.
    document = yaml.safe_load(stack.read_text())
    config, _ = load_engine_config(stack)
    assert set(config) == set(document["config"])
    for key, value in document["config"].items():
        if isinstance(value, (dict, list)) and "secure" not in json.dumps(value):
            assert json.loads(config[key]) == value


def test_an_unquoted_date_is_the_text_it_is_written_as(tmp_path):
    # PyYAML would make a datetime.date (and json.dumps would raise); Go's YAML decoder, which the
    # Pulumi CLI reads stack files with, keeps a timestamp-looking scalar as its string.
    config, _ = load_engine_config(write(tmp_path, "config:\n" + MODEL + "  vllm-serving:image: {tag: 2024-01-01}\n"))
    assert json.loads(config["vllm-serving:image"]) == {"tag": "2024-01-01"}


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "Pulumi.bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfconfig:\n" + MODEL.encode())
    assert "vllm-serving:model" in load_engine_config(path)[0]


def test_provider_and_engine_namespaces_are_accepted_and_secrets_stay_placeholders(tmp_path):
    text = "config:\n" + MODEL + (
        "  kubernetes:context: prod\n  pulumi:tags: {team: llm}\n"
        "  vllm-serving:apiKey:\n    secure: v1:c2FsdA==:Y2lwaGVy\n"
    )
    config, secret_keys = load_engine_config(write(tmp_path, text))
    assert config["kubernetes:context"] == "prod" and secret_keys == ["vllm-serving:apiKey"]
    assert config["vllm-serving:apiKey"] == offline_secret_placeholder("v1:c2FsdA==:Y2lwaGVy")


def test_an_anchor_that_no_alias_uses_is_harmless(tmp_path):
    config, _ = load_engine_config(write(tmp_path, "config:\n  vllm-serving:model: &m {deployName: m}\n"))
    assert json.loads(config["vllm-serving:model"]) == {"deployName": "m"}


def test_nesting_is_allowed_up_to_the_bound_and_refused_past_it():
    assert safe_yaml.parse("[" * safe_yaml.MAX_DEPTH + "]" * safe_yaml.MAX_DEPTH) is not None
    with pytest.raises(safe_yaml.YamlRefused, match=f"nested more than {safe_yaml.MAX_DEPTH} levels"):
        safe_yaml.parse("[" * (safe_yaml.MAX_DEPTH + 1) + "]" * (safe_yaml.MAX_DEPTH + 1))


def test_a_file_is_read_up_to_the_bound_and_refused_past_it(tmp_path):
    head = "config:\n" + MODEL
    at_bound = head + "#" * (safe_yaml.MAX_FILE_BYTES - len(head) - 1) + "\n"
    assert "vllm-serving:model" in load_engine_config(write(tmp_path, at_bound))[0]
    assert "larger than 1048576 bytes" in refusal(tmp_path, at_bound + "#")


def test_an_alias_bomb_is_refused_before_anything_expands(tmp_path):
    laughs = "".join(f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 30))
    started = time.monotonic()
    message = refusal(tmp_path, "config:\n  l0: &l0 [lol]\n" + laughs)
    assert time.monotonic() - started < 1 and "alias *l0" in message


def test_every_problem_of_the_file_is_reported_in_one_run(tmp_path):
    message = refusal(tmp_path, "config:\n" + MODEL + "  vllm-serving:env: !!binary aGk=\n"
                      "  vllm-servng:replicaCount: 2\n  vllm-serving:model.volume.size: 1Ti\n")
    assert "(3 problems)" in message
    for key in ("vllm-serving:env: tag !!binary", "vllm-servng:replicaCount: unknown namespace",
                "vllm-serving:model.volume.size: a structured key written flat"):
        assert key in message


def test_a_long_key_is_cut_in_the_message(tmp_path):
    message = refusal(tmp_path, "config:\n" + MODEL + "  ? " + "k" * 5000 + "\n  : 1\n")  # past YAML's 1024 of a simple key
    assert "k" * 80 + "…" in message and "k" * 81 not in message


def test_a_long_value_in_a_message_is_cut_and_the_message_bounded():
    message = bounded("error: invalid:\n  vllm-serving:a: x (got '" + "v" * 10_000_000 + "')\n" + "  b: y\n" * 5000)
    assert len(message) <= SIZE_LIMIT + 100 and "vllm-serving:a: x (got '" + "v" * 80 + "…')" in message
    prose = "  vllm-serving:m: 'BAD' is not valid: " + "lower-case letters " * 6 + "and '-', or a digit"
    assert bounded(prose) == prose


def test_an_unexpected_failure_is_one_line_without_its_message(monkeypatch):
    def broken(args):
        raise RuntimeError("sk-secret-value-in-an-exception")

    monkeypatch.setattr(cli, "_render_command", broken)
    monkeypatch.delenv(TRACEBACK_VARIABLE, raising=False)
    monkeypatch.setattr(cli, "build_parser", _parser_with(broken))
    code, stderr = run_main(["render", "x"])
    assert code == 2 and stderr.count("\n") == 1
    assert stderr.startswith("error: unexpected RuntimeError at tests/test_stack_file_reader.py:")
    assert "sk-secret" not in stderr and "Traceback" not in stderr


def test_the_traceback_of_an_unexpected_failure_is_printed_on_request(monkeypatch):
    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "build_parser", _parser_with(broken))
    monkeypatch.setenv(TRACEBACK_VARIABLE, "1")
    code, stderr = run_main(["render", "x"])
    assert code == 2 and "Traceback" in stderr and "RuntimeError: boom" in stderr


def _parser_with(handler):
    original = cli.build_parser

    def build(command=None):
        parser = original(command)
        parser.set_defaults(handler=handler)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    sub.set_defaults(handler=handler)
        return parser

    return build
