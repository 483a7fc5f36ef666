"""`vllm-serving verify` against a small OpenAI-compatible server on 127.0.0.1, healthy and broken."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from vllm_serving.cli import main
from vllm_serving.stack_file import PROJECT_ROOT

MODEL = "codellama-7b"


@dataclass
class Behaviour:
    models: list[str] = field(default_factory=lambda: [MODEL])
    # When set, every /v1 route wants `Authorization: Bearer <key>`, as vLLM's --api-key does.
    api_key: str | None = None
    # ok | no_usage | reject_stream_options | fail_500 | empty | error_midstream | drop_midstream
    # | reasoning | not_openai
    completion: str = "ok"
    pieces: list[str] = field(default_factory=lambda: ["Hello", " there", "!"])
    # Deliberately not len(pieces): tells a count from the usage report from a count of chunks.
    usage_tokens: int = 5
    hang: bool = False


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that stops reading after an error event closes the socket under a write.
        pass


class FakeOpenAI:
    """Speaks as much of vLLM's OpenAI API as verify uses, with switches to break it."""

    def __init__(self, behaviour: Behaviour):
        self.behaviour = behaviour
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.handle(self, json.loads(self.rfile.read(length) or b"{}"))

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        # A short poll keeps shutdown() at each test's end quick.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any] | None) -> None:
        b = self.behaviour
        self.requests.append(
            {"path": handler.path, "auth": handler.headers.get("Authorization"), "body": body}
        )
        if b.hang:
            self.release.wait(10)
        elif b.api_key is not None and handler.headers.get("Authorization") != f"Bearer {b.api_key}":
            self._json(handler, 401, {"error": "Unauthorized"})
        elif handler.path == "/v1/models":
            self._models(handler)
        elif handler.path != "/v1/chat/completions":
            self._json(handler, 404, {"detail": "Not Found"})
        else:
            assert body is not None, "chat completions are POSTed with a JSON body"
            self._chat(handler, body)

    def _models(self, handler: BaseHTTPRequestHandler) -> None:
        b = self.behaviour
        if b.completion == "not_openai":
            page = b"<html><body>Sign in</body></html>"
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html")
            handler.send_header("Content-Length", str(len(page)))
            handler.end_headers()
            handler.wfile.write(page)
            return
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "vllm"} for m in b.models]
        self._json(handler, 200, {"object": "list", "data": data})

    def _chat(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        b = self.behaviour
        if b.completion == "reject_stream_options" and "stream_options" in body:
            message = "[{'type': 'extra_forbidden', 'loc': ('body', 'stream_options'), 'msg': 'Extra inputs are not permitted'}]"
            self._json(handler, 400, {"object": "error", "message": message, "type": "BadRequestError", "code": 400})
            return
        if b.completion == "fail_500":
            self._json(
                handler, 500,
                {"object": "error", "message": "CUDA out of memory", "type": "InternalServerError", "code": 500},
            )
            return

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        if b.completion == "drop_midstream":
            # A server process that dies mid-answer: a chunked body that never gets its last chunk.
            event = f"data: {json.dumps(chunk({'content': 'Hel'}))}\n\n".encode()
            handler.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                + f"{len(event):x}\r\n".encode() + event + b"\r\n"
            )
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()

        def send(payload: Any) -> None:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            handler.wfile.write(f"data: {text}\n\n".encode())
            handler.wfile.flush()

        send(chunk({"role": "assistant", "content": ""}))
        if b.completion != "empty":
            for piece in b.pieces:
                send(chunk({"reasoning_content": piece} if b.completion == "reasoning" else {"content": piece}))
                if b.completion == "error_midstream":
                    send({"error": {"message": "engine died mid-generation", "type": "InternalServerError", "code": 500}})
                    break
            send(chunk({}, finish="stop"))
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        if include_usage and b.completion != "no_usage":
            send({
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                "choices": [],
                "usage": {"prompt_tokens": 9, "completion_tokens": b.usage_tokens, "total_tokens": 9 + b.usage_tokens},
            })
        send("[DONE]")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    # A developer's own key or proxy must not change what the tests send, or where.
    for name in ("OPENAI_API_KEY", "VLLM_API_KEY", "OPENAI_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve():
    servers: list[FakeOpenAI] = []

    def _serve(**behaviour: Any) -> FakeOpenAI:
        server = FakeOpenAI(Behaviour(**behaviour)).start()
        servers.append(server)
        return server

    yield _serve
    for server in servers:
        server.stop()


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["verify", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- a healthy endpoint ---------------------------------------------------------------------


def test_healthy_endpoint_reports_first_token_speed_and_answer(serve, capsys):
    server = serve()
    code, out, err = run(capsys, "--url", server.url)
    assert code == 0, err
    assert "time to first token: " in out
    assert "tokens per second: " in out
    # The count comes from the usage chunk (5), not from the three content chunks.
    assert "5 completion tokens" in out and "from the server's usage report" in out
    assert "answer: Hello there!" in out
    assert f"OK: {server.url} serves {MODEL}" in out
    (request,) = server.chat_requests()
    assert request["model"] == MODEL
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert request["messages"] == [{"role": "user", "content": "Say hello in one short sentence."}]


def test_prompt_is_sent_as_given(serve, capsys):
    server = serve()
    code, _, err = run(capsys, "--url", server.url, "--prompt", "Write fizzbuzz in Python.")
    assert code == 0, err
    assert server.chat_requests()[0]["messages"][0]["content"] == "Write fizzbuzz in Python."


def test_without_usage_report_tokens_are_counted_as_content_chunks(serve, capsys):
    server = serve(completion="no_usage")
    code, out, err = run(capsys, "--url", server.url)
    assert code == 0, err
    assert "3 completion tokens" in out
    assert "counted as content chunks: the server sent no usage report" in out


def test_server_without_stream_options_is_asked_again_without_them(serve, capsys):
    # vLLM releases older than stream_options refuse the unknown field with a 400.
    server = serve(completion="reject_stream_options")
    code, out, err = run(capsys, "--url", server.url)
    assert code == 0, err
    assert "3 completion tokens" in out and "does not support stream_options" in out
    first, second = server.chat_requests()
    assert "stream_options" in first and "stream_options" not in second


def test_reasoning_without_an_answer_still_counts_as_generated(serve, capsys):
    # A reasoning model can spend a small token budget thinking, streamed outside `content`.
    server = serve(completion="reasoning")
    code, out, err = run(capsys, "--url", server.url)
    assert code == 0, err
    assert "answer: (reasoning only, no answer within the token limit) Hello there!" in out


def test_url_without_a_path_means_the_v1_api(serve, capsys):
    server = serve()
    root = server.url.removesuffix("/v1")
    code, out, err = run(capsys, "--url", root)
    assert code == 0, err
    assert server.requests[0]["path"] == "/v1/models"
    assert f"endpoint: {server.url}" in out


def test_default_model_is_the_first_listed(serve, capsys):
    server = serve(models=["first-model", "second-model"])
    code, _out, err = run(capsys, "--url", server.url)
    assert code == 0, err
    assert server.chat_requests()[0]["model"] == "first-model"


def test_model_option_picks_a_listed_model(serve, capsys):
    server = serve(models=["first-model", "second-model"])
    code, _, err = run(capsys, "--url", server.url, "--model", "second-model")
    assert code == 0, err
    assert server.chat_requests()[0]["model"] == "second-model"


# --- API keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flag", "VLLM_API_KEY", "OPENAI_API_KEY"])
def test_api_key_from_flag_or_environment(serve, capsys, monkeypatch, how):
    server = serve(api_key="s3cret")
    args = ["--url", server.url]
    if how == "flag":
        args += ["--api-key", "s3cret"]
    else:
        monkeypatch.setenv(how, "s3cret")
    code, _, err = run(capsys, *args)
    assert code == 0, err
    assert {r["auth"] for r in server.requests} == {"Bearer s3cret"}


def test_vllm_api_key_wins_over_openai_api_key(serve, capsys, monkeypatch):
    # An OPENAI_API_KEY in the shell is usually one for api.openai.com, not for this server.
    server = serve(api_key="s3cret")
    monkeypatch.setenv("VLLM_API_KEY", "s3cret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-for-openai")
    code, _, err = run(capsys, "--url", server.url)
    assert code == 0, err


def test_401_without_a_key_says_to_pass_one(serve, capsys):
    server = serve(api_key="s3cret")
    code, _out, err = run(capsys, "--url", server.url)
    assert code == 1
    line = one_error_line(err)
    assert "HTTP 401" in line and "requires an API key" in line and "--api-key" in line


def test_401_with_a_wrong_key_says_it_was_rejected(serve, capsys):
    server = serve(api_key="s3cret")
    code, _, err = run(capsys, "--url", server.url, "--api-key", "wrong")
    assert code == 1
    line = one_error_line(err)
    assert "HTTP 401" in line and "rejected" in line and "--api-key" in line


# --- broken endpoints -------------------------------------------------------------------------


def test_nothing_listening(capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, _, err = run(capsys, "--url", url)
    assert code == 1
    line = one_error_line(err)
    assert f"cannot reach {url}: connection refused" in line


def test_in_cluster_name_that_does_not_resolve_points_to_port_forward(capsys, monkeypatch):
    # No real DNS lookup: outside a cluster this name never resolves, which is the case under test.
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if str(host).endswith(".svc.cluster.local"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    code, _, err = run(capsys, "--url", "http://codellama-7b.llm.svc.cluster.local:8000/v1")
    assert code == 1
    line = one_error_line(err)
    assert "the host name codellama-7b.llm.svc.cluster.local does not resolve" in line
    assert "kubectl port-forward -n llm svc/codellama-7b 8000:8000" in line
    assert "--url http://localhost:8000/v1" in line


def test_no_answer_within_the_timeout(serve, capsys):
    server = serve(hang=True)
    code, _, err = run(capsys, "--url", server.url, "--timeout", "0.3")
    assert code == 1
    line = one_error_line(err)
    assert "accepted the connection but sent no answer within 0.3 s" in line


def test_no_connection_within_the_timeout(capsys, monkeypatch):
    # What a firewall that drops packets looks like, without sending any to a real address.
    def create_connection(*args, **kwargs):
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, _, err = run(capsys, "--url", url, "--timeout", "0.3")
    assert code == 1
    assert f"cannot reach {url}: no connection within 0.3 s" in one_error_line(err)


def test_model_not_listed_names_the_listed_ones(serve, capsys):
    server = serve(models=[MODEL, "other-model"])
    code, _, err = run(capsys, "--url", server.url, "--model", "llama-3-8b")
    assert code == 1
    line = one_error_line(err)
    assert "'llama-3-8b' is not listed" in line and "listed: codellama-7b, other-model" in line
    assert server.chat_requests() == []


def test_something_else_answering_on_the_port(serve, capsys):
    server = serve(completion="not_openai")
    code, _, err = run(capsys, "--url", server.url)
    assert code == 1
    assert "does not answer like an OpenAI-compatible API" in one_error_line(err)


def test_no_models_listed(serve, capsys):
    server = serve(models=[])
    code, _, err = run(capsys, "--url", server.url)
    assert code == 1
    assert "lists no models" in one_error_line(err)


def test_wrong_base_url_path(serve, capsys):
    server = serve()
    code, _, err = run(capsys, "--url", server.url.replace("/v1", "/api"))
    assert code == 1
    line = one_error_line(err)
    assert "HTTP 404" in line and "/v1" in line


def test_completion_failing_with_500(serve, capsys):
    server = serve(completion="fail_500")
    code, out, err = run(capsys, "--url", server.url)
    assert code == 1
    line = one_error_line(err)
    assert f"chat completion with {MODEL}: HTTP 500: CUDA out of memory" in line
    assert "models: codellama-7b" in out


def test_stream_that_errors_midway(serve, capsys):
    server = serve(completion="error_midstream")
    code, _, err = run(capsys, "--url", server.url)
    assert code == 1
    line = one_error_line(err)
    assert "the server reported an error: engine died mid-generation" in line


def test_connection_that_breaks_during_the_answer(serve, capsys):
    server = serve(completion="drop_midstream")
    code, _, err = run(capsys, "--url", server.url)
    assert code == 1
    line = one_error_line(err)
    # It was reached: the listing succeeded, so "cannot reach" would send the user the wrong way.
    assert line.startswith(f"error: connection to {server.url} failed: ")


def test_stream_that_returns_nothing(serve, capsys):
    server = serve(completion="empty")
    code, _, err = run(capsys, "--url", server.url)
    assert code == 1
    assert "ended without generating any text" in one_error_line(err)


def test_console_script_fails_without_a_traceback():
    url = f"http://127.0.0.1:{free_port()}/v1"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    result = subprocess.run(
        [sys.executable, "-m", "vllm_serving", "verify", "--url", url],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=60,
    )
    assert result.returncode == 1
    assert "connection refused" in one_error_line(result.stderr)


# --- --stack --------------------------------------------------------------------------------------


def fake_pulumi(bin_dir: Path, outputs: dict[str, str], fail: str | None = None) -> Path:
    """A `pulumi` on PATH that answers `pulumi stack output NAME --stack STACK` and logs its arguments."""
    log = bin_dir / "pulumi.log"
    cases = "\n".join(f"  {name}) echo '{value}' ;;" for name, value in outputs.items())
    failure = f"echo '{fail}' >&2; exit 255" if fail else ""
    script = bin_dir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{log}"\n'
        f"{failure}\n"
        'case "$3" in\n'
        f"{cases}\n"
        "  *) echo \"error: current stack does not have output property '$3'\" >&2; exit 255 ;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log


def test_stack_gives_url_and_served_model_name(serve, capsys, monkeypatch, tmp_path):
    # Served name second: verify must check the stack's model, not the first listed.
    server = serve(models=["other-model", MODEL])
    log = fake_pulumi(tmp_path, {"openaiBaseUrl": server.url, "servedModelName": MODEL})
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    code, _out, err = run(capsys, "--stack", "prod")
    assert code == 0, err
    assert server.chat_requests()[0]["model"] == MODEL
    assert log.read_text().splitlines() == [
        "stack output openaiBaseUrl --stack prod",
        "stack output servedModelName --stack prod",
    ]


def test_stack_model_not_served(serve, capsys, monkeypatch, tmp_path):
    server = serve(models=["other-model"])
    fake_pulumi(tmp_path, {"openaiBaseUrl": server.url, "servedModelName": MODEL})
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    code, _, err = run(capsys, "--stack", "prod")
    assert code == 1
    assert "'codellama-7b' is not listed" in one_error_line(err)


def test_stack_without_the_pulumi_cli_says_to_pass_url(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run(capsys, "--stack", "prod")
    assert code == 2
    line = one_error_line(err)
    assert "pulumi CLI is not installed" in line and "pass --url" in line
    assert "kubectl port-forward svc/<deployName> 8000:8000" in line


def test_stack_that_pulumi_cannot_find(capsys, monkeypatch, tmp_path):
    fake_pulumi(tmp_path, {}, fail='error: no stack named "nope" found')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    code, _, err = run(capsys, "--stack", "nope")
    assert code == 2
    line = one_error_line(err)
    assert 'no stack named "nope" found' in line and "pass --url" in line


def test_url_and_stack_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "--url", "http://localhost:8000/v1", "--stack", "prod"])
    assert exit_info.value.code == 2
