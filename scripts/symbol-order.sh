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
#     scripts/symbol-order.sh BIN WHEEL
#     scripts/symbol-order.sh --check BIN_OR_EXTENSION
#
# BIN is a release build of the binary and WHEEL a wheel for the bench venv's Python,
# both built WITHOUT the script and the wheel unstripped, since valgrind names no
# function of a `.text.worker` section and a stripped module names none at all:
#
#     RUSTCORN_SYMBOL_ORDER=off cargo build --release      # then copy target/release/rustcorn
#     RUSTCORN_SYMBOL_ORDER=off maturin build --release --zig --strip false \
#         --compatibility manylinux_2_28 --interpreter .venv-bench/bin/python --out DIR
#
# Each worker class (sync, gthread, asgi) of each artifact serves a mixed load under
# callgrind (`--demangle=no`, so the names are the symbols); the wheel's worker enters
# through Python and pyo3's module and inlines differently, so it runs functions the
# binary's does not. The list is the union: sync's functions (both artifacts') first,
# then what gthread and asgi add, each line saying which artifact ran it. Run it after
# a change that renames or adds functions on the request path, rebuild, and commit
# both files. A function the build no longer has matches nothing in the script, so a
# stale list only loses locality; `--check BIN_OR_EXTENSION` says how much of the list
# a binary, or an unstripped extension module (`.so`), still has and fails below 80%.
#
# Environment: RUSTCORN_BENCH_VENV (default <repo>/.venv-bench) supplies the Python
# packages (uvloop for asgi) and the interpreter the wheel is installed for; valgrind
# and curl must be installed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
list="$repo/link/symbol-order.txt"
die() { echo "symbol-order: $*" >&2; exit 1; }

check=false
if [[ "${1:-}" == --check ]]; then
    check=true
    shift
fi
if $check; then
    [[ $# -eq 1 && -f "$1" ]] || die "usage: symbol-order.sh --check BIN_OR_EXTENSION"
    exec python3 "$repo/scripts/symbol_order.py" check "$list" "$1"
fi
[[ $# -eq 2 ]] || die "usage: symbol-order.sh BIN WHEEL (see the head of this script)"
bin="$1" wheel="$2"
[[ -x "$bin" ]] || die "no binary at $bin"
[[ -f "$wheel" && "$wheel" == *.whl ]] || die "no wheel at $wheel"
# Profiled from the script, a function in `.text.worker` would be missing from the list.
if readelf -SW "$bin" | grep -q '\.text\.worker'; then
    die "$bin was linked with link/worker-text.ld: build it with RUSTCORN_SYMBOL_ORDER=off"
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

# The wheel installed as a user would, in a venv of the bench venv's Python that then
# sees the bench venv's packages after its own (a .pth line, written after pip, which
# would otherwise find the bench venv's rustcorn installed), so `rustcorn` is the wheel's.
"$venv/bin/python" -m venv "$work/wheel-venv"
site="$("$work/wheel-venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
"$work/wheel-venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$wheel" \
    || die "pip install $wheel failed"
"$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))' >"$site/bench-venv.pth"
extension="$(ls "$site"/rustcorn/_rustcorn.*.so)"
if readelf -SW "$extension" | grep -q '\.text\.worker'; then
    die "$wheel was linked with link/worker-text.ld: build it with RUSTCORN_SYMBOL_ORDER=off"
fi

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
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
    [[ -s "$dir/callgrind.$worker" ]] || die "$name: no callgrind output for the worker"
    collected="$dir/callgrind.$worker"
}

# One group per worker class: what its worker ran in the binary and in the wheel.
groups=()
for class in sync gthread asgi; do
    case "$class" in
        sync) args=(hello:application) ;;
        gthread) args=(-k gthread --threads 4 hello:application) ;;
        asgi) args=(-k asgi asgi_hello:app) ;;
    esac
    collect "$class-binary" "$venv" "$bin" "${args[@]}"
    group="$bin=$collected"
    collect "$class-wheel" "$work/wheel-venv" "$work/wheel-venv/bin/rustcorn" "${args[@]}"
    groups+=("$group,$extension=$collected")
done
mkdir -p "$(dirname "$list")"
python3 "$repo/scripts/symbol_order.py" write "$list" "$repo/link/worker-text.ld" "${groups[@]}"
