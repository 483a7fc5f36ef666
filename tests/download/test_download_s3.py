"""The s3 source, end to end: download.sh -> s3_download.sh -> rclone -> moto's S3 server on
127.0.0.1 as a custom endpoint, under busybox sh and busybox applets as in the rclone image.
Credentials arrive as the s3-env Secret's keys are mapped by the Job: accessKeyID ->
AWS_ACCESS_KEY_ID, secretAccessKey -> AWS_SECRET_ACCESS_KEY, endpoint -> S3_ENDPOINT_URL,
region -> AWS_REGION."""

from __future__ import annotations

import pytest

from .http_util import sha256_file, tree_checksums

MiB = 1 << 20


@pytest.fixture
def bucket(s3_server, random_file):
    """Objects under models/tiny/v1 (nested too) and, beside them, a prefix that only starts alike.
    Returns the checksums expected in MODEL_DIR and the reader's credentials."""
    files = {
        "config.json": random_file("config.json", 500),
        "tokenizer.json": random_file("tokenizer.json", 20_000),
        "model-00001-of-00002.safetensors": random_file("w1", 3 * MiB),
        "model-00002-of-00002.safetensors": random_file("w2", 2 * MiB),
        "extra/preprocessor_config.json": random_file("pp", 300),
    }
    s3_server.upload("models", "tiny/v1", files)
    s3_server.upload("models", "tiny/v10", {"other.bin": random_file("other", 1000)})
    key, secret = s3_server.require_auth()
    s3_server.clear()
    return {name: sha256_file(path) for name, path in files.items()}, key, secret


def s3_env(server, key, secret, url="s3://models/tiny/v1", **extra):
    return {"SOURCE": "s3", "S3_URL": url, "S3_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1", **extra}


def model_files(downloader):
    return {k: v for k, v in tree_checksums(downloader.model_dir).items() if not k.startswith(".vllm-serving")}


def test_copies_the_selected_objects_under_the_prefix(s3_server, bucket, busybox_downloader):
    expected, key, secret = bucket
    result = busybox_downloader.run(**s3_env(s3_server, key, secret))
    assert result.returncode == 0, result.output
    assert model_files(busybox_downloader) == expected
    assert busybox_downloader.marker.read_text() == "0123456789ab\n"
    # Path-style addressing on the custom endpoint: the bucket is the first path segment.
    assert all(r.path.startswith("/models") for r in s3_server.requests)
    assert secret not in result.output


def test_wrong_secret_is_refused_and_never_printed(s3_server, bucket, busybox_downloader):
    _, key, _ = bucket
    wrong = "WrongSecretKeyThatMustNotBePrinted0000"
    # RCLONE_VERBOSE=2 would make rclone print the keys it read from the environment.
    result = busybox_downloader.run(**s3_env(s3_server, key, wrong, RCLONE_VERBOSE="2"))
    assert result.returncode != 0
    assert result.last_error_line.startswith("download failed: s3 s3://models/tiny/v1: access denied")
    assert wrong not in result.output
    assert not busybox_downloader.marker.exists()


def test_keys_are_not_printed_even_when_verbose_is_asked(s3_server, bucket, busybox_downloader):
    _, key, secret = bucket
    result = busybox_downloader.run(**s3_env(s3_server, key, secret, RCLONE_VERBOSE="2"))
    assert result.returncode == 0, result.output
    assert secret not in result.output and key not in result.output


def test_no_such_bucket(s3_server, bucket, busybox_downloader):
    _, key, secret = bucket
    result = busybox_downloader.run(**s3_env(s3_server, key, secret, url="s3://no-such-bucket/tiny"))
    assert result.returncode != 0
    assert result.last_error_line == "download failed: s3 s3://no-such-bucket/tiny: no such bucket 'no-such-bucket'"


def test_empty_prefix(s3_server, bucket, busybox_downloader):
    _, key, secret = bucket
    result = busybox_downloader.run(**s3_env(s3_server, key, secret, url="s3://models/tiny/v2"))
    assert result.returncode != 0
    assert result.last_error_line == "download failed: s3 s3://models/tiny/v2: no objects under this prefix"


def test_malformed_url(s3_server, bucket, busybox_downloader):
    _, key, secret = bucket
    result = busybox_downloader.run(**s3_env(s3_server, key, secret, url="models/tiny"))
    assert result.returncode != 0
    assert "S3_URL must look like s3://bucket/prefix" in result.last_error_line
    assert s3_server.requests == []


