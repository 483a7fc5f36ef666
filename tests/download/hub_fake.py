"""A small, honest stand-in for the Hugging Face Hub's download API, serving real files.

It answers what huggingface_hub's model_info / list_repo_tree / hf_hub_download /
snapshot_download call (0.x through 2.x):

  GET  /api/models/{id}[/revision/{rev}]        model info with `sha` and `siblings`
  GET  /api/models/{id}/tree/{rev}[/{path}]     file listing (recursive=true)
  HEAD /{id}/resolve/{rev}/{file}               X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size, Content-Length
  GET  /{id}/resolve/{rev}/{file}               the bytes, with Range support

LFS files (weights) carry their sha256 as ETag, as on the Hub. Gated repositories
refuse a missing token (401, X-Error-Code: GatedRepo) and a wrong one (401,
invalid credentials); unknown repositories and revisions get the Hub's error codes.
Xet is offered only for a repository created with xet=True: the tree listing then
carries `xetHash`, HEAD answers carry X-Xet-Hash and the token route, and the token
route names a Xet CAS server on a port where nothing listens. So a client that takes
the Xet path is seen asking for /xet-read-token and fails, as it would against a
mirror that only relays the Hub's HTTP API.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .http_util import RecordingHandler, RecordingServer, sha256_file

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5", ".model", ".gguf")


@dataclass
class HubFile:
    path: Path
    size: int
    blob_id: str  # git blob sha1, what the Hub reports as `oid`
    sha256: str | None  # set for LFS files

    @classmethod
    def load(cls, repo_path: str, path: Path) -> HubFile:
        size = path.stat().st_size
        blob = hashlib.sha1(b"blob %d\0" % size)
        if repo_path.endswith(LFS_SUFFIXES):
            sha256 = sha256_file(path)
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
            blob = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer)
            return cls(path, size, blob.hexdigest(), sha256)
        blob.update(path.read_bytes())
        return cls(path, size, blob.hexdigest(), None)

    def entry(self, repo_path: str, xet: bool = False) -> dict:
        entry = {"type": "file", "oid": self.blob_id, "size": self.size, "path": repo_path}
        if self.sha256:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": 134}
            if xet:
                entry["xetHash"] = self.sha256
        return entry


@dataclass
class HubRepo:
    repo_id: str
    gated: bool = False
    token: str | None = None
    xet: bool = False
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit
    commits: dict[str, dict[str, HubFile]] = field(default_factory=dict)

    def commit(self, files: dict[str, Path], branch: str = "main", tags: tuple[str, ...] = ()) -> str:
        loaded = {name: HubFile.load(name, path) for name, path in sorted(files.items())}
        digest = hashlib.sha1(self.repo_id.encode())
        for name, info in loaded.items():
            digest.update(f"{name}\0{info.blob_id}\0".encode())
        sha = digest.hexdigest()
        self.commits[sha] = loaded
        for ref in (branch, *tags):
            self.refs[ref] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


class FakeHub(RecordingServer):
    def __init__(self) -> None:
        super().__init__(_HubHandler)
        self.repos: dict[str, HubRepo] = {}
        # Another server that GETs of LFS files are redirected to, as the Hub sends them to its CDN.
        self.lfs_redirect: FakeHub | None = None

    def add_repo(self, repo_id: str, gated: bool = False, token: str | None = None, xet: bool = False) -> HubRepo:
        repo = self.repos[repo_id] = HubRepo(repo_id, gated=gated, token=token, xet=xet)
        return repo

    def xet_requests(self) -> list:
        with self.lock:
            return [r for r in self.requests if "/xet-read-token" in r.path]

    def file_requests(self) -> list:
        """Requests that fetch or probe a file's content (resolve), not API listings."""
        with self.lock:
            return [r for r in self.requests if "/resolve/" in r.path]


