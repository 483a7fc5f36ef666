"""What the fake Hub and the fake git/LFS server share: a loopback HTTP server that
records every request, serves files with Range support, and can stall one file
mid-transfer so that a test can kill the downloader at a known point."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

CHUNK = 256 * 1024


@dataclass
class Request:
    """One request as received; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Stall:
    """Stop sending `name` after `after` bytes until released (or the client goes away); `once`:
    only the first response that reaches `after` stalls, later requests are served in full."""

    name: str
    after: int
    once: bool = False
    spent: bool = False
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    # Stalled handlers must not keep the test process from stopping the server.
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        super().__init__(("127.0.0.1", 0), handler)
        self.requests: list[Request] = []
        self.completed: list[str] = []  # names of files sent in full
        self.sent: dict[str, int] = {}  # bytes sent per name, over all requests
        self.stalls: dict[str, Stall] = {}
        # name -> bytes after which every response for it is cut: the connection is closed mid-file.
        self.cuts: dict[str, int] = {}
        self.lock = threading.Lock()
        # A short poll interval: stop() waits for the loop to notice, once per test.
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    scheme = "http"

    def serve_tls(self, certificate: Path, key: Path) -> Self:
        """Serve HTTPS with this certificate (before start())."""
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.scheme = "https"
        return self

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        for stall in self.stalls.values():
            stall.release.set()
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address) -> None:
        # Downloaders killed by the tests drop their connections; that is the point, not an error.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def stall(self, name: str, after: int, once: bool = False) -> Stall:
        stall = self.stalls[name] = Stall(name, after, once)
        return stall

    def active_stall(self, name: str) -> Stall | None:
        stall = self.stalls.get(name)
        return None if stall is None or stall.spent else stall

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.completed.clear()
            self.sent.clear()
        for stall in self.stalls.values():
            stall.release.set()
        self.stalls.clear()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not reached; requests: " + repr(self.requests[-10:]))
            time.sleep(0.02)


class RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingServer

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def record(self) -> None:
        with self.server.lock:
            headers = {key.lower(): value for key, value in self.headers.items()}
            self.server.requests.append(Request(self.command, self.path, headers))

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_file(self, name: str, path: Path, headers: dict[str, str] | None = None) -> None:
        """The file at `path`, honouring a `Range: bytes=a-[b]` header; `name` keys stalls and counters."""
        size = path.stat().st_size
        start, end = 0, size - 1
        status = 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            if start >= size:
                self.reply(416, headers={"Content-Range": f"bytes */{size}"})
                return
            status = 206
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        stall = self.server.active_stall(name)
        cut = self.server.cuts.get(name)
        with path.open("rb") as handle:
            offset, remaining = start, end - start + 1
            while remaining > 0:
                count = min(CHUNK if stall else 64 * CHUNK, remaining)
                if cut is not None and offset + count > cut:
                    if cut > offset:
                        self.connection.sendfile(handle, offset, cut - offset)
                    # A server that goes away mid-file: the client sees fewer bytes than announced.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if stall and offset + count > stall.after >= offset:
                    count = max(stall.after - offset, 0)
                    if count == 0:
                        stall.spent = stall.once
                        stall.reached.set()
                        # Hold the connection open, sending nothing, as a stuck transfer would.
                        stall.release.wait(60)
                        return
                sent = self.connection.sendfile(handle, offset, count)
                if sent == 0:
                    return
                offset += sent
                remaining -= sent
                with self.server.lock:
                    self.server.sent[name] = self.server.sent.get(name, 0) + sent
        if end == size - 1:
            with self.server.lock:
                self.server.completed.append(name)


def file_requests(server: RecordingServer, predicate: Callable[[Request], bool]) -> list[Request]:
    with server.lock:
        return [r for r in server.requests if predicate(r)]


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_checksums(root: Path, skip: tuple[str, ...] = (".cache", ".huggingface", ".git")) -> dict[str, str]:
    """sha256 of every regular file under root, by relative path, skipping tool metadata
    (huggingface_hub's local_dir metadata is .cache/huggingface since 0.24, .huggingface before)."""
    sums = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            full = Path(dirpath) / name
            sums[str(full.relative_to(root))] = sha256_file(full)
    return sums
