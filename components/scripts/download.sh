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

# The marker must never reach the disk before the weights do: a node that crashed
# before writeback would come back with the marker and truncated files, which every
# later run trusts. sync -f (syncfs) waits for all of the volume's pending writes and
# fails if the kernel met an I/O error writing any of them.
flush() {
    sync -f "$MODEL_DIR" || {
        echo "download failed: cannot flush $MODEL_DIR to the volume (sync -f failed): the bytes may not be on disk" >&2
        exit 1
    }
}
echo "download: flushing $MODEL_DIR to the volume"
flush
# Temp file plus rename: a crash can never leave a truncated marker that a
# later run would mistake for something.
printf '%s\n' "$SOURCE_FINGERPRINT" >"$marker.tmp"
mv -f "$marker.tmp" "$marker"
rm -f "$partial"
# And the marker itself before the Job reports success: lost in a crash after it, the
# completed Job would never write it again and the server's init container would wait for it.
flush
echo "download: model complete in $MODEL_DIR (source $SOURCE, fingerprint $SOURCE_FINGERPRINT)"
