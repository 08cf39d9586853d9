#!/usr/bin/env bash
# A/B of server builds on one workload: requests per server CPU-second, rounds
# interleaved so that drift on this shared machine hits every build alike.
# compare.sh runs one rustcorn against its peers; this runs several builds of
# rustcorn (or any server) against each other, to keep or drop one change.
#
#   benches/ab.sh [--rounds N] [--duration S] [--close] NAME=COMMAND ...
#
# Each COMMAND serves benches/apps' hello:application (or what it names) on the port
# given by the word PORT in it, e.g.
#   benches/ab.sh --close old="/tmp/old -b 127.0.0.1:PORT -w 1 hello:application" \
#                         new="/tmp/new -b 127.0.0.1:PORT -w 1 hello:application"
# Every server starts at once, pinned to CPU 1 (setsid + taskset, as compare.sh
# pins); then, N rounds, each server in turn gets `wrk -t1 -c50 -dS` pinned to CPU 0
# (with --close, `Connection: close` on every request). A server's CPU is its process
# and its children's utime + stime from /proc, read before and after its wrk run. One
# line per run; the median per build last.
set -euo pipefail

rounds=5 duration=4 close=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --close) close=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        --*) echo "ab: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[[ $# -ge 1 ]] || { echo "ab: name at least one NAME=COMMAND" >&2; exit 2; }
command -v wrk >/dev/null || { echo "ab: no wrk on PATH (apt-get install wrk)" >&2; exit 2; }

bench="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/measure.sh
source "$bench/lib/measure.sh"
cd "$bench/apps"
names=() pids=() ports=()
cleanup() { for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for spec in "$@"; do
    name=${spec%%=*} command=${spec#*=}
    port=$(free_port)
    # shellcheck disable=SC2086 # the command is words
    setsid taskset -c 1 ${command//PORT/$port} >"/tmp/ab-$name.log" 2>&1 &
    names+=("$name") pids+=($!) ports+=("$port")
done
for i in "${!names[@]}"; do
    for _ in $(seq 300); do
        curl -s -o /dev/null "http://127.0.0.1:${ports[$i]}/" && continue 2
        sleep 0.1
    done
    echo "ab: ${names[$i]} did not answer on port ${ports[$i]}; its log:" >&2
    cat "/tmp/ab-${names[$i]}.log" >&2
    exit 1
done

# A server's CPU: its whole process tree's ticks (`tree_ticks`, compare.sh's counters).
hz=$(getconf CLK_TCK)
header=()
[[ $close == 1 ]] && header=(-H "Connection: close")
declare -A results
for round in $(seq "$rounds"); do
    for i in "${!names[@]}"; do
        before=$(tree_ticks "${pids[$i]}")
        requests=$(taskset -c 0 wrk -t1 -c50 "-d$duration" "${header[@]}" \
            "http://127.0.0.1:${ports[$i]}/" | awk '/requests in/ {print $1}')
        used=$(( $(tree_ticks "${pids[$i]}") - before ))
        rate=$(( requests * hz / (used > 0 ? used : 1) ))
        echo "${names[$i]} round $round: $requests requests, $used ticks, $rate per CPU-s"
        results[${names[$i]}]+="$rate "
    done
done
for name in "${names[@]}"; do
    # shellcheck disable=SC2086 # one number per word
    median=$(printf '%s\n' ${results[$name]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "ab: $name median $median requests per server CPU-second"
done
