"""A model over its life: where each source downloads to, what re-downloads, the volume and its
size, the start-up budget, and the pruning of superseded versions; read off renderings before and after."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components.config import parse_config
from components.storage.download import SCRIPTS_DIR
from tests.conftest import HF_MODEL, container, env_of, problems, render_values
from tests.download.test_prune_versions import version as prune_test_version


def job_name(rendering):
    return rendering.one("Job").inputs["metadata"]["name"]


def server_model_dir(rendering):
    return container(rendering, "Deployment", "vllm")["volumeMounts"][0]["subPath"]


def download_dir(rendering):
    return env_of(container(rendering, "Job", "download"))["MODEL_DIR"]


def test_each_source_downloads_into_its_own_directory_and_the_server_follows():
    before = render_values({"model": HF_MODEL})
    changed = {**HF_MODEL, "huggingface": {"id": "codellama/CodeLlama-7b-Instruct-hf", "revision": "v2"}}
    after = render_values({"model": changed})
    fingerprint = env_of(container(before, "Job", "download"))["SOURCE_FINGERPRINT"]
    assert server_model_dir(before) == f"CodeLlama-7b-Instruct-hf/{fingerprint}"
    assert download_dir(before) == f"/volume/CodeLlama-7b-Instruct-hf/{fingerprint}"
    assert server_model_dir(after) != server_model_dir(before)
    assert download_dir(after).endswith(server_model_dir(after))
    assert job_name(after) != job_name(before)
    # The rollout onto the new directory waits for the new Job.
    assert after.one("Job").urn in after.one("Deployment").dependencies


@pytest.mark.parametrize(
    "change",
    [
        {"server": {"extraArgs": ["--max-model-len=4096"]}},
        {"resources": {"limits": {"cpu": 8, "memory": "96Gi", "nvidia.com/gpu": 2}}},
        {"replicaCount": 0},
        {"server": {"startupTimeoutSeconds": 3600}},
        # A LoadBalancer is public: without an API key, only when allowed explicitly.
        {"service": {"type": "LoadBalancer"}, "allowUnauthenticated": True},
    ],
)
def test_server_only_changes_never_redownload(change):
    # A change is made to a stack that deployed: its first download's reservation is over.
    before = render_values({"model": HF_MODEL}, deployed=True)
    after = render_values({"model": HF_MODEL, **change}, deployed=True)
    assert job_name(after) == job_name(before)
    assert server_model_dir(after) == server_model_dir(before)


def test_the_new_volume_outlives_a_destroy_by_default_without_stopping_it():
    rendering = render_values({"model": HF_MODEL})
    claim = rendering.one("PersistentVolumeClaim")
    # retainOnDelete: `pulumi destroy` drops the claim from the state and leaves it in the cluster.
    # No protect anywhere: a protected resource would stop the whole destroy before it deletes anything.
    assert claim.options["retainOnDelete"] is True and claim.options["protect"] is False
    others = [r for r in rendering.resources if r.urn != claim.urn]
    assert [r.name for r in others if r.options["protect"] or r.options["retainOnDelete"]] == []


def test_the_volume_can_be_deleted_with_the_stack_or_protected_on_purpose():
    def claim_options(**volume):
        model = {**HF_MODEL, "volume": {**HF_MODEL["volume"], **volume}}
        return render_values({"model": model}).one("PersistentVolumeClaim").options
    assert claim_options(retainOnDelete=False)["retainOnDelete"] is False
    assert claim_options(protect=True)["protect"] is True


def test_existing_claim_without_source_is_served_from_its_sub_path_as_is():
    model = {"deployName": "llama", "volume": {"existingClaim": "shared", "subPath": "meta/llama"}}
    assert server_model_dir(render_values({"model": model})) == "meta/llama"


@pytest.mark.parametrize(("keep", "copies"), [(None, 2), (0, 2), (1, 2), (3, 4)])
def test_model_size_and_the_copies_held_at_once_are_annotated_on_the_claim(keep, copies):
    volume = {"size": "100Gi", **({} if keep is None else {"keepPreviousVersions": keep})}
    model = {**HF_MODEL, "size": "14Gi", "volume": volume}
    claim = render_values({"model": model}).one("PersistentVolumeClaim").inputs
    assert claim["metadata"]["annotations"] == {
        "vllm-serving/model-bytes": str(14 * 2**30), "vllm-serving/model-copies": str(copies)}


def test_a_volume_holding_one_copy_but_not_the_two_of_a_model_change_is_refused():
    # CodeLlama on the chart's 24Gi: the new download beside the served version needs 27 GB.
    found = problems({"model": {**HF_MODEL, "size": "13.5G"}})
    assert found == {"model.volume.size": (
        "24Gi (25.8 GB) cannot hold the 2 copies of the weights that coexist during a model change: "
        "the new download beside the served version (model.volume.keepPreviousVersions 1), "
        "2 × model.size 13.5G (13.5 GB) = 27.0 GB. Raise model.volume.size to at least 26Gi")}
    parse_config({"model": {**HF_MODEL, "size": "13.5G", "volume": {"size": "26Gi"}}})


def test_keeping_no_previous_version_still_holds_the_served_one_during_the_download():
    volume = {**HF_MODEL["volume"], "keepPreviousVersions": 0}
    found = problems({"model": {**HF_MODEL, "size": "13.5G", "volume": volume}})
    assert "cannot hold the 2 copies" in found["model.volume.size"]


def test_more_kept_versions_need_more_room_and_the_message_says_which_key_lowers_it():
    model = {**HF_MODEL, "size": "40G", "volume": {"size": "100Gi", "keepPreviousVersions": 3}}
    message = problems({"model": model})["model.volume.size"]
    assert "cannot hold the 4 copies" in message and "served version and 2 older versions" in message
    assert "4 × model.size 40G (40.0 GB) = 160.0 GB. Raise model.volume.size to at least 150Gi" in message
    assert message.endswith("or keep fewer versions (model.volume.keepPreviousVersions)")
    parse_config({"model": {**model, "volume": {"size": "150Gi", "keepPreviousVersions": 3}}})


def test_an_existing_claims_size_is_unknown_offline_so_only_the_startup_budget_is_checked():
    volume = {"existingClaim": "shared", "size": "1Gi", "subPath": "m"}
    config = parse_config({"model": {**HF_MODEL, "size": "13.5G", "volume": volume}})
    assert config.model.volume.existingClaim == "shared"
    budget = problems({"model": {**HF_MODEL, "size": "13.5G", "volume": volume}, "server": {"startupTimeoutSeconds": 60}})
    assert list(budget) == ["server.startupTimeoutSeconds"]


@pytest.mark.parametrize("keep", [-1, "one"])
def test_keep_previous_versions_is_a_whole_number_of_zero_or_more(keep):
    volume = {**HF_MODEL["volume"], "keepPreviousVersions": keep}
    assert "model.volume.keepPreviousVersions" in problems({"model": {**HF_MODEL, "volume": volume}})


def test_startup_budget_too_short_for_the_model_is_refused_with_the_numbers():
    model = {**HF_MODEL, "size": "140G", "volume": {"size": "300Gi"}}
    found = problems({"model": model, "server": {"startupTimeoutSeconds": 300}})
    message = found["server.startupTimeoutSeconds"]
    assert "300 s is too short to load 140G (140.0 GB) at 0.5 GB/s" in message
    assert "about 400 s (7 min)" in message


def test_a_faster_stated_load_rate_makes_the_budget_enough():
    model = {**HF_MODEL, "size": "140G", "volume": {"size": "300Gi"}}
    config = parse_config({"model": model, "server": {"startupTimeoutSeconds": 300, "assumedLoadRateGBps": 2}})
    assert config.server.assumedLoadRateGBps == 2


@pytest.mark.parametrize(
    ("argument", "key"),
    [
        ("--tensor-parallel-size=2", "engine.tensorParallelSize"),
        ("--served-model-name=other", "model.deployName"),
        ("--model=/elsewhere", "model.volume"),
        ("--port=9000", "port 8000"),
    ],
)
def test_extra_args_cannot_override_what_the_program_sets(argument, key):
    found = problems({"model": HF_MODEL, "server": {"extraArgs": ["--max-model-len=8192", argument]}})
    assert key in found["server.extraArgs[1]"]


# --- the pruning of superseded versions, run for real -----------------------------------------


def make_version(root: Path, version: str, complete: bool, age: int = 0) -> Path:
    # Owned by "stack": prune removes only its own stack's versions (tests/download/test_prune_versions.py).
    return prune_test_version(root, version, "stack", complete, age)


SHELLS = [shell for shell in ("dash", "busybox") if shutil.which(shell)] or ["sh"]


def shell_command(shell: str, script: Path) -> list[str]:
    # The Job's images: the vLLM image's dash for Hugging Face, busybox in alpine/git and rclone.
    return ["busybox", "sh", str(script)] if shell == "busybox" else [shell, str(script)]


def prune(root: Path, current: str, keep: int | None = None, shell: str = "sh") -> subprocess.CompletedProcess:
    env = {**os.environ, "VERSIONS_DIR": str(root), "SOURCE_FINGERPRINT": current, "VERSION_OWNER": "stack"}
    if keep is not None:
        env["KEEP_PREVIOUS_VERSIONS"] = str(keep)
    return subprocess.run(
        shell_command(shell, SCRIPTS_DIR / "prune_versions.sh"), env=env, capture_output=True, text=True, check=True
    )


def four_versions(root: Path, current_complete: bool = True) -> None:
    """a, b, d completed 300, 200 and 100 s ago; e never completed; c is the current one."""
    make_version(root, "aaaaaaaaaaaa", complete=True, age=300)
    make_version(root, "bbbbbbbbbbbb", complete=True, age=200)
    make_version(root, "dddddddddddd", complete=True, age=100)
    make_version(root, "eeeeeeeeeeee", complete=False)
    make_version(root, "cccccccccccc", complete=current_complete, age=0)
    (root / "my-notes").mkdir()


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("keep", "left"),
    [
        (None, ["cccccccccccc", "dddddddddddd"]),  # the default: one previous version
        (0, ["cccccccccccc"]),
        (1, ["cccccccccccc", "dddddddddddd"]),
        (2, ["bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"]),
        (9, ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"]),
    ],
)
def test_prune_keeps_the_current_and_the_newest_kept_versions(tmp_path, shell, keep, left):
    four_versions(tmp_path)
    result = prune(tmp_path, "cccccccccccc", keep, shell)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*left, "my-notes"])
    assert "removing superseded model version eeeeeeeeeeee" in result.stdout


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("keep", "left"), [(0, ["dddddddddddd"]), (1, ["dddddddddddd"]), (2, ["bbbbbbbbbbbb", "dddddddddddd"])])
def test_before_the_download_the_served_version_stays_whatever_the_keep_count(tmp_path, shell, keep, left):
    # The current version is not complete: the newest completed one, d, is what the server runs.
    four_versions(tmp_path, current_complete=False)
    prune(tmp_path, "cccccccccccc", keep, shell)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*left, "cccccccccccc", "my-notes"])


def test_a_keep_count_that_is_not_a_number_deletes_nothing(tmp_path):
    four_versions(tmp_path)
    result = prune(tmp_path, "cccccccccccc", "one")
    assert len(list(tmp_path.iterdir())) == 6
    assert "KEEP_PREVIOUS_VERSIONS=one is not a whole number" in result.stderr


def test_the_job_is_told_how_many_versions_to_keep():
    for keep in (0, 3):
        model = {**HF_MODEL, "volume": {**HF_MODEL["volume"], "keepPreviousVersions": keep}}
        assert env_of(container(render_values({"model": model}), "Job", "download"))["KEEP_PREVIOUS_VERSIONS"] == str(keep)


@pytest.mark.parametrize("keep", [0, 1, 2])
def test_job_entry_point_makes_room_downloads_then_prunes_and_never_holds_more_copies_than_counted(tmp_path, keep):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name in ("job.sh", "prune_versions.sh"):
        (scripts / name).write_text((SCRIPTS_DIR / name).read_text())
    # A stand-in for the real download (tested against real servers in tests/download) that
    # records which versions sit on the volume while it runs: the peak of a model change.
    (scripts / "download.sh").write_text(
        'ls "$VERSIONS_DIR" > "$VERSIONS_DIR/../during-download"\n'
        'printf "%s\\n" "$SOURCE_FINGERPRINT" > "$MODEL_DIR/.vllm-serving-complete"\n'
    )
    versions = tmp_path / "volume" / "model"
    for age, version in ((400, "aaaaaaaaaaaa"), (300, "bbbbbbbbbbbb"), (200, "dddddddddddd")):
        make_version(versions, version, complete=True, age=age)
    env = {**os.environ, "VERSIONS_DIR": str(versions), "MODEL_DIR": str(versions / "cccccccccccc"),
           "SOURCE_FINGERPRINT": "cccccccccccc", "VERSION_OWNER": "stack", "KEEP_PREVIOUS_VERSIONS": str(keep)}
    subprocess.run(["sh", str(scripts / "job.sh")], env=env, check=True, capture_output=True)
    during = (tmp_path / "volume" / "during-download").read_text().split()
    # The new copy beside the served one (d) and the kept older ones: what the size check counts.
    copies = parse_config({"model": {**HF_MODEL, "volume": {"keepPreviousVersions": keep}}}).model.volume.copies_during_change
    assert len(during) == copies
    assert during == sorted(["cccccccccccc", "dddddddddddd", "bbbbbbbbbbbb"][: copies])
    after = sorted(p.name for p in versions.iterdir())
    assert after == sorted(["cccccccccccc", "dddddddddddd", "bbbbbbbbbbbb"][: keep + 1])
