#!/bin/sh
# Fill MODEL_DIR with the selected objects under an S3 prefix: the selection rule of
# select_files.sh (as for every source) over the prefix's listing, or S3_FILES.
# Runs in rclone/rclone (busybox sh, rclone), started by download.sh.
#
# Environment: S3_URL (s3://bucket/prefix), AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY (Secret keys accessKeyID / secretAccessKey),
# S3_ENDPOINT_URL (optional, Secret key endpoint), AWS_REGION (optional, Secret
# key region), S3_FILES (comma-separated names or globs; empty: the rule),
# S3_CONCURRENCY (default 16), DOWNLOAD_PROGRESS_SECONDS (default
# 30), MODEL_DIR.
#
# rclone is configured only through RCLONE_* variables: no config file holds the
# keys and they never appear in argv. `rclone copy` skips objects already on disk
# with the same size and modification time, so a restarted pod resumes.
set -eu

url=${S3_URL:-}
concurrency=${S3_CONCURRENCY:-16}
log=$(mktemp)
scripts=$(dirname "$0")
trap 'rm -f "$log" "$log.list" "$log.paths" "$log.selected" "$log.rc"' EXIT

fail() {
    echo "download failed: s3 $url: $1" >&2
    exit 1
}

explain_rclone_failure() {
    # rclone reports a missing bucket as "directory not found"; a missing prefix
    # in an existing bucket is no error at all (S3 has no directories).
    if grep -qi -e 'NoSuchBucket' -e 'bucket does not exist' -e 'directory not found' "$log"; then
        fail "no such bucket '$bucket'"
    fi
    if grep -qi -e 'InvalidAccessKeyId' -e 'SignatureDoesNotMatch' -e 'AccessDenied' -e 'status code: 403' \
        -e 'Forbidden' -e 'NoCredentialProviders' -e 'InvalidToken' -e 'ExpiredToken' "$log"; then
        fail "access denied: check the Secret's accessKeyID and secretAccessKey (and region)"
    fi
    if grep -qi -e 'connection refused' -e 'no such host' -e 'i/o timeout' -e 'dial tcp' "$log"; then
        fail "cannot reach the endpoint ${S3_ENDPOINT_URL:-(AWS)}: $(grep -i -m1 -e 'dial' -e 'host' "$log")"
    fi
    fail "$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)"
}

case $url in
    s3://?*) ;;
    *) fail "S3_URL must look like s3://bucket/prefix" ;;
