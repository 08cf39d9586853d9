#!/usr/bin/env bash
# The wheels' row of "Worker memory" in benches/README.md: each wheel installed in a
# fresh venv of its own CPython (as a user would: `pip install` of the file), then
# benches/worker_rss.sh on that venv's `rustcorn`, ROUNDS times back to back.
#
#     benches/wheel_rss.sh WHEEL...        # ROUNDS (default 2) rounds each
#
# WORKER_RSS_COLD=1 passes on to worker_rss.sh (each round reads the module back from
# disk, as after a reboot; without it, every round sees the page cache as pip's writes
# left it).
#
# One wheel per CPython version (the cp3X in its name picks the interpreter:
# `python3.X` on PATH, else pyenv's newest 3.X, as scripts/build-wheels.sh finds it).
# The hello app needs no package, so the venv is the wheel's alone; each version's
# VmRSS is its own interpreter's, comparable across rounds and builds of that version,
# not with another version's or with bjoern's (which runs on the bench venv's Python).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "wheel_rss: $*" >&2; exit 1; }
[[ $# -ge 1 ]] || die "usage: wheel_rss.sh WHEEL..."
rounds="${ROUNDS:-2}"
# shellcheck source=scripts/find-python.sh
source "$repo/scripts/find-python.sh"

work="$(mktemp -d /tmp/wheel-rss.XXXXXX)"
trap 'rm -rf "$work"' EXIT
for wheel in "$@"; do
    [[ -f "$wheel" && "$wheel" == *.whl ]] || die "no wheel at $wheel"
    tag="$(basename "$wheel" | grep -o -- '-cp3[0-9]*-' | head -1 | tr -d -)" \
        || die "$wheel: no cp3X tag in its name"
    python="$(find_python "3.${tag#cp3}")" || die "$wheel: no CPython 3.${tag#cp3}"
    venv="$work/$tag"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$wheel" \
        || die "pip install $wheel failed"
    for round in $(seq "$rounds"); do
        line="$(RUSTCORN_BENCH_VENV="$venv" "$repo/benches/worker_rss.sh" rustcorn "$venv/bin/rustcorn")"
        echo "$tag round $round: ${line//"$venv/"/}"
    done
done
