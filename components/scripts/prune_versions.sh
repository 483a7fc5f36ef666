# Each model source downloads into its own directory, named by its 12-hex-digit fingerprint,
# under VERSIONS_DIR. Keep the current one ($SOURCE_FINGERPRINT) and the KEEP_PREVIOUS_VERSIONS
# (model.volume.keepPreviousVersions, default 1) most recently completed other versions of this
# stack, and delete this stack's other versions, complete or not. job.sh runs this before the
# download too, to make room: while the current version is incomplete, the newest completed
# other version is the one the server still runs, so that one is kept even with
# KEEP_PREVIOUS_VERSIONS=0.
#
# A version is this stack's only when its owner file (written by download.sh when it starts a
# version) names VERSION_OWNER: stacks sharing a claim and a sub-path never prune each other, and
# folders without our markers are never touched. No `ls` is parsed: globs and `find -newer`
# keep sub-paths with spaces or newlines whole.
set -eu
marker=.vllm-serving-complete
owner_file=.vllm-serving-owner
owner=${VERSION_OWNER:-}
keep=${KEEP_PREVIOUS_VERSIONS:-1}
case $keep in
  '' | *[!0-9]*)
    echo "prune: KEEP_PREVIOUS_VERSIONS=$keep is not a whole number; keeping every version" >&2
    exit 0
    ;;
esac
[ -n "$owner" ] || {
  echo "prune: VERSION_OWNER is not set; keeping every version" >&2
  exit 0
}
if [ "$(cat "$VERSIONS_DIR/$SOURCE_FINGERPRINT/$marker" 2>/dev/null)" != "$SOURCE_FINGERPRINT" ] && [ "$keep" -lt 1 ]; then
  keep=1
fi

# Ours: a fingerprint-named folder, complete or not, whose owner file names this stack.
ours() {
  case $1 in
    [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
    *) return 1 ;;
  esac
  [ -f "$VERSIONS_DIR/$1/$owner_file" ] && [ "$(cat "$VERSIONS_DIR/$1/$owner_file")" = "$owner" ]
}

# The current version and those kept so far, as one word list to test membership with case.
kept=" $SOURCE_FINGERPRINT "

# The most recently completed version of ours not kept yet; the marker's mtime is when it completed.
newest_other() {
  newest=""
  for dir in "$VERSIONS_DIR"/*/; do
    version=${dir%/}
    version=${version##*/}
    case $kept in *" $version "*) continue ;; esac
    if ! ours "$version" || [ ! -f "$dir$marker" ]; then
      continue
    fi
    # find -newer, as POSIX has no test -nt.
    if [ -z "$newest" ] || [ -n "$(find "$dir$marker" -prune -newer "$VERSIONS_DIR/$newest/$marker")" ]; then
      newest=$version
    fi
  done
  printf '%s' "$newest"
}

while [ "$keep" -gt 0 ]; do
  version=$(newest_other)
  [ -n "$version" ] || break
  kept="$kept$version "
  keep=$((keep - 1))
done

for dir in "$VERSIONS_DIR"/*/; do
  version=${dir%/}
  version=${version##*/}
  case $kept in *" $version "*) continue ;; esac
  if ours "$version"; then
    echo "prune: removing superseded model version $version of $owner"
    rm -rf -- "${VERSIONS_DIR:?}/$version"
  fi
done
