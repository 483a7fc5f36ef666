# Sourced by ./vllm-serving and ./run-tests: make .venv hold this project and its pinned
# dependencies, reinstalling only when pyproject.toml changed since the last install.
set -eu
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.installed-from"
EXTRAS="${VLLM_SERVING_EXTRAS:-test}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "vllm-serving needs Python 3.11 or newer as \`$PYTHON\` (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
wanted="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1) [$EXTRAS]"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$wanted" ]; then
  echo "setting up $VENV (once; again only when pyproject.toml changes) ..." >&2
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  log="$VENV/install.log"
  if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip \
         && "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$ROOT[$EXTRAS]"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "installing the dependencies failed; the whole log is in $log" >&2
    exit 1
  fi
  echo "$wanted" > "$STAMP"
fi
