#!/usr/bin/env bash
# Make the environment the vLLM contract test parses argv in (once): vLLM 0.33.0 without its
# dependencies (they pull a multi-GB CUDA torch), plus what its argument parser imports, with a
# CPU build of torch. Reused when it is already complete. Usage: tests/contract/vllm_env.sh [DIR]
# (VLLM_WHEEL=/path/to/vllm-0.33.0-...whl to install a local copy of the wheel).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${VLLM_CONTRACT_VENV:-$here/../../.venv-vllm-contract}}"
python="${PYTHON:-python3}"
stamp="$venv/.installed-from"
wanted="$(sha256sum "$here/vllm-parser-requirements.txt" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi
start=$(date +%s)
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
# torch==2.13.0 is the CPU wheel these machines keep on disk (pip's find-links: PyPI's is the
# multi-GB CUDA build); elsewhere set TORCH_INDEX=https://download.pytorch.org/whl/cpu, PyTorch's
# CPU index, which CI's network (package registries only) does not reach.
torch_index="${TORCH_INDEX-}"
"${pip[@]}" ${torch_index:+--extra-index-url "$torch_index"} -r "$here/vllm-parser-requirements.txt"
# VLLM_WHEEL: a local copy of the 336 MB wheel, instead of PyPI's.
"${pip[@]}" --no-deps "${VLLM_WHEEL:-vllm==0.33.0}"
echo "$wanted" > "$stamp"
echo "vLLM contract environment ready in $venv ($(( $(date +%s) - start )) s)" >&2
