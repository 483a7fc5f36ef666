# Each model source downloads into its own directory, named by its 12-hex-digit fingerprint,
# under VERSIONS_DIR. Keep the current one ($SOURCE_FINGERPRINT) and the KEEP_PREVIOUS_VERSIONS
# (model.volume.keepPreviousVersions, default 1) most recently completed other versions, and
# delete the other versions, complete or not. job.sh runs this before the download too, to make
# room: while the current version is incomplete, the newest completed other version is the one
# the server still runs, so that one is kept even with KEEP_PREVIOUS_VERSIONS=0. Directories not
# named like a fingerprint are never touched; no `ls` output is parsed.
set -eu
marker=.vllm-serving-complete
keep=${KEEP_PREVIOUS_VERSIONS:-1}
case $keep in
  '' | *[!0-9]*)
    echo "prune: KEEP_PREVIOUS_VERSIONS=$keep is not a whole number; keeping every version" >&2
    exit 0
    ;;
esac
if [ "$(cat "$VERSIONS_DIR/$SOURCE_FINGERPRINT/$marker" 2>/dev/null)" != "$SOURCE_FINGERPRINT" ] && [ "$keep" -lt 1 ]; then
  keep=1
fi

is_version() {
  case $1 in
    [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) return 0 ;;
    *) return 1 ;;
  esac
}

# "current kept..." as one word list, to test membership with case.
kept=" $SOURCE_FINGERPRINT "

# The most recently completed version not kept yet (the marker's mtime is when it completed).
newest_other() {
  newest=""
  for dir in "$VERSIONS_DIR"/*/; do
    version=${dir%/}
    version=${version##*/}
    if ! is_version "$version" || [ ! -f "$dir$marker" ]; then
      continue
    fi
    case $kept in *" $version "*) continue ;; esac
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
  is_version "$version" || continue
  case $kept in *" $version "*) continue ;; esac
  echo "prune: removing superseded model version $version"
  rm -rf -- "${VERSIONS_DIR:?}/$version"
done
