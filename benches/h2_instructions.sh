#!/usr/bin/env bash
# What one HTTP/2 stream costs a rustcorn gthread worker (issue 15), counted so that it
# does not drift with the load of a shared 2-core machine the way wall-clock runs do:
#
# - instructions: the server (`-w 1 -k gthread --threads 4`, benches/apps/hello.py's
#   hello:application, TLS with ALPN h2 unless H2I_TLS=0) runs under
#   `valgrind --tool=callgrind`, which follows the forked worker into its own output
#   file (all its threads); h2load sends FEW and then MANY requests on one connection
#   with M streams at a time. The figure is
#       (Ir(MANY) - Ir(FEW)) / (MANY - FEW)
#   so interpreter start-up, the app import, the TLS and HTTP/2 handshakes and shutdown
#   cancel out. Callgrind counts user space only.
# - syscalls and context switches: the same server natively, `strace -c -f -p WORKER`
#   (every thread of the worker) around an h2load run of FEW and one of MANY
#   requests, and the worker's threads' voluntary + involuntary context switches from
#   /proc; again the difference over MANY - FEW.
#
#   benches/h2_instructions.sh [--streams 1,10] [--few 500] [--many 3000] [--top N]
#                              [--no-strace] [--no-callgrind]
#
#   --streams LIST  h2load -m values, one measurement each (default 1,10); with -m 1
#                   the count is deterministic to a few instructions per stream; with
#                   more, how streams batch into turns depends on thread scheduling
#   --top N         also split the instructions by ELF object and list the N costliest
#                   functions (benches/callgrind_objects.py)
#   RUSTCORN_BIN        the server (default <repo>/target/release/rustcorn)
#   RUSTCORN_TEST_VENV  its venv (for the port picker; default <repo>/.venv-test)
#   H2I_TLS=0           h2c prior knowledge instead of TLS (loopback is trusted)
#   H2I_KEEP=1          keep the callgrind and strace outputs (the path is printed)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/measure.sh
source "$repo/benches/lib/measure.sh"
bin="${RUSTCORN_BIN:-$repo/target/release/rustcorn}"
venv="${RUSTCORN_TEST_VENV:-$repo/.venv-test}"
streams=1,10 few=500 many=3000 top=0 do_strace=true do_callgrind=true
tls="${H2I_TLS:-1}"

die() { echo "h2_instructions: $*" >&2; exit 2; }
# shellcheck source=lib/boot.sh
source "$repo/benches/lib/boot.sh"
while (($#)); do
    case "$1" in
        --streams) streams="$2"; shift 2 ;;
        --few) few="$2"; shift 2 ;;
        --many) many="$2"; shift 2 ;;
        --top) top="$2"; shift 2 ;;
        --no-strace) do_strace=false; shift ;;
        --no-callgrind) do_callgrind=false; shift ;;
        *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
for n in "$few" "$many" "$top"; do [[ "$n" =~ ^[0-9]+$ ]] || die "not a number: $n"; done
((many > few)) || die "--many must be above --few"
command -v h2load >/dev/null || die "h2load is missing (apt-get install nghttp2-client)"
! $do_callgrind || command -v valgrind >/dev/null || die "no valgrind on PATH"
! $do_strace || command -v strace >/dev/null || die "no strace on PATH"
[[ -x "$bin" ]] || die "no server at $bin (cargo build --release, or set RUSTCORN_BIN)"
[[ -x "$venv/bin/python" ]] || die "no python in $venv"

work="$(mktemp -d "${TMPDIR:-/tmp}/rustcorn-h2i.XXXXXX")"
server_pid="" strace_pid=""
cleanup() {
    [[ -z "$strace_pid" ]] || kill -INT "$strace_pid" 2>/dev/null || true
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ "${H2I_KEEP:-0}" == 1 ]]; then
        echo "h2_instructions: outputs kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

