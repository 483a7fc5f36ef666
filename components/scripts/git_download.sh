#!/bin/sh
# Fill MODEL_DIR from a git repository whose weights are in Git LFS.
# Runs in alpine/git (busybox sh, git, git-lfs), started by download.sh.
#
# Environment: GIT_URL, GIT_REF (branch, tag or commit; empty: the remote's
# default branch), GIT_FILES (comma-separated names or globs; empty: the selection
# rule of select_files.sh, as for every source), GIT_TOKEN (optional), GIT_USERNAME
# (optional, for servers that want a real user name with the token),
# GIT_LFS_CONCURRENCY (default 8), DOWNLOAD_PROGRESS_SECONDS (whole seconds,
# default 30), MODEL_DIR.
#
# Only the LFS objects of the selected files are fetched, and the working tree ends
# holding exactly the selected files. Every line printed, git's own stderr included,
# has the token and any URL credentials replaced by ***.
#
# The .git directory stays in MODEL_DIR while the download runs, so that a
# restarted pod resumes (git objects and finished LFS objects are kept), and is
# removed at the end: the LFS objects are hard-linked into the working tree
# rather than copied, so the weights are never on disk twice.
set -eu

url=${GIT_URL:-}
ref=${GIT_REF:-}
concurrency=${GIT_LFS_CONCURRENCY:-8}
scripts=$(dirname "$0")
log=$(mktemp)
trap 'rm -f "$log" "$log.lfs" "$log.paths" "$log.selected"' EXIT

# Every line this script prints passes through here: the token (wherever a server
# echoes it) and credentials inside any URL become ***. awk reads the token from
# ENVIRON, which, unlike -v, takes it byte for byte.
# The HTTP Basic form of the credentials too (a server echoing its Authorization header).
# printf is the shell's builtin: the token reaches base64 through a pipe, never argv.
GIT_TOKEN_BASIC=""
if [ -n "${GIT_TOKEN:-}" ]; then
    GIT_TOKEN_BASIC=$(printf '%s:%s' "${GIT_USERNAME:-oauth2}" "$GIT_TOKEN" | base64 | tr -d '\n')
fi
export GIT_TOKEN_BASIC
redact() {
    awk '{
        for (i = 1; i <= 2; i++) {
            token = ENVIRON[i == 1 ? "GIT_TOKEN" : "GIT_TOKEN_BASIC"]
            if (token != "") while (at = index($0, token)) $0 = substr($0, 1, at - 1) "***" substr($0, at + length(token))
        }
        gsub(/:\/\/[^\/@ ]*@/, "://***@")
        print
    }'
}
say() { printf '%s\n' "$*" | redact; }
shown_ref=${ref:-"(default branch)"}

fail() {
    say "download failed: git $url ref $shown_ref: $1" >&2
    exit 1
}

# Runs git with stderr kept for diagnosis; on failure explains why in one line.
run_git() {
    if "$@" 2>"$log"; then
        redact <"$log" >&2
        return 0
    fi
    redact <"$log" >&2
    explain_git_failure
}

explain_git_failure() {
    if grep -qi -e 'Authentication failed' -e 'Authorization error' -e 'HTTP 401' -e 'HTTP 403' \
        -e 'could not read Username' -e 'could not read Password' -e 'terminal prompts disabled' "$log"; then
        if [ -n "${GIT_TOKEN:-}" ]; then
            fail "authentication failed: the server refused the token from the Secret's \`token\` key"
        fi
        fail "authentication required: the repository needs a token (set model.git.existingSecret to a Secret with key \`token\`)"
    fi
    if grep -qi -e "couldn't find remote ref" -e 'not our ref' -e 'unadvertised object' "$log"; then
        fail "ref not found in the repository (check model.git.ref)"
    fi
    if grep -qi -e 'repository .* not found' -e 'HTTP 404' -e 'does not appear to be a git repository' "$log"; then
        fail "repository not found (check model.git.url)"
    fi
    if grep -qi -e 'Could not resolve' -e 'Failed to connect' -e 'Connection refused' -e 'timed out' "$log"; then
        fail "cannot reach the server: $(grep -i -m1 -e 'resolve' -e 'connect' -e 'timed out' "$log")"
    fi
    if grep -qi -e 'does not exist on the server' -e 'Object does not exist' "$log"; then
        fail "an LFS object is missing on the LFS server: $(grep -i -m1 'exist' "$log")"
    fi
    fail "$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)"
}

