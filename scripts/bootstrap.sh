# shellcheck shell=bash
# Sourced by ./vllm-serving, ./run-tests and ./lint. The caller sets LOCKS to the lock files its
# command needs (requirements.txt for rendering, requirements-dev.txt for tests and lint; see
# scripts/lock.sh). Each lock is installed into .venv once, hash-checked, and again only when that
# file changes; each step says so on stderr. Then this project is put on .venv's import path (a
# .pth file, as an editable install does), so `.venv/bin/python -m vllm_serving` and the Pulumi
# program import the working tree without a build step.
#
# The installer is uv, itself installed by pip from the hashed requirements-uv.txt, once per
# machine into a cache directory shared by every clone: pip needs ~35 s on a 2-core machine for the
# 31 packages of requirements.txt, uv ~3 s from a warm cache.
set -eu
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# VENV may name another environment, such as the policy pack's policy/.venv.
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
LOCKS="${LOCKS:-requirements.txt}"

step() { echo "vllm-serving setup: $*" >&2; }
fail() {
  tail -n 40 "$1" >&2
  echo "vllm-serving setup: $2 failed; the whole log is in $1" >&2
  exit 1
}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "vllm-serving needs Python 3.11 or newer as \`$PYTHON\` (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

uv_version="$(sed -n 's/^uv==\([^ ]*\).*/\1/p' "$ROOT/requirements-uv.txt")"
uv_home="${VLLM_SERVING_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/vllm-serving}/uv-$uv_version"
UV="$uv_home/bin/uv"
if [ ! -x "$UV" ]; then
  step "installing uv $uv_version from requirements-uv.txt into $uv_home (once per machine) ..."
  mkdir -p "$(dirname "$uv_home")"
  partial="$(mktemp -d "$uv_home.partial.XXXXXX")"
  if ! "$PYTHON" -m pip install --disable-pip-version-check --no-input --require-hashes --no-deps \
       --only-binary :all: --target "$partial" -r "$ROOT/requirements-uv.txt" >"$partial.log" 2>&1; then
    fail "$partial.log" "installing uv (with \`$PYTHON -m pip\`)"
  fi
  # Another clone may have finished first; either copy is the same hashed wheel.
  mv -T "$partial" "$uv_home" 2>/dev/null || rm -rf "$partial"
  rm -f "$partial.log"
fi

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV (once)"
  # Without ensurepip, which takes ~20 s on a busy 2-core machine; requirements.txt locks pip,
  # which Pulumi's pip toolchain needs in the venv (it lists the packages with it to find plugins).
  "$PYTHON" -m venv --without-pip "$VENV"
fi
# uv writes no .pyc files; Python writes each on its first import, unless PYTHONDONTWRITEBYTECODE
# is set (CI images and containers often set it): then every process compiled pulumi_kubernetes
# again, 2.4 s to import it instead of 0.8 on 2 cores, in every render and every test that starts
# one. There the install compiles them once (about 4 s more for requirements.txt).
compile_bytecode=""
[ -z "${PYTHONDONTWRITEBYTECODE:-}" ] || compile_bytecode=--compile-bytecode
mkdir -p "$VENV/.locks-installed"
log="$VENV/install.log"
for lock in $LOCKS; do
  stamp="$VENV/.locks-installed/$lock"
  wanted="$(sha256sum "$ROOT/$lock" | cut -d' ' -f1)"
  [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] && continue
  count="$(grep -c '^[A-Za-z0-9]' "$ROOT/$lock")"
  step "installing $lock: $count pinned, hash-checked packages (again only when it changes) ..."
  started=$SECONDS
  # The lock holds every transitive dependency, so nothing is resolved (--no-deps); the locks
  # agree on every version, so installing one over another changes none.
  if ! "$UV" pip install --python "$VENV/bin/python" --require-hashes --no-deps --only-binary :all: \
       ${compile_bytecode:+"$compile_bytecode"} -r "$ROOT/$lock" >"$log" 2>&1; then
    fail "$log" "installing $lock"
  fi
  echo "$wanted" > "$stamp"
  step "installed $lock in $((SECONDS - started)) s"
done
site_packages="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [ "$(cat "$site_packages/vllm_serving_project.pth" 2>/dev/null)" != "$ROOT" ]; then
  step "putting $ROOT on $VENV's import path"
  echo "$ROOT" > "$site_packages/vllm_serving_project.pth"
fi
