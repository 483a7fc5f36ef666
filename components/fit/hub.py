"""Read a Hugging Face repository's `config.json` and safetensors index: a read, never a write.

For the preview-time fit check only: nothing here runs at render time unless the caller asks.
It honours `HF_ENDPOINT` (a mirror) and a token passed in, and gives up after `timeout`
seconds per request. A repository that cannot be read gives an `UnknownArchitecture` saying
why, so the check is skipped, not failed.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import IO, Any

from typing_extensions import override

from .architecture import Architecture, UnknownArchitecture, read_architecture
from .weights import WeightBytes

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_TIMEOUT_SECONDS = 10.0
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


class HubReadError(Exception):
    """The Hub (or mirror) did not give a file; the message has the URL and the status."""


@dataclass(frozen=True)
class HubModelFiles:
    config: Mapping[str, Any]
    weight_bytes: WeightBytes | None


class _KeepTokenOnHost(urllib.request.HTTPRedirectHandler):
    """Follows redirects (a renamed repository), but never carries the token to another host."""

    @override
    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: HTTPMessage, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """For HEAD: the Hub answers a weight file with a redirect to its CDN that already carries
    X-Linked-Size, so there is nothing to follow (huggingface_hub reads it the same way)."""

    @override
    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: HTTPMessage, newurl: str
    ) -> urllib.request.Request | None:
        return None


_GET = urllib.request.build_opener(_KeepTokenOnHost)
_HEAD = urllib.request.build_opener(_NoRedirect)


class _Reader:
    def __init__(self, repo_id: str, revision: str, token: str | None, endpoint: str | None, timeout: float):
        base = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        quoted = urllib.parse.quote(revision, safe="")
        self.prefix = f"{base}/{repo_id}/resolve/{quoted}/"
        self.headers = {"User-Agent": "vllm-serving-fit-check"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def request(self, name: str, method: str = "GET") -> tuple[bytes, Mapping[str, str]] | None:
        """The file's bytes and headers; None when the repository has no such file (404)."""
        url = self.prefix + name
        request = urllib.request.Request(url, headers=self.headers, method=method)
        opener = _HEAD if method == "HEAD" else _GET
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            if method == "HEAD" and 300 <= error.code < 400:
                return b"", dict(error.headers)
            if error.code == 404 and error.headers.get("X-Error-Code") not in ("RepoNotFound", "RevisionNotFound"):
                return None
            code = error.headers.get("X-Error-Code") or error.reason
            raise HubReadError(f"GET {url}: HTTP {error.code} ({code})") from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise HubReadError(f"GET {url}: {reason}") from None

    def json(self, name: str) -> Mapping[str, Any] | None:
        answer = self.request(name)
        if answer is None:
            return None
        try:
            return json.loads(answer[0])
        except ValueError as error:
            raise HubReadError(f"{self.prefix}{name} is not JSON: {error}") from None


def fetch_model_files(
    repo_id: str,
    revision: str = "main",
    token: str | None = None,
    endpoint: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> HubModelFiles:
    """`config.json` and the weight bytes (index total_size, else the single file's size)."""
    reader = _Reader(repo_id, revision, token, endpoint, timeout)
    config = reader.json("config.json")
    if config is None:
        raise HubReadError(f"{reader.prefix}config.json: the repository has no config.json")
    index = reader.json(INDEX_FILE)
    if index is not None:
        return HubModelFiles(config, WeightBytes.from_safetensors_index(index, f"{repo_id} {INDEX_FILE}"))
    single = reader.request(SINGLE_FILE, method="HEAD")
    if single is None:
        return HubModelFiles(config, None)
    headers = {key.lower(): value for key, value in single[1].items()}
    size = headers.get("x-linked-size") or headers.get("content-length")
    weight = WeightBytes.declared(int(size), f"{repo_id} {SINGLE_FILE} size") if size else None
    return HubModelFiles(config, weight)


def read_hub_architecture(
    repo_id: str,
    revision: str = "main",
    token: str | None = None,
    endpoint: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Architecture | UnknownArchitecture:
    """The architecture of a Hub repository, or why it could not be read (never raises for I/O)."""
    try:
        files = fetch_model_files(repo_id, revision, token, endpoint, timeout)
    except HubReadError as error:
        return UnknownArchitecture(f"could not read {repo_id}@{revision}: {error}")
    return read_architecture(files.config, files.weight_bytes)
