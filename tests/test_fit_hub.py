"""The preview-time read of config.json and the safetensors index, against a local fake Hub."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from components.fit import Architecture, UnknownArchitecture
from components.fit.hub import HubModelFiles, HubReadError, fetch_model_files, read_hub_architecture
from components.fit.weights import WeightBytes

LLAMA = yaml.safe_load((Path(__file__).parent / "fixtures" / "model_architectures.yaml").read_text())["models"][0]


class FakeHub(ThreadingHTTPServer):
    """Serves /{repo}/resolve/{rev}/{file} from `files`; records method, path and auth."""

    def __init__(self, files: dict[str, bytes], token: str | None = None, delay: float = 0.0,
                 redirects: dict[str, tuple[str, dict[str, str]]] | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.token, self.delay = files, token, delay
        self.seen: list[tuple[str, str, str | None]] = []  # (method, path, Authorization header)
        self.redirects = redirects or {}  # path -> (Location, extra headers), answered with 302

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args) -> None:
        pass

    def answer(self, with_body: bool) -> None:
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        if self.server.delay:
            threading.Event().wait(self.server.delay)
        if self.server.token and self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self.send_response(401)
            self.send_header("X-Error-Code", "GatedRepo")
            self.end_headers()
            return
        if self.path in self.server.redirects:
            location, extra = self.server.redirects[self.path]
            self.send_response(302)
            self.send_header("Location", location)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.server.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.end_headers()
            return
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)
        except BrokenPipeError:  # the client gave up (the timeout test)
            pass

    def do_GET(self) -> None:
        self.answer(True)

    def do_HEAD(self) -> None:
        self.answer(False)


@pytest.fixture
def hub(request):
    servers = []

    def start(files: dict[str, bytes], **kwargs) -> FakeHub:
        server = FakeHub(files, **kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


REPO = "meta-llama/Llama-3.1-8B-Instruct"
PREFIX = f"/{REPO}/resolve/main/"
FILES = {
    PREFIX + "config.json": json.dumps(LLAMA["config"]).encode(),
    PREFIX + "model.safetensors.index.json": json.dumps({"metadata": {"total_size": 16060522496}, "weight_map": {}}).encode(),
}


def weight_total(read: HubModelFiles | Architecture) -> int:
    """The weights' size a read found; failing the test when it found none."""
    weights: WeightBytes | None = read.weight_bytes
    assert weights is not None, "no weight size read"
    return weights.total


def test_reads_config_and_index_total_size_with_token(hub):
    server = hub(FILES, token="hf_secret")
    files = fetch_model_files(REPO, token="hf_secret", endpoint=server.url, timeout=5)
    assert files.config["num_hidden_layers"] == 32
    assert weight_total(files) == 16060522496
    assert [(method, path) for method, path, _ in server.seen] == [
        ("GET", PREFIX + "config.json"), ("GET", PREFIX + "model.safetensors.index.json")]
    assert {auth for _, _, auth in server.seen} == {"Bearer hf_secret"}
    arch = read_hub_architecture(REPO, token="hf_secret", endpoint=server.url)
    assert isinstance(arch, Architecture) and weight_total(arch) == 16060522496


def test_honours_hf_endpoint(hub, monkeypatch):
    server = hub(FILES)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    assert weight_total(fetch_model_files(REPO)) == 16060522496
    assert server.seen[0][2] is None  # no token given, none sent


def test_single_file_model_sized_by_head(hub):
    files = {PREFIX + "config.json": FILES[PREFIX + "config.json"], PREFIX + "model.safetensors": b"x" * 1234}
    server = hub(files)
    result = fetch_model_files(REPO, endpoint=server.url)
    assert weight_total(result) == 1234
    assert server.seen[-1][:2] == ("HEAD", PREFIX + "model.safetensors")


def test_gated_without_token_is_a_skip_with_the_reason(hub):
    server = hub(FILES, token="hf_secret")
    with pytest.raises(HubReadError, match=r"HTTP 401 \(GatedRepo\)"):
        fetch_model_files(REPO, endpoint=server.url)
    arch = read_hub_architecture(REPO, endpoint=server.url)
    assert isinstance(arch, UnknownArchitecture) and "HTTP 401" in arch.reason


def test_timeout_is_a_skip(hub):
    server = hub(FILES, delay=2.0)
    arch = read_hub_architecture(REPO, endpoint=server.url, timeout=0.3)
    assert isinstance(arch, UnknownArchitecture) and "timed out" in arch.reason


def test_missing_config_is_an_error(hub):
    server = hub({})
    with pytest.raises(HubReadError, match=r"the repository has no config\.json"):
        fetch_model_files(REPO, endpoint=server.url)


def test_unreachable_is_an_error():
    with pytest.raises(HubReadError, match=r"Connection refused|refused"):
        fetch_model_files(REPO, endpoint="http://127.0.0.1:9", timeout=2)


def test_head_of_a_weight_file_reads_the_redirect_and_does_not_follow_it(hub):
    cdn = hub({"/blob": b"x" * 10})
    files = {PREFIX + "config.json": FILES[PREFIX + "config.json"]}
    redirects = {PREFIX + "model.safetensors": (cdn.url + "/blob", {"X-Linked-Size": "2200119864"})}
    server = hub(files, redirects=redirects)
    assert weight_total(fetch_model_files(REPO, token="hf_secret", endpoint=server.url)) == 2200119864
    assert cdn.seen == []


def test_a_redirect_to_another_host_does_not_carry_the_token(hub):
    other = hub(FILES)
    moved = f"http://localhost:{other.server_address[1]}"  # same machine, another host name
    redirects: dict[str, tuple[str, dict[str, str]]] = {PREFIX + name: (moved + PREFIX + name, {}) for name in ("config.json", "model.safetensors.index.json")}
    server = hub({}, redirects=redirects)
    assert weight_total(fetch_model_files(REPO, token="hf_secret", endpoint=server.url)) == 16060522496
    assert {auth for _, _, auth in server.seen} == {"Bearer hf_secret"}
    assert [auth for _, _, auth in other.seen] == [None, None]
