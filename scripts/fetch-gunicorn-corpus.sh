#!/usr/bin/env bash
# Fetches Gunicorn 27.0.1's request corpus (tests/requests/{valid,invalid}: .http
# requests and their .py expectations) from its sdist on PyPI into
# .cache/gunicorn-27.0.1/, for tests/integration/corpus.rs. Idempotent: does nothing
# when the corpus is already there.
#
#   scripts/fetch-gunicorn-corpus.sh [python]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${1:-${PYTHON:-python3}}"
version="27.0.1"
dest="$repo/.cache/gunicorn-$version"

die() { echo "fetch-gunicorn-corpus: $*" >&2; exit 1; }

if [ -d "$dest/tests/requests/valid" ] && [ -d "$dest/tests/requests/invalid" ]; then
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --disable-pip-version-check --no-binary :all: \
    --no-deps --dest "$work" "gunicorn==$version" \
    || die "pip download gunicorn==$version failed"
sdist="$(ls "$work"/gunicorn-"$version".tar.gz 2>/dev/null)" \
    || die "no gunicorn-$version.tar.gz in the download"
mkdir -p "$dest"
tar -xzf "$sdist" -C "$work" "gunicorn-$version/tests/requests" \
    || die "the sdist has no tests/requests"
rm -rf "$dest/tests"
mkdir -p "$dest/tests"
mv "$work/gunicorn-$version/tests/requests" "$dest/tests/requests"
count="$(ls "$dest"/tests/requests/*/*.http | wc -l)"
echo "fetch-gunicorn-corpus: $count requests in $dest/tests/requests"
