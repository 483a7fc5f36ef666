"""An S3-compatible server on loopback: moto's server-mode WSGI application (what
ThreadedMotoServer runs), wrapped to record requests and to stall one object
mid-transfer. With `require_auth()`, moto checks every request's SigV4 signature
against an IAM user's keys, so wrong credentials are refused as by real S3."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote

from .http_util import Request, Stall

REGION = "us-east-1"
CHUNK = 256 * 1024


class S3Server:
    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: object, **kwargs: object) -> None:
                pass

        self.app = DomainDispatcherApplication(create_backend_app)
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=QuietHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.requests: list[Request] = []
        self.completed: list[str] = []
        self.sent: dict[str, int] = {}
        self.stalls: dict[str, Stall] = {}
        # key -> offset at which every GET of it ends: the body stops short of its Content-Length.
        self.cuts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.access_key, self.secret_key = "admin-key", "admin-secret"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> S3Server:
        import urllib.request

        self.thread.start()
        # moto keeps its state per process: each server starts from an empty account.
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()
        self.clear()
        return self

    def stop(self) -> None:
        from moto import settings

        for stall in self.stalls.values():
            stall.release.set()
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        self.server.shutdown()
        self.server.server_close()

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.url, region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(s3={"addressing_style": "path"}),
        )

    def upload(self, bucket: str, prefix: str, files: dict[str, Path]) -> None:
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
        for name, path in files.items():
            with path.open("rb") as handle:
                client.put_object(Bucket=bucket, Key=f"{prefix}/{name}" if prefix else name, Body=handle)

    def require_auth(self) -> tuple[str, str]:
        """Create an IAM user allowed everything on S3 and make moto verify signatures from now on.

        Returns the user's (access key id, secret access key)."""
        import boto3
        from moto import settings

        iam = boto3.client("iam", endpoint_url=self.url, region_name=REGION,
                           aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)
        iam.create_user(UserName="model-reader")
        iam.put_user_policy(
            UserName="model-reader", PolicyName="s3",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}',
        )
        key = iam.create_access_key(UserName="model-reader")["AccessKey"]
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        return key["AccessKeyId"], key["SecretAccessKey"]

    def stall(self, key: str, after: int) -> Stall:
        stall = self.stalls[key] = Stall(key, after)
        return stall

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.completed.clear()
            self.sent.clear()
        for stall in self.stalls.values():
            stall.release.set()
        self.stalls.clear()

    def object_gets(self) -> list[Request]:
        """GETs of objects (not bucket listings, which carry a query and no key)."""
        with self.lock:
            return [r for r in self.requests if r.method == "GET" and r.path.count("/") >= 2 and "?" not in r.path]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not reached; requests: " + repr(self.requests[-10:]))
            time.sleep(0.02)

    def _wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        with self.lock:
            self.requests.append(Request(environ["REQUEST_METHOD"], path + ("?" + query if query else ""), headers))
        body = self.app(environ, start_response)
        if environ["REQUEST_METHOD"] != "GET" or query or path.count("/") < 2:
            return body
        # Path-style object key: /bucket/key...
        key = unquote(path.split("/", 2)[2])
        if key in self.cuts:
            # The cut is at an offset of the object, so a client resuming with Range gets no further.
            start = headers.get("range", "").partition("=")[2].partition("-")[0]
            return self._cut(body, self.cuts[key] - int(start or 0))
        return self._count(key, body, self.stalls.get(key), "range" in headers)

    @staticmethod
    def _cut(body: Iterable[bytes], after: int) -> Iterable[bytes]:
        sent = 0
        for block in body:
            piece = block[: max(after - sent, 0)]
            if piece:
                yield piece
                sent += len(piece)
            if sent >= after:
                return

    def _count(self, key: str, body: Iterable[bytes], stall: Stall | None, ranged: bool) -> Iterable[bytes]:
        sent = 0
        for block in body:
            for start in range(0, len(block), CHUNK):
                piece = block[start:start + CHUNK]
                if stall and sent + len(piece) > stall.after:
                    piece = piece[: max(stall.after - sent, 0)]
                    if piece:
                        yield piece
                        sent += len(piece)
                    stall.reached.set()
                    stall.release.wait(60)
                    return
                yield piece
                sent += len(piece)
                with self.lock:
                    self.sent[key] = self.sent.get(key, 0) + len(piece)
        if not ranged:
            with self.lock:
                self.completed.append(key)
