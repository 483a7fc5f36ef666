"""Download a Hugging Face model repository into MODEL_DIR: only the files vLLM loads.

Run by download.sh as `python3 hf_download.py` inside the vllm/vllm-openai image,
whose huggingface_hub may be any 0.x, 1.x or later release: only the Python API
calls that exist across all of them are used (no CLI, whose flags changed).

huggingface_hub lists the repository and resolves the revision. The bytes go through
its Xet client (snapshot_download) when Xet is on and hf_xet is installed, and
otherwise, over plain HTTP, through hf_http.py beside this file, which costs less than half the CPU of
huggingface_hub's own HTTP loop (see hf_http.py).

Environment: HF_MODEL_ID, HF_REVISION (empty: main), HF_FILES (comma-separated
names or globs; empty: the selection rule of select_files.sh), HF_TOKEN (optional),
HF_MAX_WORKERS (default 8), DOWNLOAD_PROGRESS_SECONDS (default 30), MODEL_DIR;
huggingface_hub itself reads HF_ENDPOINT, HF_HUB_DISABLE_XET, proxies and timeouts
from the environment.

The file selection is select_files.sh, the rule every source runs; `select_files` here calls
it and imports without huggingface_hub, so tests and benchmarks use the same rule. It refuses
a listing with a path that could resolve outside MODEL_DIR (`../../name`), whatever the
huggingface_hub release would do with it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable

# The selection rule is select_files.sh (one POSIX awk program): the git and S3 downloads run the
# same file in their alpine images, so every source selects alike. It sits beside this file.
SELECT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "select_files.sh")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hf_http import STAGING, HubFiles, TransferError, finish_commit, start_commit  # noqa: E402 (beside this file)


class SelectionError(Exception):
    """The repository holds nothing the rule or FILES can pick, or lists an unsafe path."""


def _run_rule(mode: str, paths: Iterable[str], files: str, index_json: str | None) -> list[str]:
    paths = list(paths)
    for path in paths:
        if "\n" in path or "\r" in path:
            # The rule reads one path a line; such a name is refused there as unsafe anyway.
            raise SelectionError(f"unsafe path in the listing (it could resolve outside the model directory): {path!r}")
    with tempfile.TemporaryDirectory() as scratch:
        listing = os.path.join(scratch, "listing")
        with open(listing, "w", encoding="utf-8") as handle:
            handle.writelines(f"{path}\n" for path in paths)
        argv = ["sh", SELECT_SCRIPT, mode, listing]
        if index_json is not None:
            argv.append(os.path.join(scratch, "index.json"))
            with open(argv[-1], "w", encoding="utf-8") as handle:
                handle.write(index_json)
        env = {**os.environ, "FILES": files}
        env.setdefault("SOURCE", "huggingface")
        done = subprocess.run(argv, env=env, capture_output=True, text=True, encoding="utf-8")
    if done.returncode != 0:
        raise SelectionError(done.stderr.strip().removeprefix("select: ") or f"select_files.sh exited {done.returncode}")
    return [line for line in done.stdout.split("\n") if line]


def select_files(paths: Iterable[str], files: str = "", index_json: str | None = None) -> list[str]:
    """The repository paths to download, sorted (see select_files.sh); `index_json` is the text of
    the index that index_to_read named, when there is one."""
    return _run_rule("select", paths, files, index_json)


def index_to_read(paths: Iterable[str], files: str = "") -> str | None:
    """The index whose weight_map select_files needs, or None when it cannot change the result."""
    named = _run_rule("index", paths, files, None)
    return named[0] if named else None


# --- the download ----------------------------------------------------------------------------


def _human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1000
    return f"{size:.1f} TB"


def _fnmatch_literal(name: str) -> str:
    """A pattern matching exactly `name` for huggingface_hub's fnmatch-based allow_patterns."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


