#!/usr/bin/env bash
# How much one build's speed moves from one server start to the next. Every start
# draws a new address-space layout (ASLR), and on this machine that alone moves a
# hello keep-alive worker's requests per CPU-second by ±10% (benches/README.md,
# "2026-12-06T175743Z"), so a median of 5 starts — what compare.sh reports — can land
# anywhere in a band this script measures. Use it before reading a change of a few
# percent between two compare.sh runs as a change of the code.
#
#   benches/starts.sh [--starts N] [--duration S] [--close] COMMAND
#
# COMMAND serves benches/apps' hello:application (or what it names) on the port given
# by the word PORT in it, e.g.
#   benches/starts.sh --starts 30 "target/release/rustcorn -b 127.0.0.1:PORT -w 1 hello:application"
# N times (default 20): start it afresh pinned to CPU 1 (setsid + taskset, as
# compare.sh pins), wait until it answers, warm up with `wrk -t1 -c50 -d1` pinned to
# CPU 0, then `wrk -t1 -c50 -dS` (default 3; with --close, `Connection: close` on every
# request), and stop it. One line per start: requests per CPU-second counted as
# compare.sh counts (CPU 1's whole busy time from /proc/stat, softirq included) and as
# ab.sh counts (the server's processes' utime + stime). Last: min, median and max over
# the starts, and the 5%–95% band of a median of 5 starts drawn from them.
set -euo pipefail

starts=20 duration=3 close=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --starts) starts=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --close) close=1; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        --*) echo "starts: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[[ $# -eq 1 ]] || { echo "starts: give one COMMAND with PORT in it" >&2; exit 2; }
[[ $1 == *PORT* ]] || { echo "starts: the command has no PORT word: $1" >&2; exit 2; }
command -v wrk >/dev/null || { echo "starts: no wrk on PATH (apt-get install wrk)" >&2; exit 2; }
command=$1
wrk_args=(-t1 -c50)
[[ $close -eq 1 ]] && wrk_args+=(-H "Connection: close")

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$bench/apps"
pid=""
cleanup() { [[ -n $pid ]] && kill -- "-$pid" 2>/dev/null || true; }
trap cleanup EXIT

# shellcheck source-path=SCRIPTDIR source=lib/measure.sh
source "$bench/lib/measure.sh"
# CPU 1's busy ticks, as compare.sh reads them (`cpu_stat`).
cpu1_busy() { cpu_stat 1 0 | cut -d' ' -f1; }

results=()
for i in $(seq "$starts"); do
    port=$(free_port)
    # shellcheck disable=SC2086 # the command is words
    setsid taskset -c 1 ${command//PORT/$port} >/tmp/starts-server.log 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.1
    done
    curl -s -o /dev/null "http://127.0.0.1:$port/" || {
        echo "starts: the server did not answer on port $port; its log:" >&2
        cat /tmp/starts-server.log >&2
        exit 1
    }
    taskset -c 0 wrk "${wrk_args[@]}" -d1 "http://127.0.0.1:$port/" >/dev/null
    c0=$(cpu1_busy) p0=$(tree_ticks "$pid")
    requests=$(taskset -c 0 wrk "${wrk_args[@]}" -d"$duration" "http://127.0.0.1:$port/" \
        | awk '/requests in/{print $1}')
    c1=$(cpu1_busy) p1=$(tree_ticks "$pid")
    kill -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
    cpu=$((requests * 100 / (c1 - c0))) proc=$((requests * 100 / (p1 - p0)))
    echo "start $i: $requests requests, $cpu per CPU-s (CPU 1 busy), $proc per CPU-s (process)"
    results+=("$cpu")
done

python3 - "${results[@]}" <<'EOF'
import random, statistics, sys
v = sorted(int(x) for x in sys.argv[1:])
print(f"starts: {len(v)}; per CPU-s (CPU 1 busy): min {v[0]}, median {statistics.median(v):.0f}, max {v[-1]}")
if len(v) >= 5:
    rng = random.Random(1)
    m = sorted(statistics.median(rng.sample(v, 5)) for _ in range(2000))
    print(f"starts: a median of 5 starts falls between {m[100]:.0f} and {m[1900]:.0f} (5%-95%)")
EOF
