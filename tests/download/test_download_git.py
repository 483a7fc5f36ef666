"""The git source, end to end: download.sh -> git_download.sh -> git + git-lfs -> a real
`git http-backend` and an LFS batch server on 127.0.0.1, under busybox sh and busybox
applets as in the alpine/git image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import require_tool, write_random
from .http_util import sha256_file, tree_checksums

TOKEN = "glpat-TestTokenThatMustNeverBePrinted"
MiB = 1 << 20


class Repo:
    """A model repository with three versions of its weights:
    main (v2), tag v1.0 (v1, annotated), branch dev (v3, forked from v1)."""

    def __init__(self, store, make_file):
        from .git_fake import RepoBuilder

        self.store = store
        builder = RepoBuilder(store, "model")
        self.v1 = {
            "config.json": make_file(400),
            "tokenizer.json": make_file(30_000),
            "model-00001-of-00002.safetensors": make_file(3 * MiB),
            "model-00002-of-00002.safetensors": make_file(2 * MiB),
        }
        self.v1_commit = builder.commit(self.v1, "v1")
        builder.tag("v1.0", self.v1_commit)
        self.v3 = {**self.v1, "model-00002-of-00002.safetensors": make_file(2 * MiB)}
        builder.commit(self.v3, "dev weights", branch="dev")
        self.v2 = {**self.v1, "model-00001-of-00002.safetensors": make_file(3 * MiB)}
        self.v2_commit = builder.commit(self.v2, "v2", branch="main")

    @staticmethod
    def checksums(files: dict[str, Path]) -> dict[str, str]:
        return {name: sha256_file(path) for name, path in files.items()}


def model_files(downloader) -> dict[str, str]:
    return {k: v for k, v in tree_checksums(downloader.model_dir, skip=()).items()
            if not k.startswith(".vllm-serving") and k != ".gitattributes"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Built once per module: building takes a few dozen git commands; servers only read it."""
    require_tool("git", "git-lfs")
    from .git_fake import GitStore

    root = tmp_path_factory.mktemp("git")
    numbers = iter(range(1, 1000))

    def make_file(size: int) -> Path:
        number = next(numbers)
        return write_random(root / "sources" / str(number), size, number)

    return Repo(GitStore(root / "store"), make_file)


@pytest.fixture
def server(git_server_factory, repo):
    return git_server_factory(repo.store)


def git_env(url: str, **extra: str) -> dict[str, str]:
    return {"SOURCE": "git", "GIT_URL": url, **extra}


def oid(path: Path) -> str:
    return sha256_file(path)


@pytest.mark.parametrize(("ref", "version"), [("", "v2"), ("main", "v2"), ("dev", "v3"), ("v1.0", "v1"),
                                         ("commit", "v1")])
def test_ref_as_branch_tag_or_commit(repo, server, busybox_downloader, ref, version):
    ref = repo.v1_commit if ref == "commit" else ref
    result = busybox_downloader.run(**git_env(server.repo_url("model"), GIT_REF=ref))
    assert result.returncode == 0, result.output
    # Every LFS file is materialized (no pointer left) and .git, with its second copy of
    # the objects, is gone.
    assert model_files(busybox_downloader) == Repo.checksums(getattr(repo, version))
    assert not (busybox_downloader.model_dir / ".git").exists()
    assert busybox_downloader.marker.read_text() == "0123456789ab\n"


def test_commit_on_a_server_that_refuses_unadvertised_commits(repo, git_server_factory, busybox_downloader):
    server = git_server_factory(repo.store, protocol_v2=False, allow_sha_in_want=False)
    result = busybox_downloader.run(**git_env(server.repo_url("model"), GIT_REF=repo.v1_commit))
    assert result.returncode == 0, result.output
    assert "fetching all branches and tags" in result.stdout
    assert model_files(busybox_downloader) == Repo.checksums(repo.v1)


def test_short_commit_hash(repo, server, busybox_downloader):
    result = busybox_downloader.run(**git_env(server.repo_url("model"), GIT_REF=repo.v1_commit[:10]))
    assert result.returncode == 0, result.output
    assert model_files(busybox_downloader) == Repo.checksums(repo.v1)


def test_token_from_the_secret_authenticates_git_and_lfs(repo, git_server_factory, busybox_downloader):
    server = git_server_factory(repo.store, token=TOKEN)
    result = busybox_downloader.run(**git_env(server.repo_url("model"), GIT_TOKEN=TOKEN))
    assert result.returncode == 0, result.output
    assert model_files(busybox_downloader) == Repo.checksums(repo.v2)
    assert TOKEN not in result.output
    authenticated = [r.path for r in server.requests if r.headers.get("authorization", "").startswith("Basic ")]
    assert any("git-upload-pack" in p for p in authenticated)
    assert any(p.endswith("/info/lfs/objects/batch") for p in authenticated)


@pytest.mark.parametrize(("token", "why"), [("glpat-WrongTokenAlsoSecret", "authentication failed"),
                                       ("", "authentication required")])
