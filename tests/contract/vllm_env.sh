#!/usr/bin/env bash
# Make the environment the vLLM contract test parses argv in (once): one Python environment with
# what vLLM's argument parser imports (a CPU build of torch), and beside it each supported
# release's `vllm` package, installed with --no-deps into a directory of its own
# (DIR/releases/<version>), which the test puts first on PYTHONPATH: one set of dependencies, the
# vllm wheels swapped. vLLM's own dependencies pull a multi-GB CUDA torch and GPU kernels the
# parser never imports. The releases are those with an engine profile (components/engine/).
# Each part is reused when already complete. Usage: tests/contract/vllm_env.sh [DIR]
# (VLLM_WHEEL_DIR=/path with vllm-<version>-*.whl files: install local copies of the wheels).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
venv="${1:-${VLLM_CONTRACT_VENV:-$root/.venv-vllm-contract}}"
python="${PYTHON:-python3}"
stamp="$venv/.installed-from"
wanted="$(sha256sum "$here/vllm-parser-requirements.txt" | cut -d' ' -f1)"
start=$(date +%s)
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
if ! { [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; }; then
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  # torch==2.13.0 is the CPU wheel these machines keep on disk (pip's find-links: PyPI's is the
  # multi-GB CUDA build); elsewhere set TORCH_INDEX=https://download.pytorch.org/whl/cpu, PyTorch's
  # CPU index, which CI's network (package registries only) does not reach.
  torch_index="${TORCH_INDEX-}"
  "${pip[@]}" ${torch_index:+--extra-index-url "$torch_index"} -r "$here/vllm-parser-requirements.txt"
  echo "$wanted" > "$stamp"
  echo "vLLM contract dependencies ready in $venv ($(( $(date +%s) - start )) s)" >&2
fi
for profile in "$root"/components/engine/vllm-*.json; do
  version="$(basename "$profile" .json)"
  version="${version#vllm-}"
  target="$venv/releases/$version"
  [ -f "$target/.complete" ] && continue
  began=$(date +%s)
  rm -rf "$target"
  wheel="vllm==$version"
  if [ -n "${VLLM_WHEEL_DIR:-}" ]; then
    wheel="$(ls "$VLLM_WHEEL_DIR"/vllm-"$version"-*.whl)"
  fi
  "${pip[@]}" --no-deps --no-compile --target "$target" "$wheel"
  touch "$target/.complete"
  echo "vLLM $version installed in $target ($(( $(date +%s) - began )) s)" >&2
done
