# Each model source downloads into its own directory, named by its 12-hex-digit fingerprint,
# under VERSIONS_DIR. Once the current one ($SOURCE_FINGERPRINT) is complete, keep it and the
# most recently completed other version (the one the server may still be running until its
# pods move over) and delete the rest. Directories not named like a fingerprint are never touched.
set -eu
marker=.vllm-serving-complete
[ "$(cat "$VERSIONS_DIR/$SOURCE_FINGERPRINT/$marker" 2>/dev/null)" = "$SOURCE_FINGERPRINT" ] || {
  echo "prune: $SOURCE_FINGERPRINT is not complete; keeping every version" >&2
  exit 0
}
previous=""
# ls -t: newest completion first; the marker's mtime is when that version completed.
for marker_file in $(ls -t "$VERSIONS_DIR"/*/"$marker" 2>/dev/null); do
  version="$(basename "$(dirname "$marker_file")")"
  if [ "$version" != "$SOURCE_FINGERPRINT" ]; then
    previous="$version"
    break
  fi
done
for dir in "$VERSIONS_DIR"/*/; do
  version="$(basename "$dir")"
  case "$version" in
    "$SOURCE_FINGERPRINT"|"$previous") continue ;;
  esac
  if printf '%s' "$version" | grep -Eq '^[0-9a-f]{12}$'; then
    echo "prune: removing superseded model version $version"
    rm -rf "$dir"
  fi
done
