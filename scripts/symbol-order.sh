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
#     scripts/symbol-order.sh [--check] [BIN]
#
# BIN is a release build (default target/release/rustcorn). Each worker class serves a
# mixed load under callgrind (`--demangle=no`, so the names are the symbols lld looks
# for); the sync worker's functions come first (the RSS benchmark's), then what gthread
# and asgi add. Run it after a change that renames or adds functions on the request
# path, rebuild, and commit both files. A function the build no longer has matches
# nothing in the script, so a stale list only loses locality; `--check BIN` says how
# much of the list BIN still has and fails below 80%.
#
# Environment: RUSTCORN_BENCH_VENV (default <repo>/.venv-bench) supplies the Python
# packages (uvloop for asgi); valgrind and curl must be installed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
list="$repo/link/symbol-order.txt"
die() { echo "symbol-order: $*" >&2; exit 1; }

check=false
if [[ "${1:-}" == --check ]]; then
    check=true
    shift
fi
bin="${1:-$repo/target/release/rustcorn}"
[[ -x "$bin" ]] || die "no binary at $bin (cargo build --release first)"

if $check; then
    exec python3 "$repo/scripts/symbol_order.py" check "$list" "$bin"
fi

venv="${RUSTCORN_BENCH_VENV:-$repo/.venv-bench}"
[[ -x "$venv/bin/python" ]] || die "no venv at $venv (benches/setup-bench-env.sh, or set RUSTCORN_BENCH_VENV)"
command -v valgrind >/dev/null || die "valgrind is not installed"
command -v curl >/dev/null || die "curl is not installed"
source "$repo/benches/lib/boot.sh"

work="$(mktemp -d /tmp/rustcorn-symbol-order.XXXXXX)"
server_pid=""
cleanup() {
    [[ -z "$server_pid" ]] || kill -KILL "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
head -c 1048576 /dev/zero >"$work/body"

# collect NAME ARGS...: serves a mixed load with the server under callgrind, then
# stops it with TERM; sets `collected` to the worker's callgrind output.
collect() {
    local name="$1" dir="$work/$1"
    shift
    mkdir -p "$dir"
    (
        cd "$repo/benches/apps"
        VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" exec valgrind --tool=callgrind \
            --demangle=no --trace-children=yes --log-file="$dir/valgrind.%p.log" \
            --callgrind-out-file="$dir/callgrind.%p" \
            "$bin" -b 127.0.0.1:0 -w 1 --timeout 600 "$@"
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
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
    [[ -s "$dir/callgrind.$worker" ]] || die "$name: no callgrind output for the worker"
    collected="$dir/callgrind.$worker"
}

outputs=()
collect sync hello:application
outputs+=("$collected")
collect gthread -k gthread --threads 4 hello:application
outputs+=("$collected")
collect asgi -k asgi asgi_hello:app
outputs+=("$collected")
mkdir -p "$(dirname "$list")"
python3 "$repo/scripts/symbol_order.py" write "$list" "$repo/link/worker-text.ld" "$bin" "${outputs[@]}"
