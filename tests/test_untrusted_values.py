"""Values from the config that reach a shell or a printed command: passed as arguments, or quoted."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from components.labels import COMPLETION_MARKER
from components.serving import verify_commands
from tests.conftest import HF_MODEL, container, env_of, render_values


def test_the_init_container_reads_directories_as_arguments_never_as_shell(tmp_path: Path):
    rendering = render_values({
        "model": HF_MODEL,
        "lora": {"adapters": [{"name": "sql", "source": "huggingface", "huggingface": {"id": "org/sql-lora"}}]},
    })
    command = container(rendering, "Deployment", "wait-for-model")["command"]
    fingerprints = command[5::2]
    # The same script, run for real on directories whose names a shell would execute.
    directories = [tmp_path / "$(touch PWNED)", tmp_path / "a b;touch PWNED2"]
    for directory, fingerprint in zip(directories, fingerprints, strict=False):
        directory.mkdir()
        (directory / COMPLETION_MARKER).write_text(fingerprint)
    argv = [*command[:4], *(item for pair in zip(map(str, directories), fingerprints, strict=False) for item in pair)]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("PWNED*"))


def test_printed_commands_quote_every_value():
    commands = verify_commands(
        "http://m.llm.svc.cluster.local:8000/v1", "m", "llm", ("key-secret", "api.key")
    )
    export = shlex.split(commands[0])
    assert export[0] == "export"
    assert "-o jsonpath='{.data.api.key}'" in commands[0]
    for command in commands[1:]:
        words = shlex.split(command)
        assert words[:3] == ["curl", "-sS", words[2]] and words[2].startswith("http://m.llm.svc.cluster.local:8000/v1/")


def test_usage_statistics_are_off_unless_switched_on():
    server_env = env_of(container(render_values({"model": HF_MODEL}), "Deployment", "vllm"))
    assert server_env["VLLM_NO_USAGE_STATS"] == "1" and server_env["DO_NOT_TRACK"] == "1"
    on = env_of(container(render_values({"model": HF_MODEL, "server": {"usageStats": True}}), "Deployment", "vllm"))
    assert "VLLM_NO_USAGE_STATS" not in on and "DO_NOT_TRACK" not in on
