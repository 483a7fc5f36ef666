"""The lock files agree with pyproject.toml, hash every package, and agree with each other.

Every install path installs from the locks (scripts/bootstrap.sh, Pulumi.yaml's pip toolchain,
.ci/run, the workflows), so a pin changed in pyproject.toml without `scripts/lock.sh` would
silently not take effect: these tests fail instead.
"""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from vllm_serving.stack_file import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
# Which lock serves which part of pyproject.toml; each also holds everything the ones before it do.
LOCK_OF_EXTRA = {
    None: "requirements.txt",
    "verify": "requirements-verify.txt",
    "validate": "requirements-validate.txt",
    "lint": "requirements-dev.txt",
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(name: str, source: str = "vllm-serving (pyproject.toml)") -> dict[str, dict]:
    """{package: {"version", "hashes", "direct"}}; direct means `source` asked for it."""
    packages: dict[str, dict] = {}
    current = None
    for line in (PROJECT_ROOT / name).read_text().splitlines():
        if match := PIN.match(line):
            current = packages[normalize(match[1])] = {"version": match[2], "hashes": 0, "direct": False}
        elif current is not None and line.strip().startswith("--hash=sha256:"):
            current["hashes"] += 1
        elif current is not None and line.lstrip("# ").startswith(("via " + source, source)):
            current["direct"] = True
    return packages


def requirements(extra: str | None) -> dict[str, str]:
    """The pins of the project's dependencies or of one extra, with the extras it includes."""
    project = PYPROJECT["project"]
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    pins: dict[str, str] = {} if extra is None else requirements(None)
    for requirement in listed:
        if requirement.startswith("vllm-serving["):
            for included in requirement[len("vllm-serving["):-1].split(","):
                pins |= requirements(included)
            continue
        match = PIN.match(requirement)
        assert match, f"{requirement!r} in pyproject.toml is not pinned with =="
        pins[normalize(match[1])] = match[2]
    return pins


@pytest.mark.parametrize(("extra", "lock"), LOCK_OF_EXTRA.items())
def test_each_lock_holds_exactly_the_pins_of_pyproject(extra, lock):
    locked = read_lock(lock)
    direct = {name: package["version"] for name, package in locked.items() if package["direct"]}
    assert direct == requirements(extra), f"{lock} is stale: run scripts/lock.sh"


def test_the_dev_lock_covers_every_extra():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    covered = set(requirements("lint"))
    for extra in extras:
        assert set(requirements(extra)) <= covered, f"extra {extra} is not in requirements-dev.txt"


def test_the_policy_lock_holds_exactly_the_pins_of_the_policy_pack():
    # policy/.venv is the pack's own environment (PulumiPolicy.yaml); the workflows fill it from here.
    pins = {}
    for line in (PROJECT_ROOT / "policy" / "requirements.txt").read_text().splitlines():
        if match := PIN.match(line):
            pins[normalize(match[1])] = match[2]
    locked = read_lock("requirements-policy.txt", source="-r policy/requirements.txt")
    assert {name: package["version"] for name, package in locked.items() if package["direct"]} == pins
    assert pins["pulumi"] == requirements(None)["pulumi"]


@pytest.mark.parametrize("lock", [*LOCK_OF_EXTRA.values(), "requirements-policy.txt", "requirements-uv.txt"])
def test_every_locked_package_is_pinned_and_hashed(lock):
    locked = read_lock(lock)
    assert locked
    assert [name for name, package in locked.items() if package["hashes"] == 0] == []
    # Nothing in the file that pip would install unhashed, such as `-e .` or a bare name.
    text = (PROJECT_ROOT / lock).read_text()
    stray = [line for line in text.splitlines() if line and not line[0].isspace() and not line.startswith("#")]
    assert [line for line in stray if not PIN.match(line)] == []


@pytest.mark.parametrize(
    "lock", ["requirements.txt", "requirements-verify.txt", "requirements-validate.txt", "requirements-policy.txt"],
)
def test_the_smaller_locks_agree_with_the_dev_lock_on_every_version(lock):
    dev = read_lock("requirements-dev.txt")
    mismatched = {
        name: (package["version"], dev.get(name, {}).get("version"))
        for name, package in read_lock(lock).items()
        if dev.get(name, {}).get("version") != package["version"]
    }
    assert mismatched == {}


def test_rendering_locks_no_test_or_lint_tool():
    render = set(read_lock("requirements.txt"))
    for tool in ("pytest", "moto", "hypothesis", "boto3", "openai", "kubernetes-validate", "ruff", "mypy"):
        assert tool not in render


def test_pip_is_locked_for_the_venv_bootstrap_creates_without_it():
    # scripts/bootstrap.sh runs `python -m venv --without-pip`; Pulumi's pip toolchain needs pip.
    assert "pip" in read_lock("requirements.txt")


def test_the_pulumi_toolchain_reads_the_render_lock():
    # Pulumi's pip toolchain runs `pip install -r requirements.txt` in `virtualenv`; pip enters
    # hash-checking mode because every line there carries a hash.
    project = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["options"] == {"toolchain": "pip", "virtualenv": ".venv"}
    assert read_lock("requirements.txt")["pulumi"]["direct"]


def _one_package_lock(name: str) -> str:
    """The lines of requirements.txt that pin `name`, hashes included: a lock of one package."""
    lines, inside = [], False
    for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        if pin := PIN.match(line):
            inside = normalize(pin[1]) == name
        if inside and not line.lstrip().startswith("#"):
            lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("dont_write_bytecode", "compiled"), [("1", True), ("", False)])
def test_bootstrap_compiles_the_bytecode_python_would_not_write_itself(tmp_path, dont_write_bytecode, compiled):
    """With PYTHONDONTWRITEBYTECODE set, Python never writes a .pyc, so every process would
    compile pulumi_kubernetes again (2.4 s an import on 2 cores, not 0.8): bootstrap.sh has uv
    compile at install time then, and only then. Run on a copy of the script, with one package
    of requirements.txt (already in uv's cache, as the suite's own .venv installed it)."""
    import os
    import shutil
    import subprocess

    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "scripts" / "bootstrap.sh", root / "scripts")
    shutil.copy(PROJECT_ROOT / "requirements-uv.txt", root)
    (root / "one.txt").write_text(_one_package_lock("semver"))
    venv = tmp_path / "venv"
    env = {**os.environ, "VENV": str(venv), "LOCKS": "one.txt", "PYTHONDONTWRITEBYTECODE": dont_write_bytecode}
    done = subprocess.run(["bash", "-c", 'source "$0"', str(root / "scripts" / "bootstrap.sh")],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (venv / ".locks-installed" / "one.txt").is_file()
    assert bool(list(venv.glob("lib/python3*/site-packages/semver/__pycache__/*.pyc"))) == compiled