if [[ "$tls" == 1 ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
    proto_args=(--certfile "$work/cert.pem" --keyfile "$work/key.pem" --http-protocols h2,h1)
    scheme=https
else
    proto_args=(--http-protocols h2,h1 --http2-cleartext prior-knowledge)
    scheme=http
fi

# start DIR WRAP...: the server (under WRAP, e.g. valgrind) on a free port; sets
# server_pid, port and worker.
start() {
    local dir="$1"
    shift
    mkdir -p "$dir"
    PYTHONHASHSEED=0 "$@" "$bin" -w 1 -k gthread --threads 4 -b 127.0.0.1:0 \
        --no-control-socket --timeout 600 --chdir "$repo/benches/apps" "${proto_args[@]}" \
        --http2-max-concurrent-streams 100 hello:application >"$dir/server.log" 2>&1 &
    server_pid=$!
    await_boot "$dir/server.log" "$server_pid"
}

stop() {
    local dir="$1" status=0
    kill -TERM "$server_pid"
    wait "$server_pid" || status=$?
    server_pid=""
    ((status == 0)) || { cat "$dir/server.log" "$dir"/valgrind.*.log >&2 2>/dev/null; die "the server exited with status $status"; }
}

# load N M: h2load, N requests on one connection, M streams at a time; all must succeed.
load() {
    local out
    out="$(h2load -n "$1" -c 1 -m "$2" "$scheme://127.0.0.1:$port/" 2>&1)" \
        || { echo "$out" >&2; die "h2load failed"; }
    grep -q "succeeded, 0 failed" <<<"$out" && grep -qi "application protocol: h2" <<<"$out" \
        || { echo "$out" >&2; die "h2load: not every request succeeded over h2"; }
}

# callgrind_run N M: sets ir and cg_file for a server run serving N requests.
callgrind_run() {
    local dir="$work/cg-$2-$1"
    start "$dir" valgrind --tool=callgrind --trace-children=yes \
        --log-file="$dir/valgrind.%p.log" --callgrind-out-file="$dir/callgrind.%p"
    load "$1" "$2"
    stop "$dir"
    cg_file="$dir/callgrind.$worker"
    [[ -f "$cg_file" ]] || die "no callgrind output for worker $worker"
    ir="$(awk '/^totals:/ { print $2; exit }' "$cg_file")"
    [[ "$ir" =~ ^[0-9]+$ ]] || die "no 'totals:' line in $cg_file"
}


# strace_run N M: sets calls (syscalls by name, "name count" lines in a file) for an
# h2load run of N requests against the running server.
strace_run() {
    local out="$work/strace-$2-$1.txt" before waited=0
    strace -c -f -p "$worker" -o "$out" 2>"$out.err" &
    strace_pid=$!
    # "Process N attached with T threads" on stderr once every thread is traced
    until grep -q 'attached' "$out.err" 2>/dev/null; do
        ((waited++ < 100)) || die "strace did not attach to the worker's threads"
        sleep 0.1
    done
    load "$1" "$2"
    kill -INT "$strace_pid"
    wait "$strace_pid" || true
    strace_pid=""
    awk '$NF ~ /^[a-z_0-9]+$/ && $1 ~ /^[0-9.]+$/ && $NF != "total" {
            print $NF, $4 }' "$out" >"$out.calls"
    calls="$out.calls"
}

IFS=, read -ra stream_list <<<"$streams"
what="$scheme (TLS, ALPN h2)"
[[ "$tls" == 1 ]] || what="h2c prior knowledge"
echo "h2_instructions: $bin, $what, hello:application, gthread --threads 4, h2load -c 1"
for m in "${stream_list[@]}"; do
    if $do_callgrind; then
        t0=$SECONDS
        callgrind_run "$few" "$m"
        ir_few=$ir cg_few=$cg_file
        callgrind_run "$many" "$m"
        ir_many=$ir cg_many=$cg_file
        echo "h2_instructions: -m $m: worker Ir $ir_few for $few requests, $ir_many for $many ($((SECONDS - t0)) s)"
        echo "h2_instructions: -m $m: $(((ir_many - ir_few) / (many - few))) instructions per stream"
        if ((top > 0)); then
            python3 "$repo/benches/callgrind_objects.py" "$cg_few" "$cg_many" $((many - few)) "$top" \
                | sed 's/per request/per stream/'
        fi
    fi
    if $do_strace; then
        start "$work/native-$m"
        load 200 "$m" # warm-up: imports, first allocations
        # context switches without strace (each traced syscall adds two)
        cs=$(ctx_switches "$worker"); load "$few" "$m"; cs_few=$(($(ctx_switches "$worker") - cs))
        cs=$(ctx_switches "$worker"); load "$many" "$m"; cs_many=$(($(ctx_switches "$worker") - cs))
        strace_run "$few" "$m"
        calls_few=$calls
        strace_run "$many" "$m"
        calls_many=$calls
        stop "$work/native-$m"
        echo "h2_instructions: -m $m: context switches per stream (all worker threads): $(awk -v a="$cs_few" -v b="$cs_many" -v n=$((many - few)) 'BEGIN { printf "%.2f", (b - a) / n }')"
        echo "h2_instructions: -m $m: syscalls per stream (strace -c -f, all worker threads):"
        awk -v n=$((many - few)) '
            NR == FNR { a[$1] = $2; next }
            { b[$1] = $2 }
            END {
                for (k in b) { d = (b[k] - a[k]) / n; if (d >= 0.01 || d <= -0.01) { printf "  %-18s %6.2f\n", k, d; t += d } }
                printf "  %-18s %6.2f\n", "total", t
            }' "$calls_few" "$calls_many" | sort -k2 -g -r
    fi
done
