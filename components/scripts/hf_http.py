"""The plain-HTTP transfer of Hub files: the Hub's resolve route, streamed to disk in large reads.

hf_download.py uses it whenever the bytes go over plain HTTP anyway (Xet off, which it is with a
mirror in HF_ENDPOINT, or hf_xet not installed). huggingface_hub's own HTTP loop reads 64 KiB at a
time through httpx and copies each chunk again on its way to disk: about 3.3 CPU-s per GB on the
benchmark machine, against 1.0-1.5 for curl. Here each read fills a 1 MiB buffer straight from
the socket and goes to the file as it is: 1.2-2.0 CPU-s per GB, start-up included, 1.1-1.4 times
curl's in the same run (benchmarks/download_throughput.py), so a Job needs about 2 CPUs per GB/s
of its link.

Per file: the resolve URL pinned to the commit; the token sent to the endpoint's host only and
dropped on a redirect to another host (as requests does: CDNs get the signed URL, never the
token); the bytes written to <MODEL_DIR>/.cache/vllm-serving/<name>.incomplete, resumed with a
Range request after a stall (no byte for HF_HUB_DOWNLOAD_TIMEOUT seconds) or a restart of the
pod; the size checked against the listing and the server's Content-Length; only then renamed
into place. A file in place is complete, so a restarted Job skips it.

A file counts as done only when this code placed it for the commit it is fetching: the cache
folder records the commit (`commit`) and each file moved into place (`placed`). A run for another
commit (a branch that moved between two attempts of the same spec) first removes the files placed
for the old one, so none is left for vLLM's weight globs; a file it did not place (a user's, or
one of an older download) is fetched again over it, never trusted and never removed. The folder
goes once every file is in place.

Standard library only (plus huggingface_hub for the URL and headers): it runs in whatever Python
the server image has.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from http.client import HTTPException, HTTPResponse

STAGING = os.path.join(".cache", "vllm-serving")
# Each read fills this much before it goes to disk: large enough that the per-read cost vanishes,
# small enough that a stall (which raises inside the read) loses at most this much of the file.
BUFFER_BYTES = 1 << 20
# A stall or a dropped connection is retried from the bytes on disk; this many attempts in a row
# that add nothing fail the file (the Job's own backoffLimit then retries the whole download).
ATTEMPTS_WITHOUT_PROGRESS = 5


class TransferError(Exception):
    """A file cannot be fetched; the message is one line for the Job's log, with no token in it."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _NoTokenAcrossHosts(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but sends the Authorization header to the first host only."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]  # noqa: PLR0917 - urllib's signature
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