def test_wrong_or_missing_token(repo, git_server_factory, busybox_downloader, token, why):
    server = git_server_factory(repo.store, token=TOKEN)
    url = server.repo_url("model")
    result = busybox_downloader.run(**git_env(url, GIT_TOKEN=token, GIT_REF="main"))
    assert result.returncode != 0
    assert result.last_error_line.startswith(f"download failed: git {url} ref main: {why}")
    assert not busybox_downloader.marker.exists()
    for secret in (TOKEN, token):
        if secret:
            assert secret not in result.output


def test_missing_ref(server, busybox_downloader):
    url = server.repo_url("model")
    result = busybox_downloader.run(**git_env(url, GIT_REF="no-such-branch"))
    assert result.returncode != 0
    assert result.last_error_line == (
        f"download failed: git {url} ref no-such-branch: ref not found in the repository (check model.git.ref)")


def test_missing_repository(server, busybox_downloader):
    url = server.repo_url("nope")
    result = busybox_downloader.run(**git_env(url))
    assert result.returncode != 0
    assert result.last_error_line.startswith(f"download failed: git {url} ref (default branch): repository not found")


def test_credentials_in_the_url_are_not_printed(server, busybox_downloader):
    url = server.repo_url("nope").replace("http://", "http://someone:UrlSecret42@")
    result = busybox_downloader.run(**git_env(url))
    assert result.returncode != 0
    assert "UrlSecret42" not in result.last_error_line


def test_second_run_makes_no_request(server, busybox_downloader):
    url = server.repo_url("model")
    assert busybox_downloader.run(**git_env(url)).returncode == 0
    server.clear()
    again = busybox_downloader.run(**git_env(url))
    assert again.returncode == 0, again.output
    assert "already complete" in again.stdout
    assert server.requests == []


def test_killed_mid_transfer_then_resumed(repo, git_server_factory, busybox_downloader):
    """One weight object stalls after another completed; the run is killed with a token
    configured; nothing on disk holds the token; the next run resumes from the existing .git
    and does not fetch again the object that had completed."""
    server = git_server_factory(repo.store, token=TOKEN)
    big = server.stall(oid(repo.v2["model-00001-of-00002.safetensors"]), after=MiB)
    small = oid(repo.v2["model-00002-of-00002.safetensors"])
    env = git_env(server.repo_url("model"), GIT_TOKEN=TOKEN, GIT_LFS_CONCURRENCY="2",
                  DOWNLOAD_PROGRESS_SECONDS="1")
    process = busybox_downloader.start(**env)
    try:
        stored = busybox_downloader.model_dir / ".git" / "lfs" / "objects" / small[:2] / small[2:4] / small
        server.wait_for(lambda: big.reached.is_set() and stored.is_file()
                        and "git: progress" in busybox_downloader.output_so_far())
    finally:
        busybox_downloader.kill(process)
    git_dir = busybox_downloader.model_dir / ".git"
    assert not busybox_downloader.marker.exists()
    assert git_dir.is_dir()
    for path in git_dir.rglob("*"):
        if path.is_file() and path.stat().st_size < 10 * MiB:
            assert TOKEN.encode() not in path.read_bytes(), path

    server.clear()
    result = busybox_downloader.run(**env)
    assert result.returncode == 0, result.output
    assert "resuming" in result.stdout
    assert model_files(busybox_downloader) == Repo.checksums(repo.v2)
    assert not any(r.path.endswith(small) for r in server.object_requests())


