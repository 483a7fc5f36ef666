#!/bin/sh
# The one file-selection rule of every source: which repository paths the download fetches.
#
#   sh select_files.sh index  LISTING          -> the index whose weight_map decides (or nothing)
#   sh select_files.sh select LISTING [INDEX]  -> the selected paths, one a line, sorted
#
# LISTING holds the repository's paths, one a line (relative to the model directory);
# INDEX is that index file's JSON when `index` named one. FILES (comma-separated names
# or globs, the source's `files` setting) overrides the rule entirely; every entry must
# match a path. Without it: the weight set vLLM's DefaultModelLoader reads with load
# format `auto`, plus the small metadata files beside it, never original/**.
#
# One POSIX awk program, so that the same rule runs in every image: busybox awk in
# alpine/git and rclone/rclone, mawk in the vLLM image (hf_download.py calls it), any
# awk in tests. A listed path that could resolve outside the model directory (absolute,
# `..` or `.` parts, empty parts from `//`, a backslash, a control character) fails the
# whole selection: a hostile or corrupt listing is never partly downloaded.
#
# Exit status: 0, 2 for a FILES entry matching nothing or no weights, 3 for an unsafe path.
set -eu
mode=${1:?usage: select_files.sh index|select LISTING [INDEX]}
listing=${2:?usage: select_files.sh index|select LISTING [INDEX]}
index=${3:-/dev/null}
# The setting named in messages: model.<source>.files.
setting="model.${SOURCE:-huggingface}.files"
# Byte order, as Python's sorted() orders UTF-8 names.
LC_ALL=C
export LC_ALL

# shellcheck disable=SC2016 # the program is awk's, not the shell's
program='
function fail(status, message) { print "select: " message > "/dev/stderr"; failed = status; exit status }
function base(path) { sub(/.*\//, "", path); return path }
function top(path) { return index(path, "/") == 0 }
# A glob as Python fnmatch reads it (and huggingface_hub allow_patterns): * and ? also match /.
function glob_regex(glob,   out, i, c, j, class) {
    out = "^"
    for (i = 1; i <= length(glob); i++) {
        c = substr(glob, i, 1)
        if (c == "*") out = out ".*"
        else if (c == "?") out = out "."
        else if (c == "[" && (j = index(substr(glob, i + 1), "]")) > 1) {
            class = substr(glob, i + 1, j - 1)
            if (substr(class, 1, 1) == "!") class = "^" substr(class, 2)
            gsub(/\\/, "\\\\", class)
            out = out "[" class "]"
            i += j
        } else if (index("\\^$.|+(){}[]", c)) out = out "\\" c
        else out = out c
    }
    return out "$"
}
function matches(path, glob) { return path == glob || path ~ glob_regex(glob) }
function unsafe(path) {
    return path == "" || path ~ /^\// || path ~ /\/\// || path ~ /\/$/ || path ~ /\\/ \
        || path ~ /[[:cntrl:]]/ || ("/" path "/") ~ /\/\.\.?\//
}
function training_file(name) {
    return name == "training_args.bin" || name == "optimizer.bin" || name == "optimizer.pt" \
        || name == "scheduler.pt" || name == "scaler.pt"
}
function metadata(path,   name) {
    if (path ~ /^original\//) return 0
    name = base(path)
    return name ~ /\.(json|txt|py|model|tiktoken|jinja)$/ || name ~ /^(tokenizer|vocab|merges|chat_template)/
}
# Fills weight[] with the weight set vLLM auto reads; sets chosen_index to its index if listed.
function weight_set(   p, pattern, k, found) {
    chosen_index = ""
    for (p in listed) if (top(p) && p ~ /^consolidated.*\.safetensors$/) { weight[p] = 1; found = 1 }
    if (found) { if ("consolidated.safetensors.index.json" in listed) chosen_index = "consolidated.safetensors.index.json"; return }
    split("safetensors bin pt", kinds, " ")
    for (k = 1; k <= 3; k++) {
        for (p in listed) if (top(p) && p ~ ("\\." kinds[k] "$") && !training_file(p)) { weight[p] = 1; found = 1 }
        if (found) {
            if (kinds[k] == "safetensors" && ("model.safetensors.index.json" in listed)) chosen_index = "model.safetensors.index.json"
            return
        }
    }
    # vLLM also finds safetensors shards in a subdirectory named by the index.
    if ("model.safetensors.index.json" in listed) chosen_index = "model.safetensors.index.json"
}
# The file names the index maps tensors to: the string values of its "weight_map" object.
function read_index(text,   at, body, value) {
    at = index(text, "\"weight_map\"")
    if (!at) return
    body = substr(text, at + 12)
    body = substr(body, index(body, "{") + 1)
    body = substr(body, 1, index(body, "}") - 1)
    while (match(body, /:[ \t\r\n]*"[^"]*"/)) {
        value = substr(body, RSTART, RLENGTH)
        sub(/^:[ \t\r\n]*"/, "", value); sub(/"$/, "", value)
        in_index[value] = 1; index_names++
        body = substr(body, RSTART + RLENGTH)
    }
}
FNR == NR { if (unsafe($0)) fail(3, "unsafe path in the listing (it could resolve outside the model directory): " $0)
            listed[$0] = 1; next }
{ index_text = index_text $0 "\n" }
END {
    if (failed) exit failed
    n = split(files, wanted, ",")
    for (i = 1; i <= n; i++) {
        glob = wanted[i]; gsub(/^[ \t]+|[ \t]+$/, "", glob)
        if (glob == "") continue
        given = 1; hit = 0
        for (p in listed) if (matches(p, glob)) { out[p] = 1; hit = 1 }
        if (!hit) fail(2, "FILES entry " q glob q " matches no file of the repository (" setting ")")
    }
    if (given) { if (mode == "select") for (p in out) print p; exit 0 }
    weight_set()
    weights = 0; for (p in weight) weights++
    if (mode == "index") { if (chosen_index != "" && weights != 1) print chosen_index; exit 0 }
    read_index(index_text)
    if (chosen_index != "" && index_names) {
        # Shards the index lists (into a new array: no deletion while iterating), or else
        # every listed file it names, as vLLM filter_duplicate_safetensors_files does.
        weights = 0
        for (p in weight) if (p in in_index) { kept_weight[p] = 1; weights++ }
        if (!weights) for (p in in_index) if (p in listed) { kept_weight[p] = 1; weights++ }
        split("", weight)
        for (p in kept_weight) weight[p] = 1
    }
    if (!weights && chosen_index == "")
        fail(2, "no weights vLLM can load (*.safetensors, *.bin or *.pt at the top level of the repository); " \
             "name the files to download in " setting)
    for (p in weight) out[p] = 1
    if (chosen_index != "") out[chosen_index] = 1
    for (p in listed) if (metadata(p) && (p !~ /\.index\.json$/ || p == chosen_index)) out[p] = 1
    for (p in out) print p
}
'
[ -s "$listing" ] || { echo "select: the repository lists no files" >&2; exit 2; }
selected=$(mktemp)
trap 'rm -f "$selected"' EXIT
# An awk to test the program with (busybox awk, mawk, gawk); the image's own otherwise.
"${SELECT_AWK:-awk}" -v mode="$mode" -v files="${FILES:-}" -v setting="$setting" -v q="'" "$program" \
    "$listing" "$index" >"$selected"
sort "$selected"