def _error(handler: _HubHandler, status: int, code: str | None, message: str) -> None:
    headers = {"Content-Type": "application/json", "X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    handler.reply(status, json.dumps({"error": message}).encode(), headers)


class _HubHandler(RecordingHandler):
    server: FakeHub

    def do_HEAD(self) -> None:
        self.handle_any()

    def do_GET(self) -> None:
        self.handle_any()

    def do_POST(self) -> None:
        self.read_body()
        self.handle_any()

    def handle_any(self) -> None:
        self.record()
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        query = parse_qs(url.query)
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, rest = "/".join(parts[2:4]), parts[4:]
            if not rest:
                self.model_info(repo_id, "main")
                return
            if rest[0] == "revision" and len(rest) == 2:
                self.model_info(repo_id, rest[1])
                return
            if rest[0] == "tree" and len(rest) >= 2:
                self.tree(repo_id, rest[1], "/".join(rest[2:]), query.get("recursive", ["false"])[0])
                return
            if rest[0] == "xet-read-token":
                self.xet_token(repo_id)
                return
        elif len(parts) >= 5 and parts[2] == "resolve":
            self.resolve_file("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
            return
        _error(self, 404, None, f"the fake Hub does not serve {url.path}")

    def authorized_repo(self, repo_id: str) -> HubRepo | None:
        repo = self.server.repos.get(repo_id)
        if repo is None:
            _error(self, 401, "RepoNotFound", "Repository not found")
            return None
        if repo.gated:
            auth = self.headers.get("Authorization")
            if auth is None:
                _error(self, 401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access "
                       "to it and be authenticated to access it.")
                return None
            if auth != f"Bearer {repo.token}":
                _error(self, 401, None, "Invalid credentials in Authorization header")
                return None
        return repo

    def authorized_commit(self, repo_id: str, revision: str) -> tuple[HubRepo, str] | None:
        """The repository and the commit `revision` names, or None once an error is sent."""
        repo = self.authorized_repo(repo_id)
        if repo is None:
            return None
        sha = self.resolved(repo, revision)
        return None if sha is None else (repo, sha)

    def resolved(self, repo: HubRepo, revision: str) -> str | None:
        sha = repo.resolve(revision)
        if sha is None:
            _error(self, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return sha

    def model_info(self, repo_id: str, revision: str) -> None:
        found = self.authorized_commit(repo_id, revision)
        if found is None:
            return
        repo, sha = found
        files = repo.commits[sha]
        body = {
            "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "sha": sha,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": "2024-01-01T00:00:00.000Z",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "siblings": [
                {"rfilename": name, "size": info.size, "blobId": info.blob_id,
                 **({"lfs": {"sha256": info.sha256, "size": info.size, "pointerSize": 134}} if info.sha256 else {})}
                for name, info in files.items()
            ],
        }
        self.reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def tree(self, repo_id: str, revision: str, prefix: str, recursive: str) -> None:
        found = self.authorized_commit(repo_id, revision)
        if found is None:
            return
        repo, sha = found
        prefix = prefix.strip("/")
        entries, folders = [], set()
        for name, info in repo.commits[sha].items():
            if prefix and not name.startswith(prefix + "/"):
                continue
            relative = name[len(prefix) + 1:] if prefix else name
            if "/" in relative and recursive.lower() != "true":
                folders.add((prefix + "/" if prefix else "") + relative.split("/")[0])
                continue
            entries.append(info.entry(name, xet=repo.xet))
            parent = name.rsplit("/", 1)[0] if "/" in relative else None
            while parent and parent != prefix:
                folders.add(parent)
                parent = parent.rsplit("/", 1)[0] if "/" in parent else None
        entries += [{"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0, "path": f}
                    for f in sorted(folders)]
        self.reply(200, json.dumps(entries).encode(), {"Content-Type": "application/json"})

    def resolve_file(self, repo_id: str, revision: str, name: str) -> None:
        found = self.authorized_commit(repo_id, revision)
        if found is None:
            return
        repo, sha = found
        info = repo.commits[sha].get(name)
        if info is None:
            _error(self, 404, "EntryNotFound", f"{name} does not exist on {revision}")
            return
        cdn = self.server.lfs_redirect
        if cdn is not None and info.sha256 and self.command == "GET":
            cdn.repos.setdefault(repo_id, repo)
            self.reply(302, headers={"Location": f"{cdn.url}/{repo_id}/resolve/{sha}/{quote(name)}"})
            return
        headers = {"X-Repo-Commit": sha, "ETag": f'"{info.sha256 or info.blob_id}"'}
        if info.sha256:
            headers.update({"X-Linked-Etag": f'"{info.sha256}"', "X-Linked-Size": str(info.size)})
            if repo.xet:
                headers["X-Xet-Hash"] = info.sha256
                headers["Link"] = f'<{self.server.url}/api/models/{repo_id}/xet-read-token/{sha}>; rel="xet-auth"'
        self.send_file(name, info.path, headers)

    def xet_token(self, repo_id: str) -> None:
        if self.authorized_repo(repo_id) is None:
            return
        import socket
        import time

        with socket.socket() as probe:  # a CAS "server" nobody listens on
            probe.bind(("127.0.0.1", 0))
            cas = f"http://127.0.0.1:{probe.getsockname()[1]}"
        expiry = str(int(time.time()) + 3600)
        body = json.dumps({"casUrl": cas, "accessToken": "xet-token", "exp": int(expiry)}).encode()
        self.reply(200, body, {"Content-Type": "application/json", "X-Xet-Cas-Url": cas,
                               "X-Xet-Access-Token": "xet-token", "X-Xet-Token-Expiration": expiry})
