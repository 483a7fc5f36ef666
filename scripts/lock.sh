#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml after changing a pin there. Every install path
# (scripts/bootstrap.sh, `pulumi install` through Pulumi.yaml, .ci/run, the workflows) installs
# from these files with pip's hash checking, so what runs is exactly what was locked.
#
#   requirements-dev.txt       every extra (tests and lint): the one resolution the others follow
#   requirements.txt           rendering and `pulumi up`; the file Pulumi's pip toolchain reads
#   requirements-verify.txt    requirements.txt + `vllm-serving verify` (openai)
#   requirements-validate.txt  requirements.txt + `render --validate` (kubernetes-validate)
#   requirements-policy.txt    the policy pack's own venv (policy/.venv), from policy/requirements.txt
#   requirements-uv.txt        the installer itself: scripts/bootstrap.sh installs uv from it
#   templates/vllm-serving/requirements.txt      a team's project: what `pulumi up` needs
#   templates/vllm-serving/requirements-dev.txt  ... and its tests (render --validate, pytest)
#
# To move to another uv release, edit its pin in requirements-uv.txt and run this script.
#
# The smaller locks are resolved under the constraints of requirements-dev.txt, so a package has
# the same version in every file and installing one lock over another never changes a version.
# Resolution is universal (every platform's wheels are hashed) for Python >= 3.11.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="$(sed -n 's/^uv==\([^ ]*\).*/\1/p' "$ROOT/requirements-uv.txt")"

uv="$(command -v uv || true)"
if [ -z "$uv" ] || [ "$("$uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  tools="${TMPDIR:-/tmp}/vllm-serving-lock-uv-$UV_VERSION"
  [ -x "$tools/bin/uv" ] || { python3 -m venv "$tools" && "$tools/bin/python" -m pip install -q "uv==$UV_VERSION"; }
  uv="$tools/bin/uv"
fi

cd "$ROOT"
# pip is locked too: bootstrap.sh creates .venv without running ensurepip (~20 s on a busy 2-core
# machine) and installs this pip, which Pulumi's pip toolchain needs in the venv.
compile() {
  local source="$1" output="$2"
  shift 2
  echo "locking $output" >&2
  echo pip | "$uv" pip compile "$source" - --quiet --universal --python-version 3.11 --generate-hashes \
    --no-emit-package vllm-serving --custom-compile-command scripts/lock.sh --output-file "$output" "$@"
}
compile pyproject.toml requirements-dev.txt --extra lint
compile pyproject.toml requirements.txt --constraint requirements-dev.txt
compile pyproject.toml requirements-verify.txt --constraint requirements-dev.txt --extra verify
compile pyproject.toml requirements-validate.txt --constraint requirements-dev.txt --extra validate
compile policy/requirements.txt requirements-policy.txt --constraint requirements-dev.txt
# The template's locks: every transitive dependency of the release, hashed, at the versions of
# the locks above (scripts/release.py adds the pin of the release's own wheel to each). A team's
# project installs exactly what this repository's tests ran with.
template_lock() {
  local output="templates/vllm-serving/$1"
  shift
  compile pyproject.toml "$output" --constraint requirements-dev.txt "$@"
  # "-c requirements-dev.txt" in the `via` lines is this repository's lock, not the project's.
  sed -i '1,2c # The dependencies of the vllm-serving release, locked with hashes by vllm-serving'"'"'s scripts/lock.sh\n# ("-c requirements-dev.txt" below: that repository'"'"'s lock). Do not edit: upgrade the release.' "$output"
}
template_lock requirements.txt
template_lock requirements-dev.txt --extra project-tests
echo "locking requirements-uv.txt" >&2
echo "uv==$UV_VERSION" | "$uv" pip compile - --quiet --universal --python-version 3.11 --generate-hashes \
  --custom-compile-command scripts/lock.sh --output-file requirements-uv.txt