def tls_context() -> ssl.SSLContext:
    """The CAs huggingface_hub's own client would trust: a bundle named in REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE (requests, under huggingface_hub 0.x) or SSL_CERT_FILE / SSL_CERT_DIR (httpx,
    1.x and later; OpenSSL reads those two itself), else the system's, else certifi's when the
    image has no system store."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
    context = ssl.create_default_context(cafile=bundle)
    if bundle is None and not context.cert_store_stats().get("x509_ca"):
        with contextlib.suppress(ImportError):
            import certifi  # huggingface_hub's clients depend on it

            context.load_verify_locations(cafile=certifi.where())
    return context


def staging_dir(model_dir: str) -> str:
    return os.path.join(model_dir, STAGING)


def start_commit(model_dir: str, commit: str) -> None:
    """Make what this run finds in place `commit`'s: if the record names another commit, remove
    the files placed for it (a branch that moved between two attempts of one spec) and its
    partial files; then record `commit`. Files this code did not place are never removed."""
    staging = staging_dir(model_dir)
    record = os.path.join(staging, "commit")
    with contextlib.suppress(OSError), open(record, encoding="utf-8") as handle:
        if handle.read().strip() == commit:
            return
    for name in _placed(model_dir):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(model_dir, name))
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    with open(record + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(commit + "\n")
    os.replace(record + ".tmp", record)


def _placed(model_dir: str) -> set[str]:
    """The files moved into place for the recorded commit, one name a line. Only names inside
    MODEL_DIR count: the list is on the volume, and what removes files must not be led outside it."""
    try:
        with open(os.path.join(staging_dir(model_dir), "placed"), encoding="utf-8") as handle:
            names = {line.rstrip("\n") for line in handle if line.strip()}
    except OSError:
        return set()
    return {name for name in names if not os.path.isabs(name) and ".." not in name.split("/")}


def finish_commit(model_dir: str) -> None:
    shutil.rmtree(staging_dir(model_dir), ignore_errors=True)


class HubFiles:
    """Fetches files of one repository at one commit into MODEL_DIR."""

    def __init__(self, *, model_dir: str, url_of: Callable[[str], str], headers: dict[str, str],
                 timeout: float, redact: Callable[[str], str]):
        self.model_dir, self.url_of, self.headers, self.timeout, self.redact = model_dir, url_of, headers, timeout, redact
        self.opener = urllib.request.build_opener(_NoTokenAcrossHosts, urllib.request.HTTPSHandler(context=tls_context()))
        self.stop = threading.Event()
        self.placed = _placed(model_dir)
        self.lock = threading.Lock()

    def fetch_all(self, names: Iterable[str], sizes: dict[str, int], workers: int) -> None:
        """Every name in place, `workers` at a time, largest first; the first failure stops the rest."""
        order = sorted(names, key=lambda name: -sizes.get(name, 0))
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(order) or 1))) as pool:
            futures = [pool.submit(self.fetch, name, sizes.get(name) or None) for name in order]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [future for future in done if future.exception() is not None]
            if failed:
                self.stop.set()
                for future in futures:
                    future.cancel()
                raise failed[0].exception()  # type: ignore[misc]  # an exception, checked above

    def fetch(self, name: str, size: int | None) -> str:
        """`name` in place under MODEL_DIR (fetched unless it already is); its path."""
        final = os.path.join(self.model_dir, name)
        if name in self.placed and os.path.isfile(final) and (size is None or os.path.getsize(final) == size):
            return final
        partial = os.path.join(staging_dir(self.model_dir), name + ".incomplete")
        os.makedirs(os.path.dirname(partial), exist_ok=True)
        idle_attempts = 0
        while True:
            if self.stop.is_set():
                raise TransferError(f"{name}: stopped after another file failed")
            offset = os.path.getsize(partial) if os.path.exists(partial) else 0
            try:
                if self._transfer(name, partial, offset, size):
                    break
            except (OSError, HTTPException) as error:
                if isinstance(error, urllib.error.HTTPError) or _disk_error(error):
                    raise self._failure(name, error) from None
                progressed = os.path.exists(partial) and os.path.getsize(partial) > offset
                idle_attempts = 0 if progressed else idle_attempts + 1
                if idle_attempts >= ATTEMPTS_WITHOUT_PROGRESS:
                    raise self._failure(name, error) from None
                # Short waits: past them the Job's own restart resumes from the bytes on disk.
                time.sleep(0 if progressed else 0.5 * 2 ** (idle_attempts - 1))
        os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
        os.replace(partial, final)
        with self.lock, open(os.path.join(staging_dir(self.model_dir), "placed"), "a", encoding="utf-8") as handle:
            handle.write(name + "\n")
            self.placed.add(name)
        return final

    def _transfer(self, name: str, partial: str, offset: int, size: int | None) -> bool:
        """One request from `offset` on; True when the file is whole (a short read raises)."""
        if size is not None and offset == size:
            return True
        if size is not None and offset > size:
            offset = 0  # more than the listing's size on disk: start over (_open_at removes it)
        request = urllib.request.Request(self.url_of(name), headers=dict(self.headers))
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            response: HTTPResponse = self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            if error.code == 416 and offset and size is None:
                return True  # nothing past what is on disk, and no listed size to doubt it by
            raise
        with response:
            if offset and response.status != 206:
                offset = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            expected = size if size is not None else (offset + int(length) if length and length.isdigit() else None)
            if size is not None and length and length.isdigit() and offset + int(length) != size:
                raise TransferError(f"{name}: the server sends {offset + int(length)} bytes, the listing says {size}")
            descriptor = _open_at(partial, offset)
            try:
                written = offset + _copy(response, descriptor, self.stop)
            finally:
                os.close(descriptor)
        if self.stop.is_set():
            raise TransferError(f"{name}: stopped after another file failed")
        if expected is not None and written != expected:
            raise HTTPException(f"connection closed at byte {written} of {expected}")
        return True

    def _failure(self, name: str, error: BaseException) -> TransferError:
        if isinstance(error, TransferError):
            return error
        if isinstance(error, urllib.error.HTTPError):
            return TransferError(self.redact(f"{name}: HTTP {error.code} {error.reason}"), status=error.code)
        if _disk_error(error):
            return TransferError(f"{name}: cannot write to the volume: {os.strerror(error.errno or 0)}")
        if isinstance(error, (TimeoutError, socket.timeout)):
            return TransferError(f"{name}: stalled: no byte for {self.timeout:g} s, {ATTEMPTS_WITHOUT_PROGRESS} times "
                                 "in a row (HF_HUB_DOWNLOAD_TIMEOUT sets the wait)")
        reason = getattr(error, "reason", None) or error
        return TransferError(self.redact(f"{name}: {type(error).__name__}: {reason}"))


def _disk_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)


def _open_at(partial: str, offset: int) -> int:
    """The partial file, open for writing at `offset`, holding only its first `offset` bytes.

    A fresh start removes the old file and creates a new one instead of truncating it: on ext4
    (the usual filesystem of a volume), a file truncated to zero is flushed to disk when it is
    closed (auto_da_alloc, its guard for editors that rewrite files in place), which made each
    close wait for its file's writeback and held a download at about half the link's speed."""
    if not offset:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        return os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    descriptor = os.open(partial, os.O_WRONLY)
    os.ftruncate(descriptor, offset)  # never zero here: a resume keeps its bytes
    os.lseek(descriptor, offset, os.SEEK_SET)
    return descriptor


def _copy(response: HTTPResponse, descriptor: int, stop: threading.Event) -> int:
    """Bytes from the response to the file until EOF, in reads of up to BUFFER_BYTES."""
    buffer = memoryview(bytearray(BUFFER_BYTES))
    total = 0
    while not stop.is_set():
        count = response.readinto(buffer)
        if not count:
            break
        view = buffer[:count]
        while view:
            view = view[os.write(descriptor, view):]
        total += count
    return total
