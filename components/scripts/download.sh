#!/bin/sh
# Entry point of the model download Job: `sh /scripts/download.sh`.
#
# The completion marker is handled here, once for every source, so that each
# source program only has to fill MODEL_DIR. The scripts arrive through a
# ConfigMap without the executable bit, hence every program is started through
# its interpreter.
set -eu

: "${SOURCE:?SOURCE must be huggingface, git or s3}"
: "${MODEL_DIR:?MODEL_DIR must name the directory to fill}"
: "${SOURCE_FINGERPRINT:?SOURCE_FINGERPRINT must identify the source spec}"

scripts=$(dirname "$0")
marker="$MODEL_DIR/.vllm-serving-complete"
# Written before a download starts, so that a later run of another source can
# tell that the half-filled directory is ours and not what it should resume.
partial="$MODEL_DIR/.vllm-serving-partial"

# A marker is trusted only when it names this exact source spec; the check
# happens before any network access so that restarts of a finished Job are free.
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$SOURCE_FINGERPRINT" ]; then
    echo "download: model already complete in $MODEL_DIR (source $SOURCE, fingerprint $SOURCE_FINGERPRINT); nothing to do"
    exit 0
fi

previous=""
if [ -f "$marker" ]; then
    previous=$(cat "$marker")
elif [ -f "$partial" ]; then
    previous=$(cat "$partial")
fi
if [ -n "$previous" ] && [ "$previous" != "$SOURCE_FINGERPRINT" ]; then
    # Files of another model would be picked up by vLLM's weight globs (or
    # collide with this model's), so a directory we filled for another source
    # spec is emptied. Directories without our markers are never wiped.
    echo "download: $MODEL_DIR holds a download of another source spec (fingerprint $previous); removing it"
    find "$MODEL_DIR" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
fi

rm -f "$marker"
printf '%s\n' "$SOURCE_FINGERPRINT" >"$partial"
# The stack the version belongs to (VERSION_OWNER), for prune_versions.sh, which removes only its
# own stack's versions: written when the version starts, so that a download abandoned half-way
# (a failed or superseded change) is this stack's to remove too, before the next one fills the disk.
printf '%s\n' "${VERSION_OWNER:-}" >"$MODEL_DIR/.vllm-serving-owner"

case "$SOURCE" in
    huggingface) python3 "$scripts/hf_download.py" ;;
    git) sh "$scripts/git_download.sh" ;;
    s3) sh "$scripts/s3_download.sh" ;;
    *)
        echo "download failed: source '$SOURCE' is unknown (expected huggingface, git or s3)" >&2
        exit 2
        ;;
esac

# Temp file plus rename: a crash can never leave a truncated marker that a
# later run would mistake for something.
printf '%s\n' "$SOURCE_FINGERPRINT" >"$marker.tmp"
mv -f "$marker.tmp" "$marker"
rm -f "$partial"
echo "download: model complete in $MODEL_DIR (source $SOURCE, fingerprint $SOURCE_FINGERPRINT)"
