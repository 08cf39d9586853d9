#!/usr/bin/env bash
# Where the time goes (issue 14): syscalls per request (strace -c) and a perf profile
# of the serving process, for rustcorn (-w 1: its worker) and bjoern (its one process),
# on hello keep-alive and hello-close, each server pinned to CPU 1 and wrk to CPU 0 as
# in compare.sh. On multi-5 (compare.sh's five workers: rustcorn --workers 5, Granian
# --workers 5 --blocking-threads 1, nothing pinned, wrk -t2 -c100) the same for all
# five workers together, with their context switches per request. The instructions
# per request (callgrind) are benches/instructions.sh's (INSTRUCTIONS_SERVER,
# INSTRUCTIONS_CLIENT); see benches/README.md.
#
#   benches/breakdown.sh [--servers rustcorn,bjoern] [--workloads hello-keepalive,hello-close]
#   benches/breakdown.sh --servers rustcorn,granian --workloads multi-5
#                        [--duration 3] [--top 15]
#
# Per (server, workload): start the server, 1 s of unmeasured wrk load, then
#   1. strace -c -f -p PID during `wrk -t1 -c50 -d<duration>` (+ -H 'Connection: close'
#      on hello-close): every syscall's count ÷ the requests wrk reports;
#   2. perf record -g -p PID during the same wrk load: the top symbols (self, --no-children)
#      and the share by DSO (kernel included).
# strace slows the server several times over: its per-request counts hold, its
# requests per second do not (nor does perf's profile run under strace: they run apart).
# Raw outputs go to target/breakdown/<date-time>/; the tables are printed.
#
# Environment: RUSTCORN_BIN (default <repo>/target/release/rustcorn),
#   RUSTCORN_BENCH_VENV (default <repo>/.venv-bench: bjoern, granian), SERVER_CPU (1),
#   CLIENT_CPU (0).
set -euo pipefail
export LC_ALL=C

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$bench/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/measure.sh
source "$bench/lib/measure.sh"
bin="${RUSTCORN_BIN:-$repo/target/release/rustcorn}"
venv="${RUSTCORN_BENCH_VENV:-$repo/.venv-bench}"
server_cpu="${SERVER_CPU:-1}"
client_cpu="${CLIENT_CPU:-0}"
servers_csv=rustcorn,bjoern
workloads_csv=hello-keepalive,hello-close
duration=3
top=15

die() { echo "breakdown: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --servers) servers_csv="${2:?}"; shift 2 ;;
        --workloads) workloads_csv="${2:?}"; shift 2 ;;
        --duration) duration="${2:?}"; shift 2 ;;
        --top) top="${2:?}"; shift 2 ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done
for tool in strace perf wrk taskset setsid; do
    command -v "$tool" >/dev/null || die "no $tool on PATH"
done
IFS=, read -ra servers <<<"$servers_csv"
IFS=, read -ra workloads <<<"$workloads_csv"
out="$repo/target/breakdown/$(date -u +%Y-%m-%dT%H%M%SZ)"
mkdir -p "$out"

