# Each model source downloads into its own directory, named by its 12-hex-digit fingerprint,
# under VERSIONS_DIR. Once the current one ($SOURCE_FINGERPRINT) is complete, keep it and the
# most recently completed other version of this stack (the one the server may still be running
# until its pods move over) and delete this stack's other versions.
#
# A version is this stack's only when its owner file (written by download.sh at completion)
# names VERSION_OWNER: stacks sharing a claim and a sub-path never prune each other, and
# folders without our markers are never touched. No `ls` is parsed: globs and `test -nt`
# keep sub-paths with spaces or newlines whole.
set -eu
marker=.vllm-serving-complete
owner_file=.vllm-serving-owner
owner=${VERSION_OWNER:-}
[ "$(cat "$VERSIONS_DIR/$SOURCE_FINGERPRINT/$marker" 2>/dev/null)" = "$SOURCE_FINGERPRINT" ] || {
  echo "prune: $SOURCE_FINGERPRINT is not complete; keeping every version" >&2
  exit 0
}
[ -n "$owner" ] || {
  echo "prune: VERSION_OWNER is not set; keeping every version" >&2
  exit 0
}

# Ours: a fingerprint-named folder, complete or not, whose owner file names this stack.
ours() {
  case $1 in
    [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
    *) return 1 ;;
  esac
  [ -f "$VERSIONS_DIR/$1/$owner_file" ] && [ "$(cat "$VERSIONS_DIR/$1/$owner_file")" = "$owner" ]
}

# The newest other completed version of ours; the marker's mtime is when it completed.
previous=""
for dir in "$VERSIONS_DIR"/*/; do
  version=${dir%/}
  version=${version##*/}
  if [ "$version" = "$SOURCE_FINGERPRINT" ] || ! ours "$version" || [ ! -f "$dir$marker" ]; then
    continue
  fi
  # find -newer, as POSIX has no test -nt.
  if [ -z "$previous" ] || [ -n "$(find "$dir$marker" -prune -newer "$VERSIONS_DIR/$previous/$marker")" ]; then
    previous=$version
  fi
done

for dir in "$VERSIONS_DIR"/*/; do
  version=${dir%/}
  version=${version##*/}
  case $version in
    "$SOURCE_FINGERPRINT" | "$previous") continue ;;
  esac
  if ours "$version"; then
    echo "prune: removing superseded model version $version of $owner"
    rm -rf -- "${VERSIONS_DIR:?}/$version"
  fi
done
