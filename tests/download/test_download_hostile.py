"""Hostile servers, for every source: a Hub that lists escaping paths, a git server that echoes
the token, an S3 listing with `..` and `//` keys, and servers that close mid-file. Each run
must fail without a completion marker, write nothing outside MODEL_DIR and print no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import require_tool
from .http_util import sha256_file

MiB = 1 << 20
GIT_TOKEN = "glpat-HostileServerEchoesThisToken"


def outside(downloader) -> set[str]:
    """Files that appeared beside MODEL_DIR (a `../` escape lands there or above)."""
    root = downloader.tmp_path.parent
    return {str(p.relative_to(root)) for p in root.rglob("escaped*")}


# --- Hugging Face ---------------------------------------------------------------------------


def hf_env(hub, repo_id="acme/hostile"):
    return {"SOURCE": "huggingface", "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_MODEL_ID": repo_id}


@pytest.mark.parametrize("escaping", ["../../escaped.json", "sub/../../escaped.safetensors", "/tmp/escaped.json"])
@pytest.mark.parametrize("files", ["", "*"])
def test_hub_listing_a_path_outside_the_model_directory(dash_downloader, hub, random_file, escaping, files):
    """Whatever the huggingface_hub release would do with the name (0.23 and 0.36 write it outside),
    the listing is refused before any file is fetched."""
    hub.add_repo("acme/hostile").commit({"config.json": random_file("c", 100), "model.safetensors": random_file("w", 1000),
                                         escaping: random_file("e", 100)})
    result = dash_downloader.run(**hf_env(hub), HF_FILES=files)
    assert result.returncode != 0
    assert "unsafe path in the listing" in result.last_error_line and escaping in result.last_error_line
    assert hub.file_requests() == []
    assert not dash_downloader.marker.exists()
    assert outside(dash_downloader) == set()


def test_hub_closing_mid_file(dash_downloader, hub, random_file):
    hub.add_repo("acme/hostile").commit({"config.json": random_file("c", 100),
                                         "model.safetensors": random_file("w", 2 * MiB)})
    hub.cuts["model.safetensors"] = MiB
    result = dash_downloader.run(timeout=120, **hf_env(hub))
    assert result.returncode != 0, result.output
    assert result.last_error_line.startswith("download failed: huggingface model 'acme/hostile'")
    assert not dash_downloader.marker.exists()


# --- git --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def git_repo(tmp_path_factory):
    require_tool("git", "git-lfs")
    from .conftest import write_random
    from .git_fake import GitStore, RepoBuilder

    root = tmp_path_factory.mktemp("hostile-git")
    store = GitStore(root / "store")
    files = {name: write_random(root / "src" / str(n), size, n) for n, (name, size) in enumerate(
        [("config.json", 300), ("model.safetensors", 2 * MiB)], start=1)}
    RepoBuilder(store, "model").commit(files, "weights")
    return store, files


def git_env(url: str, **extra: str) -> dict[str, str]:
    return {"SOURCE": "git", "GIT_URL": url, **extra}


def test_git_server_echoing_the_token_never_gets_it_printed(git_repo, git_server_factory, busybox_downloader):
    store, _ = git_repo
    server = git_server_factory(store, token=GIT_TOKEN, echo_token=True)
    result = busybox_downloader.run(**git_env(server.repo_url("model"), GIT_TOKEN=GIT_TOKEN))
    assert result.returncode != 0
    # The server did echo it (git-lfs prints the server's message), and it arrives redacted.
    assert "Object does not exist for oauth2:*** (Basic ***)" in result.output
    assert GIT_TOKEN not in result.output
    import base64
    assert base64.b64encode(f"oauth2:{GIT_TOKEN}".encode()).decode() not in result.output
    assert not busybox_downloader.marker.exists()


@pytest.mark.parametrize("ref", ["--upload-pack=touch escaped", "-c", "main..dev", "a b", "x.lock", "bad~1",
                                 "ref:with:colons", "end/", "@{-1}", "a\nb"])
def test_a_ref_git_would_not_accept_is_refused_before_any_request(git_repo, git_server_factory,
                                                                  busybox_downloader, ref):
    store, _ = git_repo
    server = git_server_factory(store)
    result = busybox_downloader.run(**git_env(server.repo_url("model"), GIT_REF=ref))
    assert result.returncode != 0
    assert "GIT_REF" in result.last_error_line
    assert server.requests == []
    assert outside(busybox_downloader) == set()


@pytest.mark.parametrize("url", ["ext::sh -c touch% escaped", "-uhttp://127.0.0.1/x.git", "fd::17",
                                 "/srv/model.git", "file://relative/x.git"])
def test_a_url_whose_transport_could_run_commands_is_refused(busybox_downloader, url):
    result = busybox_downloader.run(**git_env(url))
    assert result.returncode != 0
    assert "GIT_URL must be an https://" in result.last_error_line
    assert outside(busybox_downloader) == set()


def test_git_lfs_server_closing_mid_file(git_repo, git_server_factory, busybox_downloader):
    store, files = git_repo
    server = git_server_factory(store)
    server.cuts[sha256_file(files["model.safetensors"])] = MiB
    # Two retries a second apart, as the S3 case below sets rclone's: git-lfs's own 8 with
    # backoff up to 10 s took half a minute to reach the same failure. A user's GIT_CONFIG_*
    # entries reach git-lfs (git_download.sh appends its own after them).
    retries = {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "lfs.transfer.maxretries", "GIT_CONFIG_VALUE_0": "2",
               "GIT_CONFIG_KEY_1": "lfs.transfer.maxretrydelay", "GIT_CONFIG_VALUE_1": "1"}
    result = busybox_downloader.run(timeout=120, **git_env(server.repo_url("model")), **retries)
    assert result.returncode != 0
    assert "download failed: git" in result.last_error_line
    assert not busybox_downloader.marker.exists()
    assert not (busybox_downloader.model_dir / "model.safetensors").exists() or \
        sha256_file(busybox_downloader.model_dir / "model.safetensors") != sha256_file(files["model.safetensors"])


# --- S3 ---------------------------------------------------------------------------------------


def s3_env(server, url="s3://models/hostile", **extra):
    return {"SOURCE": "s3", "S3_URL": url, "S3_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": server.access_key,
            "AWS_SECRET_ACCESS_KEY": server.secret_key, "AWS_REGION": "us-east-1", **extra}


@pytest.mark.parametrize("key", ["hostile/a//b.json", "hostile//config2.json", "hostile/../escaped.json",
                                 "hostile/sub/../../escaped.json", "hostile/./x.json"])
def test_s3_listing_with_dot_dot_or_empty_parts_fails(s3_server, busybox_downloader, random_file, key):
    s3_server.upload("models", "hostile", {"config.json": random_file("c", 100),
                                           "model.safetensors": random_file("w", 1000)})
    s3_server.upload("models", "", {key: random_file("e", 100)})
    s3_server.clear()
    result = busybox_downloader.run(**s3_env(s3_server))
    assert result.returncode != 0, result.output
    assert result.last_error_line.startswith("download failed: s3 s3://models/hostile: unsafe path in the listing")
    assert s3_server.object_gets() == [], result.output
    assert not busybox_downloader.marker.exists()
    assert outside(busybox_downloader) == set()


def test_s3_server_closing_mid_file(s3_server, busybox_downloader, random_file):
    s3_server.upload("models", "hostile", {"config.json": random_file("c", 100),
                                           "model.safetensors": random_file("w", 2 * MiB)})
    s3_server.cuts["hostile/model.safetensors"] = MiB
    result = busybox_downloader.run(timeout=180, **s3_env(s3_server, **{"RCLONE_RETRIES": "2",
                                                                        "RCLONE_LOW_LEVEL_RETRIES": "2"}))
    assert result.returncode != 0, result.output
    assert not busybox_downloader.marker.exists()


def test_nothing_of_a_hostile_run_lands_outside(tmp_path: Path):
    """The helper above sees what an escape would leave: a sanity check of the check itself."""
    (tmp_path.parent / "escaped-probe").write_text("x")
    try:
        class Probe:
            def __init__(self, tmp_path: Path) -> None:
                self.tmp_path = tmp_path

        assert outside(Probe(tmp_path)) == {"escaped-probe"}
    finally:
        (tmp_path.parent / "escaped-probe").unlink()