def test_lfs_transfers_run_in_parallel(repo, server, busybox_downloader):
    """Both weight objects are in flight at once: each stalls, and both stalls are reached."""
    stalls = [server.stall(oid(repo.v2[name]), after=MiB // 2)
              for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")]
    process = busybox_downloader.start(**git_env(server.repo_url("model"), GIT_LFS_CONCURRENCY="2"))
    try:
        server.wait_for(lambda: all(s.reached.is_set() for s in stalls))
    finally:
        busybox_downloader.kill(process)


def test_weights_are_hard_links_of_the_fetched_objects(repo, server, busybox_downloader):
    """The LFS objects are linked into place, not copied: the weights are never on disk twice.
    An `rm` shim records the weight files' link counts when the script removes .git."""
    record = busybox_downloader.tmp_path / "links-at-rm"
    shim = busybox_downloader.bin / "rm"
    shim.write_text(
        "#!/bin/sh\n"
        f'if [ "$*" = "-rf .git" ]; then stat -c "%h %n" *.safetensors >"{record}"; fi\n'
        'exec busybox rm "$@"\n'
    )
    shim.chmod(0o755)
    result = busybox_downloader.run(**git_env(server.repo_url("model")))
    assert result.returncode == 0, result.output
    assert record.read_text().split("\n")[:2] == [
        "2 model-00001-of-00002.safetensors", "2 model-00002-of-00002.safetensors"]
    assert model_files(busybox_downloader) == Repo.checksums(repo.v2)


def test_invalid_concurrency_is_refused(server, busybox_downloader):
    result = busybox_downloader.run(**git_env(server.repo_url("model"), GIT_LFS_CONCURRENCY="lots"))
    assert result.returncode != 0
    assert "GIT_LFS_CONCURRENCY=lots is not a positive integer" in result.last_error_line
    assert server.requests == []


def test_scripts_never_put_the_token_in_argv(repo, git_server_factory, busybox_downloader):
    """While git and git-lfs run, no process has the token in its command line."""
    server = git_server_factory(repo.store, token=TOKEN)
    stall = server.stall(oid(repo.v2["model-00001-of-00002.safetensors"]), after=MiB)
    process = busybox_downloader.start(**git_env(server.repo_url("model"), GIT_TOKEN=TOKEN))
    try:
        server.wait_for(stall.reached.is_set)
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            assert TOKEN.encode() not in cmdline
    finally:
        busybox_downloader.kill(process)


def test_model_directory_owned_by_another_user(repo, server, busybox_downloader):
    """A volume written before by another uid: git's ownership check must not stop the download."""
    if os.geteuid() != 0:
        pytest.skip("giving the directory to another user needs root (as in CI)")
    os.chown(busybox_downloader.model_dir, 65534, 65534)
    result = busybox_downloader.run(**git_env(server.repo_url("model")))
    assert result.returncode == 0, result.output
    assert model_files(busybox_downloader) == Repo.checksums(repo.v2)


def test_nothing_outlives_the_run(server, busybox_downloader):
    """The LFS fetch runs in the background beside the progress loop: when the script ends,
    no process of its session is left (a leftover would hold the Job's log stream open)."""
    process = busybox_downloader.start(**git_env(server.repo_url("model"), DOWNLOAD_PROGRESS_SECONDS="1"))
    assert process.wait(timeout=60) == 0, busybox_downloader.output_so_far()
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        session = int(stat.rsplit(")", 1)[1].split()[3])
        if session == process.pid:
            leftovers.append(stat)
    assert leftovers == []


@pytest.fixture(scope="module")
def full_repo(tmp_path_factory):
    """A repository shaped like a Meta one: safetensors shards with their index, a .bin copy,
    the original/ checkpoint and a nested checkpoint, all in LFS."""
    require_tool("git", "git-lfs")
    import json

    from .git_fake import GitStore, RepoBuilder

    root = tmp_path_factory.mktemp("git-full")
    numbers = iter(range(100, 1000))

    def make(size: int) -> Path:
        number = next(numbers)
        return write_random(root / "sources" / str(number), size, number)

    index = root / "sources" / "index.json"
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps({"metadata": {}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    files = {
        "config.json": make(300), "tokenizer.json": make(20_000), "README.md": make(500),
        "model-00001-of-00002.safetensors": make(MiB), "model-00002-of-00002.safetensors": make(MiB),
        "model.safetensors.index.json": index, "pytorch_model.bin": make(2 * MiB),
        "original/consolidated.00.pth": make(2 * MiB), "original/params.json": make(100),
        "checkpoint-500/model-00001-of-00002.safetensors": make(MiB),
    }
    store = GitStore(root / "store")
    RepoBuilder(store, "full", lfs_patterns=("*.safetensors", "*.bin", "*.pth")).commit(files, "all")
    return store, files


SELECTED = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
            "model.safetensors.index.json", "tokenizer.json"]


def test_only_the_selected_lfs_objects_are_fetched(full_repo, git_server_factory, busybox_downloader):
    """The rule every source shares: the .bin copy, original/ and the nested checkpoint's objects are
    never requested (config.json anchored at the top does not pull checkpoint-500/ either), and the
    directory holds exactly the selection, no pointer file of an unselected weight."""
    store, files = full_repo
    server = git_server_factory(store)
    result = busybox_downloader.run(**git_env(server.repo_url("full")))
    assert result.returncode == 0, result.output
    assert model_files(busybox_downloader) == Repo.checksums({name: files[name] for name in SELECTED})
    fetched = {r.path.rsplit("/", 1)[-1] for r in server.object_requests()}
    assert fetched == {oid(files[name]) for name in SELECTED if name.endswith(".safetensors")}
    assert "5 files selected" in result.stdout


def test_git_files_override_the_rule(full_repo, git_server_factory, busybox_downloader):
    store, files = full_repo
    server = git_server_factory(store)
    result = busybox_downloader.run(**git_env(server.repo_url("full"), GIT_FILES="config.json,original/*"))
    assert result.returncode == 0, result.output
    chosen = ["config.json", "original/consolidated.00.pth", "original/params.json"]
    assert model_files(busybox_downloader) == Repo.checksums({name: files[name] for name in chosen})
    assert {r.path.rsplit("/", 1)[-1] for r in server.object_requests()} == {oid(files["original/consolidated.00.pth"])}


def test_git_files_matching_nothing_fails_naming_the_setting(full_repo, git_server_factory, busybox_downloader):
    store, _ = full_repo
    server = git_server_factory(store)
    result = busybox_downloader.run(**git_env(server.repo_url("full"), GIT_FILES="*.gguf"))
    assert result.returncode != 0
    assert result.last_error_line.endswith("FILES entry '*.gguf' matches no file of the repository (model.git.files)")
    assert server.object_requests() == []