[ -n "$url" ] || fail "GIT_URL is empty"
# Only transports that cannot run commands: no ext::, no fd::, no option-like "-u...".
case $url in
    https://?* | http://?* | ssh://?* | git://?* | file:///*) ;;
    *) fail "GIT_URL must be an https://, http://, ssh://, git:// or file:/// URL" ;;
esac
# A ref as git defines one (git check-ref-format, checked under refs/ so that a
# one-level name is valid), never an option, or a commit hash.
if [ -n "$ref" ]; then
    case $ref in
        -*) fail "GIT_REF must be a branch, tag or commit, not an option" ;;
    esac
    printf '%s' "$ref" | grep -qE '^[0-9a-fA-F]{7,64}$' \
        || git check-ref-format "refs/x/${ref#refs/}" \
        || fail "GIT_REF is not a valid git ref name (see git check-ref-format)"
fi
case $concurrency in '' | *[!0-9]* | 0) fail "GIT_LFS_CONCURRENCY=$concurrency is not a positive integer" ;; esac
command -v git >/dev/null 2>&1 || fail "git is not installed in the download image"
git lfs version >/dev/null 2>&1 || fail "git-lfs is not installed in the download image"

# Settings go through GIT_CONFIG_* variables: none of them (the token helper
# least of all) is written to .git/config or shows in argv, and a user's own
# GIT_CONFIG_COUNT entries survive.
n=${GIT_CONFIG_COUNT:-0}
add_config() {
    export "GIT_CONFIG_KEY_$n=$1" "GIT_CONFIG_VALUE_$n=$2"
    n=$((n + 1))
    export GIT_CONFIG_COUNT=$n
}
add_config lfs.concurrenttransfers "$concurrency"
# Our own .git in a volume written by another uid is still ours to use.
add_config safe.directory '*'
if [ -n "${GIT_TOKEN:-}" ]; then
    # A credential helper scoped to the repository's origin answers the server's
    # 401 for git and git-lfs alike. It expands $GIT_TOKEN itself, so the token
    # never appears in configuration or argv, and it is never offered to other
    # hosts (such as the pre-signed storage URLs LFS servers redirect to).
    origin=$(printf '%s' "$url" | sed 's#^\([A-Za-z][A-Za-z0-9+.-]*://\)[^/@]*@#\1#; s#^\([A-Za-z][A-Za-z0-9+.-]*://[^/]*\).*#\1#')
    # shellcheck disable=SC2016 # $1 and $GIT_TOKEN are for the helper's shell to expand, not this one
    add_config "credential.$origin.helper" \
        '!f() { cat >/dev/null; if [ "$1" = get ]; then printf "username=%s\npassword=%s\n" "${GIT_USERNAME:-oauth2}" "$GIT_TOKEN"; fi; }; f'
fi
# No prompt can be answered in a Job: fail instead of hanging.
export GIT_TERMINAL_PROMPT=0 GCM_INTERACTIVE=never
# Pointers are checked out first; `git lfs fetch` then downloads in parallel,
# which the smudge filter (one file at a time) would not.
export GIT_LFS_SKIP_SMUDGE=1

cd "$MODEL_DIR"
if [ -d .git ] && git rev-parse --git-dir >/dev/null 2>&1; then
    echo "git: resuming the download in $MODEL_DIR"
else
    # Not a usable repository (absent, or cut short while being created): start afresh.
    [ ! -e .git ] || rm -rf .git
    git init -q .
fi
git config -- remote.origin.url "$url"

say "git: fetching $url $shown_ref"
if git fetch -q --depth 1 --no-tags -- origin "${ref:-HEAD}" 2>"$log"; then
    commit=$(git rev-parse 'FETCH_HEAD^{commit}')
elif printf '%s' "$ref" | grep -qE '^[0-9a-fA-F]{7,64}$' \
    && grep -qi -e 'unadvertised object' -e 'not our ref' -e "couldn't find remote ref" "$log"; then
    # Servers speaking protocol v0 refuse unadvertised commits, and short hashes
    # are no refs: a full fetch of branches and tags (git objects only; the LFS
    # pointers are tiny) reaches any commit on them.
    echo "git: the server does not serve $ref directly; fetching all branches and tags to find it"
    deepen=""
    [ ! -f .git/shallow ] || deepen=--unshallow
    run_git git fetch -q ${deepen:+"$deepen"} --no-tags -- origin '+refs/heads/*:refs/remotes/origin/*' '+refs/tags/*:refs/tags/*'
    commit=$(git rev-parse -q --verify --end-of-options "$ref^{commit}") || fail "commit not found in any branch or tag of the repository"
