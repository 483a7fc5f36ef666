"""The huggingface source, end to end: download.sh -> hf_download.py -> huggingface_hub ->
a fake Hub on 127.0.0.1 serving real files (HF_ENDPOINT), run under dash as in the
vllm/vllm-openai image."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .http_util import sha256_file, tree_checksums

TOKEN = "hf_TestTokenThatMustNeverBePrinted123"
MiB = 1 << 20


@pytest.fixture
def model_repo(hub, random_file, tmp_path):
    """A repository shaped like a real one: sharded safetensors with index, a .bin copy,
    Meta's original/ checkpoint, docs. Returns (repo, files of main, files of tag v1)."""
    index = tmp_path / "sources" / "index.json"
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps({"metadata": {}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    v1 = {
        "config.json": random_file("config.json", 300),
        "generation_config.json": random_file("generation_config.json", 100),
        "tokenizer.json": random_file("tokenizer.json", 40_000),
        "tokenizer_config.json": random_file("tokenizer_config.json", 900),
        "model-00001-of-00002.safetensors": random_file("s1", 3 * MiB),
        "model-00002-of-00002.safetensors": random_file("s2", 2 * MiB),
        "model.safetensors.index.json": index,
        "pytorch_model.bin": random_file("bin", 2 * MiB),
        "original/consolidated.00.pth": random_file("pth", 2 * MiB),
        "original/params.json": random_file("params", 100),
        "README.md": random_file("readme", 500),
        ".gitattributes": random_file("attrs", 100),
    }
    repo = hub.add_repo("acme/tiny-llm")
    repo.commit(v1, branch="main", tags=("v1",))
    main = {**v1, "model-00002-of-00002.safetensors": random_file("s2-v2", 2 * MiB)}
    repo.commit(main, branch="main")
    return repo, main, v1


SELECTED = ["config.json", "generation_config.json", "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json",
            "tokenizer_config.json"]


def hf_env(hub, **extra):
    return {"SOURCE": "huggingface", "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_MODEL_ID": "acme/tiny-llm", **extra}


def expected(files, names):
    return {name: sha256_file(files[name]) for name in names}


def model_files(downloader):
    return {k: v for k, v in tree_checksums(downloader.model_dir).items() if not k.startswith(".vllm-serving")}


def test_downloads_only_what_vllm_loads(hub, model_repo, dash_downloader):
    _, main, _ = model_repo
    result = dash_downloader.run(**hf_env(hub))
    assert result.returncode == 0, result.output
    assert model_files(dash_downloader) == expected(main, SELECTED)
    assert dash_downloader.marker.read_text() == "0123456789ab\n"
    assert not (dash_downloader.model_dir / ".vllm-serving-partial").exists()
    fetched = {r.path.rsplit("/resolve/", 1)[1].split("/", 1)[1] for r in hub.file_requests()}
    assert fetched == set(SELECTED)


@pytest.mark.parametrize(("revision", "version"), [("v1", "v1"), ("", "main"), ("main", "main"), ("commit", "v1")])
def test_revision_as_tag_branch_or_commit(hub, model_repo, dash_downloader, revision, version):
    repo, main, v1 = model_repo
    revision = repo.refs["v1"] if revision == "commit" else revision
    result = dash_downloader.run(**hf_env(hub, HF_REVISION=revision))
    assert result.returncode == 0, result.output
    assert model_files(dash_downloader) == expected(v1 if version == "v1" else main, SELECTED)


def test_files_override_the_selection(hub, model_repo, dash_downloader):
    _, main, _ = model_repo
    result = dash_downloader.run(**hf_env(hub, HF_FILES="config.json, *.bin"))
    assert result.returncode == 0, result.output
    assert model_files(dash_downloader) == expected(main, ["config.json", "pytorch_model.bin"])


def test_index_keeps_unlisted_shards_out(hub, random_file, tmp_path, dash_downloader):
    index = tmp_path / "idx.json"
    index.write_text(json.dumps({"weight_map": {"x": "model-00001-of-00001.safetensors"}}))
    files = {"config.json": random_file("c", 10), "model.safetensors.index.json": index,
             "model-00001-of-00001.safetensors": random_file("w", MiB),
             "model-stale.safetensors": random_file("stale", MiB)}
    hub.add_repo("acme/tiny-llm").commit(files)
    result = dash_downloader.run(**hf_env(hub))
    assert result.returncode == 0, result.output
    assert sorted(model_files(dash_downloader)) == [
        "config.json", "model-00001-of-00001.safetensors", "model.safetensors.index.json"]


def test_second_run_makes_no_request(hub, model_repo, dash_downloader):
    assert dash_downloader.run(**hf_env(hub)).returncode == 0
    before = model_files(dash_downloader)
    hub.clear()
    again = dash_downloader.run(**hf_env(hub))
    assert again.returncode == 0, again.output
    assert "already complete" in again.stdout
    assert hub.requests == []
    assert model_files(dash_downloader) == before


def test_gated_repository_with_the_right_token(hub, model_repo, dash_downloader):
    repo, main, _ = model_repo
    repo.gated, repo.token = True, TOKEN
    result = dash_downloader.run(**hf_env(hub, HF_TOKEN=TOKEN))
    assert result.returncode == 0, result.output
    assert model_files(dash_downloader) == expected(main, SELECTED)
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub.requests if "/acme/" in r.path)
    assert TOKEN not in result.output


@pytest.mark.parametrize(("token", "why"), [("hf_WrongTokenAlsoSecret987", "refused the token"),
                                       ("", "no token was given")])
def test_gated_repository_refuses_a_wrong_or_missing_token(hub, model_repo, dash_downloader, token, why):
    repo, _, _ = model_repo
    repo.gated, repo.token = True, TOKEN
    result = dash_downloader.run(**hf_env(hub, HF_TOKEN=token))
    assert result.returncode != 0
    line = result.last_error_line
    assert line.startswith("download failed: huggingface model 'acme/tiny-llm' revision 'main': access denied")
    assert why in line
    assert not dash_downloader.marker.exists()
    for secret in (TOKEN, token):
        if secret:
            assert secret not in result.output


def test_missing_revision_is_named(hub, model_repo, dash_downloader):
    result = dash_downloader.run(**hf_env(hub, HF_REVISION="no-such-branch"))
    assert result.returncode != 0
    assert result.last_error_line == (
        "download failed: huggingface model 'acme/tiny-llm' revision 'no-such-branch': "
        "revision not found in the repository (check model.huggingface.revision)")


def test_missing_repository_is_named(hub, model_repo, dash_downloader):
    result = dash_downloader.run(**hf_env(hub, HF_MODEL_ID="acme/nope"))
    assert result.returncode != 0
    assert result.last_error_line == (
        "download failed: huggingface model 'acme/nope' revision 'main': repository not found "
        "(check model.huggingface.id), or private and no token was given")


def test_files_entry_matching_nothing_fails_before_any_transfer(hub, model_repo, dash_downloader):
    result = dash_downloader.run(**hf_env(hub, HF_FILES="config.json,model.gguf"))
    assert result.returncode != 0
    assert "'model.gguf' matches no file" in result.last_error_line
    assert hub.file_requests() == []


def test_unreachable_endpoint_is_explained(dash_downloader):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = dash_downloader.run(SOURCE="huggingface", HF_MODEL_ID="acme/tiny-llm", HF_HUB_DISABLE_XET="1",
                                 HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_ETAG_TIMEOUT="2",
                                 HF_HUB_DOWNLOAD_TIMEOUT="2")
    assert result.returncode != 0
    assert f"cannot reach http://127.0.0.1:{port}" in result.last_error_line


def test_invalid_worker_count_is_refused(hub, model_repo, dash_downloader):
    result = dash_downloader.run(**hf_env(hub, HF_MAX_WORKERS="many"))
    assert result.returncode != 0
    assert "HF_MAX_WORKERS='many' is not a positive integer" in result.last_error_line
    assert hub.requests == []


def test_killed_mid_transfer_then_resumed(hub, model_repo, dash_downloader):
    """Two weight files stall at once (so the workers run in parallel); the run is killed;
    no marker is left; the next run completes with identical bytes and does not fetch again
    what had completed."""
    _, main, _ = model_repo
    first = hub.stall("model-00001-of-00002.safetensors", after=MiB)
    second = hub.stall("model-00002-of-00002.safetensors", after=MiB // 2)
    process = dash_downloader.start(**hf_env(hub, HF_MAX_WORKERS="4", DOWNLOAD_PROGRESS_SECONDS="0.1"))
    try:
        # A file is moved into place once it is whole (hf_http.py): config.json has finished.
        done = dash_downloader.model_dir / "config.json"
        hub.wait_for(lambda: first.reached.is_set() and second.reached.is_set() and done.is_file())
        hub.wait_for(lambda: "huggingface: progress" in dash_downloader.output_so_far())
    finally:
        killed = dash_downloader.kill(process)
    assert "huggingface: progress" in killed.stdout
    assert not dash_downloader.marker.exists()
    assert (dash_downloader.model_dir / ".vllm-serving-partial").exists()

    hub.clear()
    result = dash_downloader.run(**hf_env(hub))
    assert result.returncode == 0, result.output
    assert model_files(dash_downloader) == expected(main, SELECTED)
    assert not [r for r in hub.file_requests() if r.method == "GET" and r.path.endswith("/config.json")]


def test_another_source_spec_replaces_the_previous_download(hub, model_repo, dash_downloader):
    _, main, _ = model_repo
    assert dash_downloader.run(**hf_env(hub)).returncode == 0
    (dash_downloader.model_dir / "user-notes.txt").write_text("from the earlier model")
    result = dash_downloader.run(**hf_env(hub, HF_FILES="config.json"), SOURCE_FINGERPRINT="another-spec")
    assert result.returncode == 0, result.output
    assert "holds a download of another source spec" in result.stdout
    assert model_files(dash_downloader) == expected(main, ["config.json"])
    assert dash_downloader.marker.read_text() == "another-spec\n"


def _xet_available(downloader) -> bool:
    probe = subprocess.run(
        ["python3", "-c", "from huggingface_hub.utils._runtime import is_xet_available as x; print(x())"],
        env=downloader.env(HF_HUB_DISABLE_XET="0"), capture_output=True, text=True)
    return probe.stdout.strip() == "True"


@pytest.fixture
def xet_repo(hub, model_repo):
    repo, main, _ = model_repo
    repo.xet = True
    return main


def test_mirror_endpoint_downloads_over_http_not_xet(hub, xet_repo, dash_downloader):
    """With HF_ENDPOINT set (a mirror), the bytes come through it: Xet, which would go around
    it to the Hub's storage, is off unless the user turns it on."""
    env = hf_env(hub)
    del env["HF_HUB_DISABLE_XET"]
    result = dash_downloader.run(**env)
    assert result.returncode == 0, result.output
    assert model_files(dash_downloader) == expected(xet_repo, SELECTED)
    assert hub.xet_requests() == []


def test_xet_offer_is_taken_when_turned_on(hub, xet_repo, dash_downloader):
    """The control for the test above: the fake's Xet offer does lead a client with Xet on
    to the Xet token route (and so around the mirror)."""
    if not _xet_available(dash_downloader):
        pytest.skip("this huggingface_hub has no Xet support")
    process = dash_downloader.start(**hf_env(hub, HF_HUB_DISABLE_XET="0"))
    try:
        hub.wait_for(lambda: hub.xet_requests() or process.poll() is not None)
    finally:
        if process.poll() is None:
            dash_downloader.kill(process)
    assert hub.xet_requests()


# --- the plain-HTTP transfer (hf_http.py): Xet off, as with a mirror -----------------------------


def test_a_stalled_transfer_resumes_from_its_bytes(hub, model_repo, dash_downloader):
    """A shard stops arriving after 1 MiB: after HF_HUB_DOWNLOAD_TIMEOUT the same run asks for
    the rest with a Range request and ends with the right bytes, none of the first MiB sent twice."""
    _, main, _ = model_repo
    name = "model-00001-of-00002.safetensors"
    hub.stall(name, after=MiB, once=True)
    result = dash_downloader.run(**hf_env(hub, HF_HUB_DOWNLOAD_TIMEOUT="1"))
    assert result.returncode == 0, result.output
    assert model_files(dash_downloader) == expected(main, SELECTED)
    gets = [r for r in hub.file_requests() if r.method == "GET" and r.path.endswith(name)]
    assert [r.headers.get("range") for r in gets] == [None, f"bytes={MiB}-"]
    assert hub.sent[name] == main[name].stat().st_size
    assert "(HTTP)" in result.stdout


def test_token_goes_to_the_endpoint_only_never_to_the_cdn(hub, model_repo, dash_downloader):
    """The Hub redirects LFS files to its CDN with a signed URL: the token stays with the Hub."""
    from .hub_fake import FakeHub

    _, main, _ = model_repo
    cdn = FakeHub().start()
    try:
        hub.lfs_redirect = cdn
        result = dash_downloader.run(**hf_env(hub), HF_TOKEN=TOKEN)
        assert result.returncode == 0, result.output
        assert model_files(dash_downloader) == expected(main, SELECTED)
        cdn_gets = [r for r in cdn.file_requests() if r.method == "GET"]
        assert {r.path.rsplit("/", 1)[-1] for r in cdn_gets} >= {
            "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
        assert all("authorization" not in r.headers for r in cdn_gets)
        assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub.file_requests())
    finally:
        cdn.stop()
    assert TOKEN not in result.output


def test_files_of_an_older_commit_of_the_same_spec_are_removed_not_trusted(hub, model_repo, dash_downloader):
    """An attempt cut short while `main` pointed at another commit left files placed for it: the
    next attempt removes those, fetches over a same-named file it did not place, and keeps a file
    that is not its own."""
    _, main, _ = model_repo
    model_dir = dash_downloader.model_dir
    (model_dir / ".vllm-serving-partial").write_text("0123456789ab\n")
    staging = model_dir / ".cache" / "vllm-serving"
    staging.mkdir(parents=True)
    (staging / "commit").write_text("0" * 40 + "\n")
    (staging / "placed").write_text("model-00003-of-00003.safetensors\n../outside.txt\n")
    (model_dir.parent / "outside.txt").write_text("not in the model directory")
    (model_dir / "model-00003-of-00003.safetensors").write_bytes(b"old shard")
    # config.json of the right size, wrong bytes, not placed by this code: fetched again.
    (model_dir / "config.json").write_bytes(b"x" * main["config.json"].stat().st_size)
    (model_dir / "notes.txt").write_text("kept")
    result = dash_downloader.run(**hf_env(hub))
    assert result.returncode == 0, result.output
    assert model_files(dash_downloader) == {**expected(main, SELECTED), "notes.txt": sha256_text("kept")}
    assert not staging.exists()
    assert (model_dir.parent / "outside.txt").exists()


def sha256_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def private_ca(tmp_path):
    """A self-signed certificate for 127.0.0.1, as a private mirror's CA would issue one."""
    from .conftest import require_tool

    require_tool("openssl")
    certificate, key = tmp_path / "ca.pem", tmp_path / "ca.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=mirror",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True)
    return certificate, key


def test_a_mirror_behind_a_private_ca(private_ca, random_file, dash_downloader):
    """HTTPS to a mirror whose certificate only a private CA vouches for, named as users name it
    (SSL_CERT_FILE for httpx, huggingface_hub 1.x and later; REQUESTS_CA_BUNDLE for requests, 0.x):
    huggingface_hub's listing and hf_http.py's transfer both trust it, and without it the message
    says what to set."""
    from .hub_fake import FakeHub

    certificate, key = private_ca
    hub = FakeHub().serve_tls(certificate, key).start()
    try:
        files = {"config.json": random_file("config.json", 300), "model.safetensors": random_file("w", 2 * MiB)}
        hub.add_repo("acme/tiny-llm").commit(files)
        result = dash_downloader.run(**hf_env(hub), SSL_CERT_FILE=str(certificate), REQUESTS_CA_BUNDLE=str(certificate))
        assert result.returncode == 0, result.output
        assert model_files(dash_downloader) == expected(files, ["config.json", "model.safetensors"])
        assert "(HTTP)" in result.stdout
        untrusted = dash_downloader.run(**hf_env(hub), SOURCE_FINGERPRINT="another-spec")
        assert untrusted.returncode != 0
        assert "the TLS certificate of https://127.0.0.1:" in untrusted.last_error_line
        assert "is not trusted" in untrusted.last_error_line
    finally:
        hub.stop()


@pytest.fixture
def hf_http():
    """hf_http.py, the download image's script, imported here to call it directly."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "components" / "scripts"))
    try:
        import hf_http  # type: ignore[import-not-found]  # a script of the download image, put on the path above
    finally:
        sys.path.pop(0)
    return hf_http


def test_a_ca_bundle_named_for_requests_is_trusted_too(private_ca, monkeypatch, hf_http):
    """Images with huggingface_hub 0.x (requests) name their CA bundle in REQUESTS_CA_BUNDLE."""
    certificate, _ = private_ca
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    subjects = [dict(part[0] for part in cert["subject"]) for cert in hf_http.tls_context().get_ca_certs()]
    assert {"commonName": "mirror"} in subjects


def test_a_file_is_created_afresh_never_truncated_to_zero(hub, model_repo, tmp_path, monkeypatch, hf_http):
    """ext4 flushes a file truncated to zero to disk when it is closed (auto_da_alloc), so a
    transfer that truncated its fresh partial file waited for that file's writeback at every
    close: half the link's speed in benchmarks/download_throughput.py. A fresh file is created;
    a resumed one is cut back to the bytes it keeps, never to zero."""
    repo, main, _ = model_repo
    commit = repo.resolve("main")
    truncated = []
    ftruncate = os.ftruncate
    monkeypatch.setattr(os, "ftruncate", lambda fd, length: (truncated.append(length), ftruncate(fd, length))[1])
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    hf_http.start_commit(str(model_dir), commit)
    files = hf_http.HubFiles(model_dir=str(model_dir), url_of=lambda name: f"{hub.url}/acme/tiny-llm/resolve/{commit}/{name}",
                             headers={}, timeout=1, redact=str)
    name = "model-00001-of-00002.safetensors"
    hub.stall(name, after=MiB, once=True)
    sizes = {n: main[n].stat().st_size for n in ("config.json", name)}
    files.fetch_all(sizes, sizes, workers=2)
    assert {n: sha256_file(model_dir / n) for n in sizes} == expected(main, sizes)
    assert truncated == [MiB]  # the resume, from the first MiB on disk; the fresh starts, none
