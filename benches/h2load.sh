#!/usr/bin/env bash
# HTTP/2 side by side (issue 15): h2load against rustcorn, Granian and Gunicorn serving
# benches/apps/hello.py's WSGI hello over TLS (ALPN h2), one worker with 4 threads
# pinned to CPU 1, h2load pinned to CPU 0. Reports requests per server CPU-second
# (the server's whole process tree, from /proc, as compare.sh does) for 1 and for 100
# concurrent streams per connection, the median of --repeat runs, and the ratios.
#
#   benches/h2load.sh [--servers rustcorn,granian,gunicorn] [--streams 1,100]
#                     [--requests N] [--clients C] [--repeat R] [--output FILE]
#
#   --requests N   requests per run (default 60000)
#   --clients C    HTTP/2 connections (default 16)
#   --repeat R     runs per (server, streams), round-robin (default 3)
#   --output FILE  markdown report (default benches/results/<UTC date-time>-h2.md)
#
#   RUSTCORN_BIN        the server (default <repo>/target/release/rustcorn)
#   RUSTCORN_BENCH_VENV granian and gunicorn[http2] (default <repo>/.venv-bench,
#                       made by benches/setup-bench-env.sh)
#
# Every server gets the same HTTP/2 stream limit (100) and windows (65,535 per stream,
# Granian's connection window left at its 1 MiB), and each its own gthread-like
# pool of 4 threads (Granian: --blocking-threads 4).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo/benches"
venv="${RUSTCORN_BENCH_VENV:-$repo/.venv-bench}"
bin="${RUSTCORN_BIN:-$repo/target/release/rustcorn}"
servers=rustcorn,granian,gunicorn streams=1,100 requests=60000 clients=16 repeat=3
output="$bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-h2.md"
# shellcheck source=lib/measure.sh
source "$bench/lib/measure.sh"

log() { echo "h2load: $*" >&2; }
die() { log "$*"; exit 1; }
while (($#)); do
    case "$1" in
        --servers) servers="$2"; shift 2 ;;
        --streams) streams="$2"; shift 2 ;;
        --requests) requests="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        --repeat) repeat="$2"; shift 2 ;;
        --output) output="$2"; shift 2 ;;
        *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
for n in "$requests" "$clients" "$repeat"; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "not a positive number: $n"; done
command -v h2load >/dev/null || die "h2load is missing (apt-get install nghttp2-client)"
[[ -x "$bin" ]] || die "no rustcorn binary at $bin (cargo build --release)"
"$venv/bin/python" -c 'import granian, gunicorn, h2' 2>/dev/null \
    || die "$venv lacks granian, gunicorn or h2 (benches/setup-bench-env.sh)"

work="$(mktemp -d)"
SERVER_PID=""
cleanup() { [[ -z "$SERVER_PID" ]] || kill -KILL -- "-$SERVER_PID" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cert="$work/cert.pem" key="$work/key.pem"

server_cmd() { # NAME PORT
    case "$1" in
        rustcorn) S_CMD=("$bin" -b "127.0.0.1:$2" -w 1 -k gthread --threads 4 --certfile "$cert"
            --keyfile "$key" --http-protocols h2,h1 --http2-max-concurrent-streams 100 hello:application) ;;
        gunicorn) S_CMD=("$venv/bin/gunicorn" -b "127.0.0.1:$2" -w 1 -k gthread --threads 4
            --certfile "$cert" --keyfile "$key" --http-protocols h2,h1
            --http2-max-concurrent-streams 100 hello:application) ;;
        granian) S_CMD=("$venv/bin/granian" --interface wsgi --host 127.0.0.1 --port "$2" --workers 1
            --blocking-threads 4 --http 2 --ssl-certificate "$cert" --ssl-keyfile "$key"
            --http2-max-concurrent-streams 100 --http2-initial-stream-window-size 65535
            --no-access-log hello:application) ;;
        *) die "unknown server $1 (rustcorn, granian, gunicorn)" ;;
    esac
}