server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# start NAME WORKLOAD PORT LOG: sets server_pid (the process started) and targets (the
# processes serving: the one worker, bjoern's process, or multi-5's five workers).
start() {
    local name="$1" workload="$2" port="$3" log="$4" cmd waited=0 workers=1 pin=(taskset -c "$server_cpu")
    [[ "$workload" == multi-5 ]] && workers=5 pin=()
    case "$name" in
        rustcorn) cmd=("$bin" -b "127.0.0.1:$port" -w "$workers" --chdir "$bench/apps" hello:application) ;;
        bjoern) cmd=("$venv/bin/python" "$bench/run_bjoern.py" "$port" hello:application) ;;
        granian) cmd=("$venv/bin/granian" --interface wsgi --host 127.0.0.1 --port "$port"
            --workers "$workers" --blocking-threads 1 --no-access-log hello:application) ;;
        *) die "unknown server $name" ;;
    esac
    [[ "$name:$workers" == bjoern:5 ]] && die "bjoern has no workers: multi-5 is for rustcorn and granian"
    (cd "$bench/apps" && exec setsid "${pin[@]}" "${cmd[@]}") >"$log" 2>&1 </dev/null &
    server_pid=$!
    until curl -fs -o /dev/null "http://127.0.0.1:$port/"; do
        kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; die "$name exited"; }
        ((waited++ < 300)) || die "$name not answering within 30 s"
        sleep 0.1
    done
    targets=("$server_pid")
    if [[ "$name" != bjoern ]]; then
        waited=0
        # Granian's workers answer before all of them have started.
        until mapfile -t targets < <(pgrep -P "$server_pid") && ((${#targets[@]} == workers)); do
            ((waited++ < 300)) || die "$name: ${#targets[@]} workers under $server_pid, not $workers"
            sleep 0.1
        done
    fi
}

# load PORT WORKLOAD SECONDS LOG: wrk on CPU client_cpu (multi-5: -t2 -c100, unpinned);
# prints the requests it reports.
load() {
    local args=(-t1 -c50 -d"$3") pin=(taskset -c "$client_cpu")
    [[ "$2" == hello-close ]] && args+=(-H 'Connection: close')
    [[ "$2" == multi-5 ]] && args=(-t2 -c100 -d"$3") pin=()
    "${pin[@]}" wrk "${args[@]}" "http://127.0.0.1:$1/" >"$4" 2>&1
    awk '/requests in/ { print $1; exit }' "$4"
}


for s in "${servers[@]}"; do
    for w in "${workloads[@]}"; do
        cell="$out/$s-$w"
        port="$(free_port "$venv/bin/python")"
        start "$s" "$w" "$port" "$cell.server.log"
        load "$port" "$w" 1 "$cell.warmup.wrk" >/dev/null
        # 1. syscalls
        strace -c -f "${targets[@]/#/-p}" -o "$cell.strace" 2>"$cell.strace.err" &
        strace_pid=$!
        sleep 0.5
        requests="$(load "$port" "$w" "$duration" "$cell.strace.wrk")"
        kill -INT "$strace_pid"
        wait "$strace_pid" || true
        python3 - "$cell.strace" "$requests" >"$cell.syscalls.tsv" <<'PY'
import sys
path, requests = sys.argv[1], int(sys.argv[2])
for line in open(path):
    f = line.split()
    if len(f) < 5 or not f[3].isdigit() or f[-1] == "total":
        continue
    calls, name = int(f[3]), f[-1]
    errors = int(f[4]) if len(f) == 6 else 0
    print("%s\t%.3f\t%.3f" % (name, calls / requests, errors / requests))
PY
        echo "== $s $w: syscalls per request (strace -c, $requests requests)"
        sort -t$'\t' -k2,2gr "$cell.syscalls.tsv"
        # 2. perf
        perf record -g -o "$cell.perf.data" -p "$(IFS=,; echo "${targets[*]}")" -- sleep "$((duration + 1))" \
            2>"$cell.perf.err" &
        perf_pid=$!
        sleep 0.5
        before="$(ctx_switches "${targets[@]}")"
        requests="$(load "$port" "$w" "$duration" "$cell.perf.wrk")"
        after="$(ctx_switches "${targets[@]}")"
        wait "$perf_pid" || true
        awk -v n=$((after - before)) -v r="$requests" 'BEGIN { printf "%.3f\n", n / r }' >"$cell.switches"
        echo "== $s $w: context switches per request (all its threads): $(cat "$cell.switches")"
        echo "== $s $w: perf, top $top symbols (self), $requests requests in ${duration}s"
        perf report -i "$cell.perf.data" --no-children -g none --sort dso,sym --stdio \
            >"$cell.perf.sym.txt" 2>/dev/null
        grep -E '^ +[0-9.]+%' "$cell.perf.sym.txt" | head -n "$top" || true
        echo "== $s $w: perf, share by DSO"
        perf report -i "$cell.perf.data" --no-children -g none --sort dso --stdio \
            >"$cell.perf.dso.txt" 2>/dev/null
        python3 - "$cell.perf.dso.txt" "$requests" <<'PY'
# cpu-clock counts nanoseconds of the process's CPU time: the event count ÷ requests is
# the CPU time one request costs (kernel included), split here by each DSO's share.
import re, sys
text, requests = open(sys.argv[1]).read(), int(sys.argv[2])
event = re.search(r"of event '([^']*)'", text).group(1)
count = int(re.search(r"Event count \(approx\.\): (\d+)", text).group(1))
unit = "ns" if event.startswith(("cpu-clock", "task-clock")) else event
print("%-42s %6s %10s" % ("DSO", "share", unit + "/req"))
for m in re.finditer(r"^ +([0-9.]+)%\s+(\S+)", text, re.M):
    share = float(m.group(1))
    print("%-42s %5.1f%% %10.0f" % (m.group(2), share, count * share / 100 / requests))
print("%-42s %5.1f%% %10.0f" % ("total", 100, count / requests))
PY
        stop_server
    done
done
echo "breakdown: raw outputs in $out" >&2
