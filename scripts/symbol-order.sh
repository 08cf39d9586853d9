#!/usr/bin/env bash
# Writes link/symbol-order.txt, the functions a worker runs, and link/worker-text.ld, the
# linker script build.rs passes to the link so that they lie side by side in their own
# output section, `.text.worker`, just before `.text` (the binary and the wheel's
# extension module alike; see scripts/symbol_order.py).
#
# Why: a worker forked from the master maps none of the binary's code; each page of
# code it runs is faulted in, and the kernel maps the page-cache pages around each
# fault as well (fault-around, 64 KiB). Left in the order the compiler emits them, the
# ~0.9 MB of functions a worker runs lie scattered over the 3.5 MB of .text, so a
# hello worker ended up with 2.1 MB of the binary in its RSS; side by side they make
# about 1 MB (benches/README.md, "Worker memory: the code a worker runs, side by side").
#
#     scripts/symbol-order.sh --build DIR
#     scripts/symbol-order.sh BIN WHEEL...
#     scripts/symbol-order.sh --check BIN_OR_EXTENSION
#
# BIN is a release build of the binary and each WHEEL a wheel for one CPython version
# (one per version the wheels are built for: pyo3 compiles other C-API paths for 3.12
# and 3.13, so their workers run functions 3.10's and 3.11's do not), all built WITHOUT
# the script and the wheels unstripped, since valgrind names no function of a
# `.text.worker` section and a stripped module names none at all. `--build DIR` makes
# them, into DIR, the way the release builds are made but for those two points:
#
#     RUSTCORN_SYMBOL_ORDER=off cargo build --release      # copied to DIR/rustcorn
#     RUSTCORN_SYMBOL_ORDER=off maturin build --release --zig --strip false \
#         --compatibility manylinux_2_28 --interpreter PYTHON --out DIR   # each version
#
# Each worker class (sync, gthread, asgi) of each artifact serves a mixed load under
# callgrind (`--demangle=no`, so the names are the symbols); a wheel's worker enters
# through Python and pyo3's module and inlines differently, so it runs functions the
# binary's does not. The list is the union: sync's functions (every artifact's) first,
# then what gthread and asgi add, each line saying which artifacts ran it (`binary`,
# `cp310`, ...). Run it after a change that renames or adds functions on the request
# path, rebuild, and commit both files. A function the build no longer has matches
# nothing in the script, so a stale list only loses locality; `--check
# BIN_OR_EXTENSION` says how much of the list a binary, or an unstripped extension
# module (`.so`), still has and fails below 80%.
#
# Environment: RUSTCORN_BENCH_VENV (default <repo>/.venv-bench) is the venv the binary
# serves from (its Python is the binary's); each wheel is installed in a fresh venv of
# its own CPython (`python3.X` on PATH, else pyenv's newest 3.X, as
# scripts/build-wheels.sh finds them) with uvloop from PyPI for the asgi worker.
# PYTHON_VERSIONS (default "3.10 3.11 3.12 3.13") and RUSTCORN_TOOLS_VENV (maturin and
# zig; default <repo>/.venv-tools) are `--build`'s, as scripts/build-wheels.sh's.
# valgrind, curl and wrk must be installed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
list="$repo/link/symbol-order.txt"
die() { echo "symbol-order: $*" >&2; exit 1; }