start_server() { # NAME PORT LOG
    server_cmd "$1" "$2"
    (cd "$bench/apps" && export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" &&
        exec setsid taskset -c 1 "${S_CMD[@]}") >"$3" 2>&1 </dev/null &
    SERVER_PID=$!
    local deadline=$((SECONDS + 60))
    until [[ "$(curl -sk --http2 -o /dev/null -w '%{http_version}' "https://127.0.0.1:$2/" || true)" == 2 ]]; do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$3" >&2; die "$1 exited before serving"; }
        ((SECONDS < deadline)) || { cat "$3" >&2; die "$1 served no HTTP/2 within 60 s"; }
        sleep 0.2
    done
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 -- "-$SERVER_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# One run: sets RUN to "succeeded rps cpu_seconds".
RUN=""
run_once() { # NAME STREAMS
    local port log out before after
    port="$(free_port "$venv/bin/python")"
    log="$work/$1-$2.log" out="$work/h2load.out"
    start_server "$1" "$port" "$log"
    taskset -c 0 h2load -n 2000 -c "$clients" -m "$2" "https://127.0.0.1:$port/" >/dev/null
    before="$(tree_ticks "$SERVER_PID")"
    taskset -c 0 h2load -n "$requests" -c "$clients" -m "$2" "https://127.0.0.1:$port/" >"$out"
    after="$(tree_ticks "$SERVER_PID")"
    stop_server
    grep -qi "application protocol: h2" "$out" || { cat "$out" >&2; die "$1 did not negotiate h2"; }
    RUN="$(awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
        /^finished in/ { gsub(/,/, ""); rps = $4 }
        /^requests:/ { gsub(/,/, ""); ok = $8; failed = $10 }
        END { if (failed > 0 || ok == 0) exit 1; printf "%d %s %.3f\n", ok, rps, ticks / hz }' "$out")" \
        || { cat "$out" >&2; die "$1 failed requests with $2 streams"; }
}

IFS=, read -ra server_list <<<"$servers"
IFS=, read -ra stream_list <<<"$streams"
declare -A per_cpu rps
for ((round = 1; round <= repeat; round++)); do
    for m in "${stream_list[@]}"; do
        for s in "${server_list[@]}"; do
            run_once "$s" "$m"
            read -r ok r cpu <<<"$RUN"
            per=$(awk -v ok="$ok" -v cpu="$cpu" 'BEGIN { printf "%.0f", (cpu > 0 ? ok / cpu : 0) }')
            log "$s, $m streams (round $round/$repeat): $ok requests, $r req/s, server CPU ${cpu}s, $per per CPU-s"
            per_cpu[$s,$m]+="$per " rps[$s,$m]+="$r "
        done
    done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mkdir -p "$(dirname "$output")"
{
    echo "### $(date -u +%Y-%m-%dT%H%M%SZ) — HTTP/2 over TLS, h2load"
    echo
    echo "Command: \`benches/h2load.sh --servers $servers --streams $streams --requests $requests --clients $clients --repeat $repeat\`"
    echo "- Machine: $(nproc) CPUs, $(uname -sr); h2load $(h2load --version | awk '{print $2}'), granian $("$venv/bin/python" -c 'import granian; print(granian.__version__)'), gunicorn $("$venv/bin/python" -c 'import gunicorn; print(gunicorn.__version__)'), rustcorn $bin"
    echo "- hello:application, one worker with 4 threads on CPU 1, h2load -c $clients on CPU 0, median of $repeat"
    echo
    echo "| streams per connection | server | requests/s | requests per server CPU-s (runs) |"
    echo "|--:|---|--:|--:|"
    for m in "${stream_list[@]}"; do
        for s in "${server_list[@]}"; do
            echo "| $m | $s | $(median <<<"${rps[$s,$m]}") | $(median <<<"${per_cpu[$s,$m]}") (${per_cpu[$s,$m]% }) |"
        done
    done
    echo
    echo "| streams per connection | rustcorn ÷ granian | rustcorn ÷ gunicorn |"
    echo "|--:|--:|--:|"
    for m in "${stream_list[@]}"; do
        ratio() { [[ -n "${per_cpu[rustcorn,$m]:-}" && -n "${per_cpu[$1,$m]:-}" ]] || { echo –; return; }
            awk -v a="$(median <<<"${per_cpu[rustcorn,$m]}")" -v b="$(median <<<"${per_cpu[$1,$m]}")" 'BEGIN { printf "%.2f×", a / b }'; }
        echo "| $m | $(ratio granian) | $(ratio gunicorn) |"
    done
} >"$output"
cat "$output"
log "report written to $output"
