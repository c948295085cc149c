#!/usr/bin/env bash
# Fetch a standard corpus into data/<name>/input.txt and verify its SHA-256.
#
# usage: data/fetch.sh tinyshakespeare [--from FILE]
#
# Works from any directory: paths are relative to this script's directory. Downloads with curl
# (or wget) through a temporary file, or copies FILE with --from. A checksum mismatch deletes the
# file and fails. If the target already exists with the right checksum, says so and exits 0.
#
# The charrnn-fast binary does the same without curl or sha256sum, and also knows enwik8:
#   charrnn-fast data fetch tinyshakespeare [--from FILE]
#   charrnn-fast data fetch enwik8 [--from enwik8.zip]
# (see data/README.md). This script stays for machines without a built binary.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"

usage() {
    echo "usage: $(basename -- "$0") tinyshakespeare [--from FILE]" >&2
    exit 2
}

die() {
    echo "fetch.sh: error: $*" >&2
    exit 1
}

[[ $# -ge 1 ]] || usage
name="$1"
shift
from=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --from)
            [[ $# -ge 2 ]] || usage
            from="$2"
            shift 2
            ;;
        -h | --help) usage ;;
        *) echo "fetch.sh: unknown argument '$1'" >&2; usage ;;
    esac
done

case "$name" in
    tinyshakespeare)
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
        size=1115394
        ;;
    *) die "unknown corpus '$name' (known: tinyshakespeare; for enwik8 use 'charrnn-fast data fetch enwik8')" ;;
esac

command -v sha256sum >/dev/null 2>&1 || die "sha256sum is needed to verify the download"

checksum() { sha256sum -- "$1" | cut -d' ' -f1; }

dest_dir="$script_dir/$name"
dest="$dest_dir/input.txt"

if [[ -f "$dest" ]]; then
    if [[ "$(checksum "$dest")" == "$sha256" ]]; then
        echo "$dest already present, checksum OK"
        exit 0
    fi
    die "$dest exists but its sha256 is not $sha256; delete it and run again"
fi

mkdir -p -- "$dest_dir"
tmp="$(mktemp "$dest_dir/.input.txt.XXXXXX")"
trap 'rm -f -- "$tmp"' EXIT

if [[ -n "$from" ]]; then
    [[ -f "$from" ]] || die "cannot read '$from': no such file"
    echo "copying $from"
    cp -- "$from" "$tmp"
elif command -v curl >/dev/null 2>&1; then
    echo "downloading $url"
    curl --fail --location --silent --show-error --output "$tmp" -- "$url" \
        || die "download of $url failed"
elif command -v wget >/dev/null 2>&1; then
    echo "downloading $url"
    wget --quiet --output-document="$tmp" -- "$url" || die "download of $url failed"
else
    die "neither curl nor wget is installed; download $url yourself and pass --from FILE"
fi

got="$(checksum "$tmp")"
if [[ "$got" != "$sha256" ]]; then
    got_size="$(wc -c <"$tmp" | tr -d ' ')"
    rm -f -- "$tmp"
    die "checksum mismatch for $name: expected sha256 $sha256 ($size bytes), got $got ($got_size bytes); file deleted"
fi

chmod 0644 -- "$tmp" # mktemp creates it 0600
mv -f -- "$tmp" "$dest"
trap - EXIT
echo "$dest: OK ($size bytes, sha256 $sha256)"