case "${1:-}" in
    --check)
        [[ $# -eq 2 && -f "$2" ]] || die "usage: symbol-order.sh --check BIN_OR_EXTENSION"
        exec python3 "$repo/scripts/symbol_order.py" check "$list" "$2"
        ;;
    --build)
        [[ $# -eq 2 ]] || die "usage: symbol-order.sh --build DIR"
        out="$(mkdir -p "$2" && cd "$2" && pwd)"
        tools="${RUSTCORN_TOOLS_VENV:-$repo/.venv-tools}"
        [[ -x "$tools/bin/maturin" ]] \
            || die "no maturin in $tools (scripts/build-wheels.sh makes that venv; or set RUSTCORN_TOOLS_VENV)"
        # shellcheck source=scripts/find-python.sh
        source "$repo/scripts/find-python.sh"
        cd "$repo"
        RUSTCORN_SYMBOL_ORDER=off cargo build --release || die "cargo build failed"
        cp target/release/rustcorn "$out/rustcorn"
        for version in ${PYTHON_VERSIONS:-3.10 3.11 3.12 3.13}; do
            python="$(find_python "$version")" || die "no CPython $version (python$version on PATH or pyenv)"
            start=$SECONDS
            RUSTCORN_SYMBOL_ORDER=off PATH="$tools/bin:$PATH" maturin build --release --zig \
                --strip false --compatibility manylinux_2_28 --interpreter "$python" \
                --out "$out" --quiet || die "maturin build for $python failed"
            echo "symbol-order: unordered wheel for $python in $((SECONDS - start)) s"
        done
        echo "symbol-order: now: scripts/symbol-order.sh $out/rustcorn $out/rustcorn-*.whl"
        exit 0
        ;;
esac
[[ $# -ge 2 ]] || die "usage: symbol-order.sh BIN WHEEL... (see the head of this script)"
[[ -x "$1" ]] || die "no binary at $1"
# Absolute: the servers run from benches/apps.
bin="$(realpath "$1")"
shift
wheels=("$@")
# Profiled from the script, a function in `.text.worker` would be missing from the list.
unordered() { ! readelf -SW "$1" | grep '\.text\.worker' >/dev/null; }
unordered "$bin" || die "$bin was linked with link/worker-text.ld: build it with RUSTCORN_SYMBOL_ORDER=off"

venv="${RUSTCORN_BENCH_VENV:-$repo/.venv-bench}"
[[ -x "$venv/bin/python" ]] || die "no venv at $venv (benches/setup-bench-env.sh, or set RUSTCORN_BENCH_VENV)"
command -v valgrind >/dev/null || die "valgrind is not installed"
command -v curl >/dev/null || die "curl is not installed"
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
source "$repo/benches/lib/boot.sh"
# shellcheck source=scripts/find-python.sh
source "$repo/scripts/find-python.sh"

work="$(mktemp -d /tmp/rustcorn-symbol-order.XXXXXX)"
server_pid=""
cleanup() {
    [[ -z "$server_pid" ]] || kill -KILL "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
head -c 1048576 /dev/zero >"$work/body"

# Each wheel installed as a user would, in a fresh venv of the CPython its tag names,
# with uvloop (the asgi worker's loop when installed, as in the bench venv; the same
# range benches/setup-bench-env.sh installs) from PyPI.
tags=() extensions=() wheel_venvs=()
for wheel in "${wheels[@]}"; do
    [[ -f "$wheel" && "$wheel" == *.whl ]] || die "no wheel at $wheel"
    tag="$(basename "$wheel" | grep -o -- '-cp3[0-9]*-' | head -1 | tr -d -)" \
        || die "$wheel: no cp3X tag in its name"
    [[ " ${tags[*]} " != *" $tag "* ]] || die "two wheels for $tag: one per Python version"
    python="$(find_python "3.${tag#cp3}")" || die "$wheel: no CPython 3.${tag#cp3} (python3.${tag#cp3} on PATH or pyenv)"
    env="$work/venv-$tag"
    "$python" -m venv "$env"
    "$env/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$wheel" \
        || die "pip install $wheel failed"
    "$env/bin/python" -m pip install --quiet --disable-pip-version-check "uvloop>=0.21,<1" \
        || die "pip install uvloop into the $tag venv failed"
    site="$("$env/bin/python" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')"
    extension="$(ls "$site"/rustcorn/_rustcorn.*.so)"
    unordered "$extension" || die "$wheel was linked with link/worker-text.ld: build it with RUSTCORN_SYMBOL_ORDER=off"
    echo "symbol-order: $tag: $python, $extension"
    tags+=("$tag") extensions+=("$extension") wheel_venvs+=("$env")
done

# collect NAME VENV PROGRAM ARGS...: serves a mixed load with PROGRAM under callgrind
# (VENV activated), then stops it with TERM; sets `collected` to the worker's output.
collect() {
    local name="$1" dir="$work/$1" env="$2" program="$3"
    shift 3
    mkdir -p "$dir"
    (
        cd "$repo/benches/apps"
        VIRTUAL_ENV="$env" PATH="$env/bin:$PATH" exec valgrind --tool=callgrind \
            --demangle=no --trace-children=yes --log-file="$dir/valgrind.%p.log" \
            --callgrind-out-file="$dir/callgrind.%p" \
            "$program" -b 127.0.0.1:0 -w 1 --timeout 600 "$@"
    ) >"$dir/server.log" 2>&1 &
    server_pid=$!
    await_boot "$dir/server.log" "$server_pid"
    local url="http://127.0.0.1:$port"
    local waited=0
    until curl -s -o /dev/null "$url/"; do
        ((waited++ < 600)) || die "$name: no answer within 60 s"
        sleep 0.1
    done
    for _ in $(seq 30); do
        curl -s "$url/" "$url/" "$url/64k" "$url/missing" >/dev/null
        curl -s -H 'Connection: close' "$url/" >/dev/null
    done
    for _ in $(seq 3); do
        curl -s -o /dev/null --data-binary @"$work/body" "$url/echo"
    done
    # Many connections at once, as under wrk in benches/compare.sh: a turn then
    # serves a batch, whose functions (the batch clock, the spare heads, several
    # start_response objects alive) one connection at a time never reaches.
    wrk -t1 -c20 -d2 "$url/" >/dev/null
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
    [[ -s "$dir/callgrind.$worker" ]] || die "$name: no callgrind output for the worker"
    collected="$dir/callgrind.$worker"
}

# One group per worker class: what its worker ran in the binary and in each wheel.
groups=()
for class in sync gthread asgi; do
    case "$class" in
        sync) args=(hello:application) ;;
        gthread) args=(-k gthread --threads 4 hello:application) ;;
        asgi) args=(-k asgi asgi_hello:app) ;;
    esac
    collect "$class-binary" "$venv" "$bin" "${args[@]}"
    group="$bin=$collected"
    for i in "${!tags[@]}"; do
        collect "$class-${tags[$i]}" "${wheel_venvs[$i]}" "${wheel_venvs[$i]}/bin/rustcorn" "${args[@]}"
        group+=",${extensions[$i]}=$collected"
    done
    groups+=("$group")
done
mkdir -p "$(dirname "$list")"
python3 "$repo/scripts/symbol_order.py" write "$list" "$repo/link/worker-text.ld" "${groups[@]}"