esac
case $concurrency in '' | *[!0-9]* | 0) fail "S3_CONCURRENCY=$concurrency is not a positive integer" ;; esac
command -v rclone >/dev/null 2>&1 || fail "rclone is not installed in the download image"
path=${url#s3://}
bucket=${path%%/*}

# An in-memory configuration: no file is read or written.
export RCLONE_CONFIG=""
# rclone's DEBUG level prints the keys it read from the environment: the level is
# pinned (the flag beats a user's RCLONE_VERBOSE or RCLONE_LOG_LEVEL).
unset RCLONE_VERBOSE RCLONE_LOG_LEVEL
log_level="--log-level=INFO"
export RCLONE_CONFIG_SRC_TYPE=s3
if [ -n "${S3_ENDPOINT_URL:-}" ]; then
    # S3-compatible stores (MinIO, Ceph, ...) rarely resolve bucket host names.
    export RCLONE_CONFIG_SRC_PROVIDER=Other RCLONE_CONFIG_SRC_ENDPOINT="$S3_ENDPOINT_URL"
    export RCLONE_CONFIG_SRC_FORCE_PATH_STYLE=true
else
    export RCLONE_CONFIG_SRC_PROVIDER=AWS
fi
if [ -n "${AWS_REGION:-}" ]; then
    export RCLONE_CONFIG_SRC_REGION="$AWS_REGION"
fi
if [ -n "${AWS_ACCESS_KEY_ID:-}" ]; then
    export RCLONE_CONFIG_SRC_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"
    export RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-}"
else
    # No keys in the Secret: the AWS SDK chain (web identity, instance role).
    export RCLONE_CONFIG_SRC_ENV_AUTH=true
fi
# Keys are listed as they are (rclone would show a ".." part as "．．"): the selection rule
# then refuses what could resolve outside MODEL_DIR instead of rclone renaming it.
export RCLONE_CONFIG_SRC_ENCODING=None
# A read-only download must not try to create the bucket.
export RCLONE_CONFIG_SRC_NO_CHECK_BUCKET=true

# The listing (size and path of every object under the prefix) gives a clear error for a
# missing bucket or an empty prefix, the input of the selection rule, and the sizes the
# copy is checked against. A key with `..`, `//` or a leading `/` is refused by the rule:
# it would be skipped by rclone or land outside MODEL_DIR, and the download would not be
# what the bucket holds.
if ! rclone lsf "$log_level" -R --files-only --fast-list --format sp --separator / "src:$path" \
    >"$log.list" 2>"$log"; then
    cat "$log" >&2
    explain_rclone_failure
fi
# rclone reports what it cannot list as a key (".." parts, empty parts) in its log and
# drops it from the listing: that is a bucket this download cannot reproduce.
if grep -qi -e 'invalid' -e "can't" -e 'ERROR' "$log"; then
    fail "the listing holds keys that cannot be downloaded as files: $(grep -i -m1 -e 'invalid' -e "can't" -e 'ERROR' "$log")"
fi
sed 's#^[0-9]*/##' "$log.list" >"$log.paths"
# rclone lists a key part "." or ".." as fullwidth dots (U+FF0E) whatever the encoding: such a
# key is refused as the rule refuses "..", since it names no file the bucket could be copied to.
if grep -qE '(^|/)(．|．．)(/|$)' "$log.paths"; then
    fail "unsafe path in the listing (a key with a . or .. part): $(grep -m1 -E '(^|/)(．|．．)(/|$)' "$log.paths")"
fi
[ -s "$log.paths" ] || fail "no objects under this prefix"
select_files() {
    FILES=${S3_FILES:-} SOURCE=s3 sh "$scripts/select_files.sh" "$@" 2>"$log" || fail "$(sed 's/^select: //' "$log")"
}
index=$(select_files index "$log.paths")
if [ -n "$index" ]; then
    rclone copyto "$log_level" "src:$path/$index" "$MODEL_DIR/$index" 2>"$log" || explain_rclone_failure
fi
select_files select "$log.paths" "${index:+$MODEL_DIR/$index}" >"$log.selected"
count=$(wc -l <"$log.selected" | tr -d ' ')
bytes=$(awk -F/ 'NR == FNR { want[$0] = 1; next } { size = $1; sub(/^[0-9]*\//, ""); if ($0 in want) total += size }
    END { printf "%.0f", total }' "$log.selected" "$log.list")
echo "s3: $url: $count of $(wc -l <"$log.paths" | tr -d ' ') objects selected, $bytes bytes; copying with $concurrency parallel transfers"

# rclone's log (progress every DOWNLOAD_PROGRESS_SECONDS) goes to the Job log as
# it comes and to $log for the diagnosis; its exit status is carried around tee.
{
    rc=0
    rclone copy "$log_level" "src:$path" "$MODEL_DIR" --files-from-raw "$log.selected" --no-traverse \
        --transfers "$concurrency" --checkers "$concurrency" \
        --stats "${DOWNLOAD_PROGRESS_SECONDS:-30}s" --stats-one-line --stats-log-level NOTICE \
        2>&1 || rc=$?
    echo "$rc" >"$log.rc"
} | tee "$log" >&2
rc=$(cat "$log.rc")
[ "$rc" = 0 ] || explain_rclone_failure
# Every selected object is on disk with its listed size, or the download is not complete.
while IFS= read -r line; do
    size=${line%%/*}
    name=${line#*/}
    grep -qxF -e "$name" -- "$log.selected" || continue
    [ -f "$MODEL_DIR/$name" ] || fail "object $name was not copied"
    [ "$(stat -c %s -- "$MODEL_DIR/$name")" = "$size" ] || fail "object $name was copied with the wrong size"
done <"$log.list"
echo "s3: copied $count objects of $url to $MODEL_DIR"
