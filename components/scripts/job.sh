# The download Job's entry point: make room, fill the model directory, then drop superseded versions.
set -eu
scripts="$(dirname "$0")"
mkdir -p "$MODEL_DIR"
# First what the prune after the download would delete anyway, but never the version being
# served: the volume then holds at most max(KEEP_PREVIOUS_VERSIONS, 1) + 1 copies at once, the
# number the config's size check counts (VolumeConfig.copies_during_change).
sh "$scripts/prune_versions.sh"
sh "$scripts/download.sh"
sh "$scripts/prune_versions.sh"