else
    redact <"$log" >&2
    explain_git_failure
fi
run_git git checkout -q -f --detach "$commit" --

# The selection rule every source shares, over the commit's paths (git quotes unusual
# names, which the rule then refuses as unsafe). The index whose weight_map decides is a
# plain file of the checkout, or an LFS object fetched first.
git -c core.quotePath=true ls-files >"$log.paths" || fail "cannot list the repository's files"
select_files() {
    FILES=${GIT_FILES:-} SOURCE=git sh "$scripts/select_files.sh" "$@" 2>"$log" || fail "$(sed 's/^select: //' "$log")"
}
index=$(select_files index "$log.paths")
if [ -n "$index" ] && head -c 100 -- "$index" | grep -q '^version https://git-lfs'; then
    run_git git lfs pull --include="$index" --exclude= origin
fi
select_files select "$log.paths" "${index:-/dev/null}" >"$log.selected"
# git-lfs reads --include as comma-separated gitignore patterns: a selected name that
# would read as more than itself is refused rather than fetched wrongly.
if grep -q '[],*?[\!]' "$log.selected"; then
    fail "a selected file name holds one of , * ? [ ] \\ ! which git-lfs --include cannot name exactly: $(grep -m1 '[],*?[\!]' "$log.selected")"
fi
# Anchored at the top ("/name"), so that config.json never also means sub/config.json.
include=$(sed 's#^#/#' "$log.selected" | paste -s -d, -)
say "git: checked out $commit; $(wc -l <"$log.selected" | tr -d ' ') files selected; fetching their LFS objects with $concurrency parallel transfers"

# git-lfs shows no progress when its output is not a terminal, and a Job's log is
# all a user sees of a download that may take an hour: the fetch runs in the
# background while this loop reports, and nothing outlives it.
every=${DOWNLOAD_PROGRESS_SECONDS:-30}
case $every in '' | *[!0-9]* | 0) every=30 ;; esac
git lfs fetch --include="$include" --exclude= origin "$commit" 2>"$log" &
fetch_pid=$!
ticks=0
while kill -0 "$fetch_pid" 2>/dev/null; do
    sleep 0.2
    ticks=$((ticks + 1))
    if [ $((ticks % (every * 5))) -eq 0 ]; then
        kib=$(du -sk .git/lfs 2>/dev/null | cut -f1)
        say "git: progress $((${kib:-0} / 1024)) MiB of LFS objects on disk"
    fi
done
if wait "$fetch_pid"; then
    redact <"$log" >&2
else
    redact <"$log" >&2
    explain_git_failure
fi

selected() { grep -qxF -e "$1" -- "$log.selected"; }
# Replace every selected pointer file by its object. A hard link costs no space and the
# object store keeps its copy until .git goes, so an interruption here loses nothing.
git lfs ls-files --long "$commit" >"$log.lfs" 2>"$log" || fail "cannot list LFS files: $(cat "$log")"
count=0
while read -r oid _ path; do
    [ -n "$oid" ] || continue
    selected "$path" || continue
    rest=${oid#??}
    object=".git/lfs/objects/$(printf '%.2s' "$oid")/$(printf '%.2s' "$rest")/$oid"
    [ -f "$object" ] || fail "LFS object $oid of $path was not downloaded"
    rm -f -- "$path"
    ln -- "$object" "$path" 2>/dev/null || mv -f -- "$object" "$path"
    count=$((count + 1))
done <"$log.lfs"
# The directory ends holding the selection only: no pointer file of an unselected
# weight that a loader's glob could pick up.
while IFS= read -r path; do
    selected "$path" || rm -f -- "$path"
done <"$log.paths"
while IFS= read -r path; do
    [ -f "$path" ] || fail "selected file $path is missing from the checkout"
done <"$log.selected"
rm -rf .git
find . -depth -mindepth 1 -type d -exec rmdir {} \; 2>/dev/null || true
say "git: $count LFS files materialized at $commit; .git removed"