class _Progress:
    """Prints bytes on disk every DOWNLOAD_PROGRESS_SECONDS: the Job's log is all a user sees."""

    def __init__(self, model_dir: str, files: list[str], total: int, interval: float):
        self.model_dir, self.files, self.total, self.interval = model_dir, files, total, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_disk(self) -> int:
        done = 0
        for name in self.files:
            with contextlib.suppress(OSError):
                done += os.path.getsize(os.path.join(self.model_dir, name))
        # huggingface_hub writes into .incomplete files under local_dir/.cache/huggingface/download/
        # (local_dir/.huggingface/ before 0.24), hf_http.py under STAGING.
        for metadata in (os.path.join(".cache", "huggingface"), ".huggingface", STAGING):
            for root, _, names in os.walk(os.path.join(self.model_dir, metadata)):
                for name in names:
                    if name.endswith(".incomplete"):
                        with contextlib.suppress(OSError):
                            done += os.path.getsize(os.path.join(root, name))
        return done

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            done = self._on_disk()
            percent = f" ({100 * done / self.total:.0f}%)" if self.total else ""
            print(f"huggingface: progress {_human(done)} of {_human(self.total)}{percent}", flush=True)

    def __enter__(self) -> _Progress:
        if self.interval > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()


def _why(error: BaseException, token: str | None) -> str:
    """One line saying why the Hub refused, never containing the token."""
    kinds = {cls.__name__ for cls in type(error).__mro__}
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(error, TransferError):
        status = error.status
    given = "the token from the Secret's `token` key"
    if "GatedRepoError" in kinds or ("RepositoryNotFoundError" not in kinds and status in (401, 403)):
        if token:
            why = (f"access denied (HTTP {status}): the Hub refused {given}; check that it is valid and that "
                   "its account was granted access to this repository")
        else:
            why = (f"access denied (HTTP {status}): the repository is gated or private and no token was given; "
                   "set model.huggingface.existingSecret to a Secret whose key `token` holds a Hugging Face token")
    elif "RevisionNotFoundError" in kinds:
        why = "revision not found in the repository (check model.huggingface.revision)"
    elif "RepositoryNotFoundError" in kinds:
        why = ("repository not found (check model.huggingface.id), or private and "
               + (f"{given} has no access to it" if token else "no token was given"))
    elif "EntryNotFoundError" in kinds or "RemoteEntryNotFoundError" in kinds or status == 404:
        why = f"a listed file is missing on the server: {str(error).splitlines()[0] if str(error) else ''}"
    elif isinstance(error, TransferError):  # hf_http.py's own one line
        why = str(error)
    elif _untrusted_certificate(error):
        endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        why = (f"the TLS certificate of {endpoint} is not trusted: put the CA that signed it in the image, or "
               "name a bundle holding it in env (SSL_CERT_FILE; REQUESTS_CA_BUNDLE for huggingface_hub 0.x)")
    elif kinds & {"ConnectError", "ConnectionError", "ConnectTimeout", "TimeoutException", "Timeout", "ProxyError"}:
        endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        why = f"cannot reach {endpoint} ({type(error).__name__}); check HF_ENDPOINT and the proxy settings"
    else:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        why = f"{type(error).__name__}: {first}" if first else type(error).__name__
    if token:
        why = why.replace(token, "***")
    return why


