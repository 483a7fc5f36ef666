# The download Job's entry point: fill the model directory, then drop superseded versions.
set -eu
scripts="$(dirname "$0")"
mkdir -p "$MODEL_DIR"
sh "$scripts/download.sh"
sh "$scripts/prune_versions.sh"