def test_second_run_makes_no_request(s3_server, bucket, busybox_downloader):
    _, key, secret = bucket
    assert busybox_downloader.run(**s3_env(s3_server, key, secret)).returncode == 0
    s3_server.clear()
    again = busybox_downloader.run(**s3_env(s3_server, key, secret))
    assert again.returncode == 0, again.output
    assert "already complete" in again.stdout
    assert s3_server.requests == []


def test_killed_mid_transfer_then_resumed(s3_server, bucket, busybox_downloader):
    """Two objects stall at once (parallel transfers); the run is killed; no marker; the next
    run completes with identical bytes without fetching again what had completed."""
    expected, key, secret = bucket
    stalls = [s3_server.stall("tiny/v1/model-00001-of-00002.safetensors", after=MiB),
              s3_server.stall("tiny/v1/model-00002-of-00002.safetensors", after=MiB // 2)]
    env = s3_env(s3_server, key, secret, S3_CONCURRENCY="4", DOWNLOAD_PROGRESS_SECONDS="0.2")
    process = busybox_downloader.start(**env)
    try:
        # rclone logs "Copied" once a file is complete, modification time included, and its
        # one-line stats ("..., ETA ...") every DOWNLOAD_PROGRESS_SECONDS.
        s3_server.wait_for(lambda: all(s.reached.is_set() for s in stalls)
                           and "config.json: Copied" in busybox_downloader.output_so_far()
                           and "ETA" in busybox_downloader.output_so_far())
    finally:
        busybox_downloader.kill(process)
    assert not busybox_downloader.marker.exists()

    s3_server.clear()
    result = busybox_downloader.run(**env)
    assert result.returncode == 0, result.output
    assert model_files(busybox_downloader) == expected
    assert not [r for r in s3_server.object_gets() if r.path.endswith("/config.json")]


def test_invalid_concurrency_is_refused(s3_server, bucket, busybox_downloader):
    _, key, secret = bucket
    result = busybox_downloader.run(**s3_env(s3_server, key, secret, S3_CONCURRENCY="0"))
    assert result.returncode != 0
    assert "S3_CONCURRENCY=0 is not a positive integer" in result.last_error_line


@pytest.fixture
def full_bucket(s3_server, random_file):
    """A prefix holding a whole Hub-style repository: safetensors and a .bin copy, original/."""
    import json

    index = random_file("index", 1)
    index.write_text(json.dumps({"metadata": {}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    files = {
        "config.json": random_file("config.json", 500), "tokenizer.json": random_file("tok", 20_000),
        "README.md": random_file("readme", 300),
        "model-00001-of-00002.safetensors": random_file("w1", MiB),
        "model-00002-of-00002.safetensors": random_file("w2", MiB),
        "model-stale.safetensors": random_file("stale", MiB),  # not in the index: vLLM drops it
        "model.safetensors.index.json": index, "pytorch_model.bin": random_file("bin", 2 * MiB),
        "original/consolidated.00.pth": random_file("pth", 2 * MiB), "original/params.json": random_file("p", 100),
    }
    s3_server.upload("models", "full", files)
    s3_server.clear()
    return files


def test_only_the_selected_keys_are_copied(s3_server, full_bucket, busybox_downloader):
    """The rule every source shares, the index's weight_map included."""
    result = busybox_downloader.run(**s3_env(s3_server, s3_server.access_key, s3_server.secret_key,
                                             url="s3://models/full"))
    assert result.returncode == 0, result.output
    chosen = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
              "model.safetensors.index.json", "tokenizer.json"]
    assert model_files(busybox_downloader) == {name: sha256_file(full_bucket[name]) for name in chosen}
    assert {r.path.split("/", 3)[3] for r in s3_server.object_gets()} == set(chosen)
    assert "5 of 10 objects selected" in result.stdout


def test_s3_files_override_the_rule(s3_server, full_bucket, busybox_downloader):
    result = busybox_downloader.run(**s3_env(s3_server, s3_server.access_key, s3_server.secret_key,
                                             url="s3://models/full", S3_FILES="original/*"))
    assert result.returncode == 0, result.output
    assert sorted(model_files(busybox_downloader)) == ["original/consolidated.00.pth", "original/params.json"]