def _untrusted_certificate(error: BaseException | None) -> bool:
    """Whether a certificate check failed anywhere in the error's chain (httpx and requests wrap
    the ssl module's error in their own)."""
    seen = 0
    while error is not None and seen < 10:
        if "CERTIFICATE_VERIFY_FAILED" in str(error) or "certificate verify failed" in str(error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _download_timeout() -> float:
    """huggingface_hub's HF_HUB_DOWNLOAD_TIMEOUT (default 10 s): how long a read may wait for a byte."""
    try:
        return max(float(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT", "").strip() or 10), 1.0)
    except ValueError:
        return 10.0


def _xet_on(huggingface_hub: object) -> bool:
    """Whether huggingface_hub would move the bytes with Xet: a release that knows Xet, hf_xet
    installed, and HF_HUB_DISABLE_XET not set (read as huggingface_hub reads it)."""
    import importlib.util

    disabled = os.environ.get("HF_HUB_DISABLE_XET", "").strip().upper() in ("1", "ON", "YES", "TRUE")
    knows_xet = hasattr(getattr(huggingface_hub, "constants", None), "HF_HUB_DISABLE_XET")
    return knows_xet and not disabled and importlib.util.find_spec("hf_xet") is not None


def main() -> int:  # noqa: PLR0912, PLR0915 - the download, step by step, as its log reads
    repo_id = os.environ.get("HF_MODEL_ID", "").strip()
    revision = os.environ.get("HF_REVISION", "").strip() or "main"
    files = os.environ.get("HF_FILES", "")
    model_dir = os.environ["MODEL_DIR"]
    token = os.environ.get("HF_TOKEN", "").strip() or None
    what = f"download failed: huggingface model {repo_id!r} revision {revision!r}"

    try:
        workers = int(os.environ.get("HF_MAX_WORKERS", "").strip() or 8)
        if workers < 1:
            raise ValueError
    except ValueError:
        print(f"{what}: HF_MAX_WORKERS={os.environ.get('HF_MAX_WORKERS')!r} is not a positive integer", file=sys.stderr)
        return 2
    if not repo_id:
        print(f"{what}: HF_MODEL_ID is empty", file=sys.stderr)
        return 2
    # A Job log is not a terminal: huggingface_hub's bars would print one long line; _Progress reports instead.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if os.environ.get("HF_ENDPOINT", "").strip():
        # Xet transfers go straight to the Hub's storage, around a mirror or proxy named in
        # HF_ENDPOINT (which then sees only the API calls); plain HTTP goes through it.
        # HF_HUB_DISABLE_XET=0 in the stack's env turns Xet back on.
        os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
    try:
        interval = float(os.environ.get("DOWNLOAD_PROGRESS_SECONDS", "").strip() or 30)
    except ValueError:
        interval = 30.0

    try:
        import huggingface_hub
        from huggingface_hub import HfApi, hf_hub_download, hf_hub_url, snapshot_download
        from huggingface_hub.utils import build_hf_headers
    except ImportError as error:
        print(f"{what}: huggingface_hub is not installed in the download image ({error})", file=sys.stderr)
        return 2

    try:
        api = HfApi(token=token)
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
        # Pinning the commit makes the listing, the index and every file come from one snapshot
        # even if the branch moves during a long download.
        commit = info.sha
        sizes = {s.rfilename: (s.size or 0) for s in (info.siblings or [])}
        if not sizes:
            sizes = dict.fromkeys(api.list_repo_files(repo_id, revision=commit), 0)
        xet = _xet_on(huggingface_hub)
        http = None
        if not xet:
            start_commit(model_dir, commit)
            http = HubFiles(model_dir=model_dir, url_of=lambda name: hf_hub_url(repo_id, name, revision=commit),
                            headers=build_hf_headers(token=token), timeout=_download_timeout(),
                            redact=lambda text: text.replace(token, "***") if token else text)
        index = index_to_read(sizes, files)
        index_json = None
        if index is not None:
            if http is None:
                path = hf_hub_download(repo_id, index, revision=commit, local_dir=model_dir, token=token)
            else:
                path = http.fetch(index, sizes.get(index) or None)
            with open(path, encoding="utf-8") as handle:
                index_json = handle.read()
        selected = select_files(sizes, files, index_json)
        total = sum(sizes.get(name, 0) for name in selected)
        print(
            f"huggingface: {repo_id} at {commit} (huggingface_hub {huggingface_hub.__version__}): "
            f"{len(selected)} of {len(sizes)} files, {_human(total)}, {workers} parallel downloads "
            f"({'Xet' if xet else 'HTTP'})",
            flush=True,
        )
        for name in selected:
            print(f"huggingface:   {name} ({_human(sizes.get(name, 0))})", flush=True)
        started = time.monotonic()
        with _Progress(model_dir, selected, total, interval):
            if http is None:
                snapshot_download(
                    repo_id,
                    revision=commit,
                    local_dir=model_dir,
                    allow_patterns=[_fnmatch_literal(name) for name in selected],
                    max_workers=workers,
                    token=token,
                )
            else:
                http.fetch_all(selected, sizes, workers)
        missing = [name for name in selected if not os.path.isfile(os.path.join(model_dir, name))]
        if missing:
            raise SelectionError(f"files missing after the download: {', '.join(missing)}")
        short = [name for name in selected
                 if sizes.get(name) and os.path.getsize(os.path.join(model_dir, name)) != sizes[name]]
        if short:
            raise SelectionError(f"files of the wrong size after the download: {', '.join(short)}")
    except SelectionError as error:
        print(f"{what}: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # one line for the Job's log, whatever the client version raised
        print(f"{what}: {_why(error, token)}", file=sys.stderr)
        return 1
    finish_commit(model_dir)
    elapsed = max(time.monotonic() - started, 1e-6)
    print(f"huggingface: downloaded {_human(total)} in {elapsed:.1f} s ({_human(total / elapsed)}/s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
