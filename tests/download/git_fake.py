"""A git smart-HTTP server (the real `git http-backend`, run as CGI) plus a Git LFS
batch-API server, on one loopback port.

  GET  /{name}.git/info/refs?service=git-upload-pack     git http-backend
  POST /{name}.git/git-upload-pack                       git http-backend
  POST /{name}.git/info/lfs/objects/batch                LFS batch API (download, basic transfer)
  GET  /lfs/objects/{oid}                                the object, with Range support

With a token set, git and LFS API requests need HTTP Basic auth whose password is
the token (any user name), as GitHub, GitLab and the Hub accept; object downloads
need the per-object header the batch response hands out, as LFS servers do with
their signed storage URLs. Repositories are built with plain git: LFS files are
committed as pointer files and their objects kept by the server, so building
them needs no git-lfs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from .http_util import RecordingHandler, RecordingServer

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(*args: str, cwd: Path) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


class GitStore:
    """Bare repositories and LFS objects on disk, which any number of servers can serve."""

    def __init__(self, root: Path):
        self.root = root
        self.objects: dict[str, Path] = {}
        (root / "repos").mkdir(parents=True, exist_ok=True)
        (root / "lfs").mkdir(exist_ok=True)

    def add_object(self, data_path: Path) -> tuple[str, int]:
        digest = hashlib.sha256()
        with data_path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        oid = digest.hexdigest()
        target = self.root / "lfs" / oid
        if not target.exists():
            try:
                os.link(data_path, target)
            except OSError:
                shutil.copyfile(data_path, target)
        self.objects[oid] = target
        return oid, data_path.stat().st_size


class GitServer(RecordingServer):
    def __init__(self, store: GitStore, token: str | None = None, protocol_v2: bool = True,
                 allow_sha_in_want: bool = True, echo_token: bool = False):
        super().__init__(_GitHandler)
        self.store = store
        self.token = token
        # A hostile LFS server that puts the credentials it was sent into its error messages.
        self.echo_token = echo_token
        # Where the batch API sends clients for the objects: this server, or a faster one serving
        # the store's lfs/ directory at /lfs/objects/ (the throughput benchmark's nginx).
        self.object_url: str | None = None
        # Protocol v0 without allowReachableSHA1InWant refuses to serve commits no ref points
        # at, as older servers do; GitHub and GitLab serve any reachable commit.
        self.protocol_v2 = protocol_v2
        self.allow_sha_in_want = allow_sha_in_want
        self.object_auth = secrets.token_hex(8)

    def repo_url(self, name: str) -> str:
        return f"{self.url}/{name}.git"

    def object_requests(self) -> list:
        with self.lock:
            return [r for r in self.requests if r.path.startswith("/lfs/objects/")]


class RepoBuilder:
    """Commits to a work repository and pushes to the store's bare one."""

    def __init__(self, store: GitStore, name: str, lfs_patterns: tuple[str, ...] = ("*.safetensors", "*.bin")):
        self.store = store
        self.bare = store.root / "repos" / f"{name}.git"
        self.work = store.root / "work" / name
        self.work.mkdir(parents=True)
        git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=store.root)
        git("init", "-q", "-b", "main", cwd=self.work)
        attributes = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in lfs_patterns)
        (self.work / ".gitattributes").write_text(attributes)
        self.lfs_patterns = lfs_patterns

    def commit(self, files: dict[str, Path], message: str, branch: str = "main") -> str:
        """Commit `files` (repository path -> content file); LFS patterns become pointers."""
        import fnmatch

        current = git("branch", "--show-current", cwd=self.work) or None
        if current != branch:
            exists = subprocess.run(["git", "rev-parse", "--verify", "-q", branch], cwd=self.work,
                                    capture_output=True).returncode == 0
            git("checkout", "-q", *([] if exists else ["-b"]), branch, cwd=self.work)
        for name, source in files.items():
            target = self.work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if any(fnmatch.fnmatch(name.rsplit("/", 1)[-1], p) for p in self.lfs_patterns):
                oid, size = self.store.add_object(source)
                target.write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n")
            else:
                shutil.copyfile(source, target)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        git("push", "-q", "-f", str(self.bare), f"{branch}:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tag(self, name: str, commit: str) -> None:
        git("tag", "-a", "-m", name, name, commit, cwd=self.work)
        git("push", "-q", str(self.bare), f"refs/tags/{name}", cwd=self.work)


class _GitHandler(RecordingHandler):
    server: GitServer

    def do_GET(self) -> None:
        self.record()
        path = urlsplit(self.path).path
        if path.startswith("/lfs/objects/"):
            self.lfs_object(path.rsplit("/", 1)[-1])
        elif self.authorized():
            self.git_backend(b"")

    def do_POST(self) -> None:
        self.record()
        body = self.read_body()
        if not self.authorized():
            return
        if urlsplit(self.path).path.endswith("/info/lfs/objects/batch"):
            self.lfs_batch(body)
        else:
            self.git_backend(body)

    def authorized(self) -> bool:
        if self.server.token is None:
            return True
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            _, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if password == self.server.token:
                return True
        self.reply(401, b"authentication required\n", {"WWW-Authenticate": 'Basic realm="fake git"'})
        return False

    def git_backend(self, body: bytes) -> None:
        url = urlsplit(self.path)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.store.root / "repos"),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
        }
        env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "uploadpack.allowReachableSHA1InWant",
                    "GIT_CONFIG_VALUE_0": str(self.server.allow_sha_in_want).lower()})
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.server.protocol_v2 and self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = result.stdout.partition(b"\n\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers[key.strip()] = value.strip()
        headers.pop("Content-Length", None)
        self.reply(status, payload, headers)

    def lfs_batch(self, body: bytes) -> None:
        request = json.loads(body)
        objects = []
        echoed = base64.b64decode(self.headers.get("Authorization", "Basic ")[6:] or b"").decode()
        for item in request.get("objects", []):
            oid = item["oid"]
            if self.server.echo_token:
                objects.append({"oid": oid, "size": item["size"],
                                "error": {"code": 404, "message": f"Object does not exist for {echoed} "
                                                         f"({self.headers.get('Authorization', '')})"}})
            elif oid in self.server.store.objects:
                objects.append({
                    "oid": oid, "size": item["size"], "authenticated": True,
                    "actions": {"download": {
                        "href": f"{self.server.object_url or self.server.url}/lfs/objects/{oid}",
                        "header": {"Authorization": f"RemoteAuth {self.server.object_auth}"},
                        "expires_in": 3600,
                    }},
                })
            else:
                objects.append({"oid": oid, "size": item["size"],
                                "error": {"code": 404, "message": "Object does not exist"}})
        self.reply(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   {"Content-Type": "application/vnd.git-lfs+json"})

    def lfs_object(self, oid: str) -> None:
        if self.headers.get("Authorization") != f"RemoteAuth {self.server.object_auth}":
            self.reply(401, b"missing the batch API's header\n")
            return
        path = self.server.store.objects.get(oid)
        if path is None:
            self.reply(404, b"no such object\n")
            return
        self.send_file(oid, path, {"Content-Type": "application/octet-stream"})
