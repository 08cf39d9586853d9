#!/usr/bin/env bash
# Side-by-side benchmark: rustcorn against Gunicorn (sync, and gthread on the
# gthread-* workloads), bjoern and Granian, each with ONE worker pinned to
# CPU 1, loaded by wrk pinned to CPU 0. The ASGI workloads (asgi-*,
# fastapi-json, ws-echo) put rustcorn -k asgi beside Uvicorn, Granian, Gunicorn
# -k asgi and Hypercorn, each with one worker on uvloop. The multi-5 workloads
# run five workers each, nothing pinned, and report how the connections spread
# over the workers.
#
#   benches/compare.sh [options]
#
#   --duration S       seconds of measured load per run (default 10)
#   --warmup S         seconds of unmeasured load before each run (default 1; 0 = none)
#   --repeat N         run every (server, workload) N times, in rounds (each round
#                      runs every workload, the servers one after the other on
#                      each); the report shows the median run, and beside each
#                      ratio the median of the rounds' own ratios (default 1)
#   --patience S       seconds the whole comparison may spend, on top of the runs
#                      themselves, waiting for a quiet machine before a run and
#                      re-running (up to twice) a run that other load disturbed
#                      (default 180; 0 = never wait nor retry)
#   --servers LIST     comma-separated, run in this order
#                      (default rustcorn,gunicorn,bjoern,granian; also
#                      rustcorn-wheel: the bench venv's `rustcorn` console script,
#                      from the wheel in dist/ that setup installs there;
#                      rustcorn-before: the binary $RUSTCORN_BIN_BEFORE, run exactly
#                      as rustcorn, to measure a change before and after in one run;
#                      and the ASGI-only uvicorn, hypercorn; `asgi` = rustcorn,uvicorn,
#                      granian,gunicorn,hypercorn)
#   --workloads LIST   comma-separated (default: the WSGI ones, hello-keepalive to
#                      multi-5-gthread; `asgi` = the ASGI ones; `all` = every one)
#   --baseline NAME    server the ratio table divides by its peers (default rustcorn)
#   --output FILE      markdown report (default benches/results/<UTC date-time>.md)
#   --no-setup         do not run benches/setup-bench-env.sh first
#   --no-build         run setup without `cargo build --release`; benchmark
#                      target/release/rustcorn as it is
#   --list             print the servers and workloads, then exit
#
# Workloads (app in benches/apps/, wrk -t1 -c<conns>):
#   hello-keepalive  GET /      hello:application, 50 connections, keep-alive
#   hello-close      GET /      same, with 'Connection: close' on every request
#   hello-64k        GET /64k   64 KiB response, 50 connections
#   echo-1m          POST /echo 1 MiB request body echoed back, 10 connections
#   flask-json       GET /json  flask_json:app (Flask + jsonify), 50 connections
#   django-template  GET /      djangoapp.wsgi:application (template render), 50 connections
#   gthread-hello    GET /      hello:application, 50 connections, keep-alive; rustcorn and
#                    Gunicorn with -k gthread --threads 4 (bjoern, Granian: n/a)
#   gthread-sleep    GET /      sleepy:application (sleeps 10 ms), 20 connections; rustcorn
#                    and Gunicorn with -k gthread --threads 4 (bjoern, Granian: n/a)
#   idle-1000        GET /      hello:application, 10 connections, measured twice: alone,
#                    then while benches/hold_idle.py holds 1000 idle keep-alive
#                    connections open (Gunicorn sync: n/a, it closes every connection)
#   multi-5          GET /      hello:application, keep-alive, 100 connections from wrk -t2;
#                    every server with 5 workers (rustcorn -w 5, Gunicorn -w 5 sync,
#                    Granian --workers 5; bjoern n/a), NEITHER server nor wrk pinned
#                    (the guide's `--workers=5` on a 2-core machine). Half-way through
#                    the measured run, the ESTABLISHED connections each worker holds
#                    are counted (/proc/PID/fd against /proc/net/tcp): the report shows
#                    every run's per-worker counts and the busiest worker's ÷ the mean
#   multi-5-gthread  the same with rustcorn and Gunicorn -k gthread --threads 4 (Granian n/a)
# ASGI workloads (app in benches/apps/; rustcorn -k asgi, uvicorn --loop uvloop
# --http httptools, granian --interface asgi, gunicorn -k asgi, hypercorn -k
# uvloop; bjoern n/a; uvicorn and hypercorn are n/a on the WSGI workloads):
#   asgi-hello       GET /       asgi_hello:app (raw ASGI), 50 connections, keep-alive
#   fastapi-json     GET /json   fastapi_json:app (a dict from an async route), 50 connections
#   asgi-stream      GET /stream asgi_hello:app, 16 more_body messages of 1 KiB, 50 connections
#   asgi-echo-1m     POST /echo  asgi_hello:app, 1 MiB body echoed back, 10 connections
#   ws-echo          WebSocket   asgi_hello:app, benches/ws_echo_load.py (not wrk): 50
#                    connections each sending a 32-byte text message and awaiting its
#                    echo; a "request" is one message echoed
#
# Per (server, workload): start the server (setsid + taskset -c 1, so master
# and workers share CPU 1; multi-*: no taskset), poll until it answers (bounded), check one request
# answers 200 (and for echo, the body comes back intact), warm up, sample the
# CPU time (utime+stime) of every process in the server's tree, run wrk, sample
# again, read the busiest process's VmRSS, check it still answers, stop the
# server (TERM, KILL after 15 s); re-run it if other load disturbed it (see
# --patience). The report is printed and written to --output; raw wrk output
# and server logs go to target/bench-logs/<date-time>/. benches/README.md
# explains every column.
#
# Environment: RUSTCORN_BENCH_VENV (default <repo>/.venv-bench),
#   RUSTCORN_BIN (default <repo>/target/release/rustcorn; with --no-build, any
#   binary, e.g. an older build to compare against), RUSTCORN_BIN_BEFORE (the
#   rustcorn-before server's binary), SERVER_CPU (default 1),
#   CLIENT_CPU (default 0), STARTUP_TIMEOUT (default 30 s), HOLD_TIMEOUT
#   (default 60 s: how long idle-1000 waits for its connections to be open).
set -euo pipefail
export LC_ALL=C

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$bench/.." && pwd)"
apps="$bench/apps"
venv="${RUSTCORN_BENCH_VENV:-$repo/.venv-bench}"
rustcorn_bin="${RUSTCORN_BIN:-$repo/target/release/rustcorn}"
rustcorn_before_bin="${RUSTCORN_BIN_BEFORE:-}"
server_cpu="${SERVER_CPU:-1}"
client_cpu="${CLIENT_CPU:-0}"
startup_timeout="${STARTUP_TIMEOUT:-30}"
hold_timeout="${HOLD_TIMEOUT:-60}"
stop_timeout=15

all_servers=(rustcorn gunicorn bjoern granian rustcorn-wheel rustcorn-before uvicorn hypercorn)
wsgi_workloads=(hello-keepalive hello-close hello-64k echo-1m flask-json django-template
    gthread-hello gthread-sleep idle-1000 multi-5 multi-5-gthread)
asgi_workloads=(asgi-hello fastapi-json asgi-stream asgi-echo-1m ws-echo)
all_workloads=("${wsgi_workloads[@]}" "${asgi_workloads[@]}")

duration=10
warmup=1
repeat=1
patience=180
servers_csv=rustcorn,gunicorn,bjoern,granian
workloads_csv="$(IFS=,; echo "${wsgi_workloads[*]}")"
baseline=rustcorn
output=""
setup=1
build=1
invocation="benches/compare.sh${*:+ $*}"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
log() { echo "compare: $*" >&2; }
die() { log "$*"; exit 1; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) duration="${2:?}"; shift 2 ;;
        --warmup) warmup="${2:?}"; shift 2 ;;
        --repeat) repeat="${2:?}"; shift 2 ;;
        --patience) patience="${2:?}"; shift 2 ;;
        --servers) servers_csv="${2:?}"; shift 2 ;;
        --workloads) workloads_csv="${2:?}"; shift 2 ;;
        --baseline) baseline="${2:?}"; shift 2 ;;
        --output) output="${2:?}"; shift 2 ;;
        --no-setup) setup=0; shift ;;
        --no-build) build=0; shift ;;
        --list) echo "servers: ${all_servers[*]}"; echo "workloads: ${all_workloads[*]}"; exit 0 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ "$duration" =~ ^[0-9]+$ && "$duration" -gt 0 ]] || die "--duration must be a positive integer"
[[ "$warmup" =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer"
[[ "$repeat" =~ ^[0-9]+$ && "$repeat" -gt 0 ]] || die "--repeat must be a positive integer"
[[ "$patience" =~ ^[0-9]+$ ]] || die "--patience must be a non-negative integer"
patience_left=$patience
case ",$servers_csv," in *,asgi,*) servers_csv="${servers_csv/asgi/rustcorn,uvicorn,granian,gunicorn,hypercorn}" ;; esac
case "$workloads_csv" in
    all) workloads_csv="$(IFS=,; echo "${all_workloads[*]}")" ;;
    asgi) workloads_csv="$(IFS=,; echo "${asgi_workloads[*]}")" ;;
esac
IFS=, read -ra servers <<<"$servers_csv"
IFS=, read -ra workloads <<<"$workloads_csv"
for s in "${servers[@]}"; do
    [[ " ${all_servers[*]} " == *" $s "* ]] || die "unknown server '$s' (known: ${all_servers[*]})"
done
for w in "${workloads[@]}"; do
    [[ " ${all_workloads[*]} " == *" $w "* ]] || die "unknown workload '$w' (known: ${all_workloads[*]})"
done

stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
output="${output:-$bench/results/$stamp.md}"
logdir="$repo/target/bench-logs/$stamp"
mkdir -p "$logdir" "$(dirname "$output")"
results="$logdir/results.tsv"

# --- setup --------------------------------------------------------------------
if [[ $setup -eq 1 ]]; then
    setup_args=()
    [[ $build -eq 1 ]] || setup_args+=(--no-build)
    # Only build rustcorn when it is going to run.
    [[ ",$servers_csv," == *",rustcorn,"* ]] || setup_args+=(--no-build)
    [[ ",$servers_csv," != *",rustcorn-wheel,"* ]] || setup_args+=(--wheel)
    "$bench/setup-bench-env.sh" "${setup_args[@]}" || die "setup-bench-env.sh failed"
fi
# The source tree the binary was (just) built from, for the report.
tree_desc="$(git -C "$repo" describe --always --dirty 2>/dev/null || echo 'with no commit yet')"
[[ -x "$venv/bin/python" ]] || die "no bench venv at $venv (run benches/setup-bench-env.sh)"
command -v wrk >/dev/null 2>&1 || die "no wrk on PATH (run benches/setup-bench-env.sh)"
clk_tck="$(getconf CLK_TCK)"

# shellcheck source-path=SCRIPTDIR source=lib/measure.sh
source "$bench/lib/measure.sh"

# --- workloads ------------------------------------------------------------------
# workload_spec NAME: sets W_APP (module:callable in benches/apps), W_PATH,
# W_CONNS, W_WRK_ARGS (extra wrk arguments), W_HEADERS (extra request headers,
# sent by wrk and by the sanity check), W_KEEPALIVE (0 if every request opens
# a connection), W_CHECK (how the one-request sanity check is done: "get" =
# expect 200, "echo" = POST and compare the body, "ws" = one WebSocket echo)
# and W_MODE: "sync" (each server as in server_cmd), "gthread" (rustcorn and
# Gunicorn with -k gthread --threads 4, the others n/a), "idle" (measure alone,
# then again while W_HOLD idle keep-alive connections are held open: see
# attempt_idle), "asgi" (each server's ASGI mode, see server_cmd) or "ws" (the
# same, loaded by benches/ws_echo_load.py instead of wrk). W_WORKERS is how many
# workers each server runs, W_WRK_THREADS wrk's -t, W_PIN 0 to pin neither the
# server nor wrk (then the CPU counters are read for both CPUs together: see
# conditions); with W_WORKERS > 1, measure counts each worker's connections.
# To add a workload: a case here, its name in all_workloads, a line in the
# header comment and in benches/README.md.
workload_spec() {
    W_APP=hello:application W_PATH=/ W_CONNS=50 W_WRK_ARGS=() W_HEADERS=() W_KEEPALIVE=1 W_CHECK=get
    W_MODE=sync W_HOLD=0 W_WORKERS=1 W_WRK_THREADS=1 W_PIN=1
    case "$1" in
        hello-keepalive) ;;
        hello-close) W_HEADERS=("Connection: close") W_KEEPALIVE=0 ;;
        hello-64k) W_PATH=/64k ;;
        echo-1m) W_PATH=/echo W_CONNS=10 W_CHECK=echo W_WRK_ARGS=(-s "$bench/lua/post-1m.lua") ;;
        flask-json) W_APP=flask_json:app W_PATH=/json ;;
        django-template) W_APP=djangoapp.wsgi:application ;;
        gthread-hello) W_MODE=gthread ;;
        gthread-sleep) W_APP=sleepy:application W_CONNS=20 W_MODE=gthread ;;
        idle-1000) W_CONNS=10 W_MODE=idle W_HOLD=1000 ;;
        multi-5) W_CONNS=100 W_WORKERS=5 W_WRK_THREADS=2 W_PIN=0 ;;
        multi-5-gthread) W_CONNS=100 W_WORKERS=5 W_WRK_THREADS=2 W_PIN=0 W_MODE=gthread ;;
        asgi-hello) W_APP=asgi_hello:app W_MODE=asgi ;;
        fastapi-json) W_APP=fastapi_json:app W_PATH=/json W_MODE=asgi ;;
        asgi-stream) W_APP=asgi_hello:app W_PATH=/stream W_MODE=asgi ;;
        asgi-echo-1m) W_APP=asgi_hello:app W_PATH=/echo W_CONNS=10 W_CHECK=echo W_MODE=asgi
            W_WRK_ARGS=(-s "$bench/lua/post-1m.lua") ;;
        ws-echo) W_APP=asgi_hello:app W_PATH=/ws W_CHECK=ws W_MODE=ws ;;
        *) die "no spec for workload $1" ;;
    esac
}

# --- servers ------------------------------------------------------------------
# server_available NAME: exit 0 if it can run, else prints why not.
server_available() {
    case "$1" in
        rustcorn)
            [[ -x "$rustcorn_bin" ]] || { echo "no $rustcorn_bin (cargo build --release failed or not run)"; return 1; }
            if [[ $setup -eq 1 && $build -eq 1 ]] \
                && [[ "$(cat "$repo/target/bench-build.status" 2>/dev/null)" != ok ]]; then
                echo "cargo build --release failed (target/bench-build.log); not benchmarking a stale binary"
                return 1
            fi ;;
        rustcorn-before) [[ -n "$rustcorn_before_bin" && -x "$rustcorn_before_bin" ]] \
            || { echo "RUSTCORN_BIN_BEFORE is not an executable (${rustcorn_before_bin:-unset})"; return 1; } ;;
        rustcorn-wheel) [[ -x "$venv/bin/rustcorn" ]] || { echo "no rustcorn wheel installed in $venv (setup-bench-env.sh --wheel)"; return 1; } ;;
        gunicorn) [[ -x "$venv/bin/gunicorn" ]] || { echo "gunicorn not installed in $venv"; return 1; } ;;
        granian) [[ -x "$venv/bin/granian" ]] || { echo "granian not installed in $venv"; return 1; } ;;
        uvicorn) [[ -x "$venv/bin/uvicorn" ]] || { echo "uvicorn not installed in $venv"; return 1; } ;;
        hypercorn) [[ -x "$venv/bin/hypercorn" ]] || { echo "hypercorn not installed in $venv"; return 1; } ;;
        bjoern)
            "$venv/bin/python" -c 'import bjoern' 2>/dev/null \
                || { echo "bjoern did not build (see $venv/bjoern-build.log)"; return 1; } ;;
    esac
}

# not_applicable NAME: exit 0, printing why, if server NAME does not run the
# current workload (W_MODE, W_WORKERS); it then gets an "n/a" row instead of a run.
not_applicable() {
    if ((W_WORKERS > 1)) && [[ "$1" == bjoern ]]; then
        echo "one process: bjoern has no workers"
        return 0
    fi
    case "$W_MODE:$1" in
        gthread:bjoern) echo "no threads: bjoern serves one request at a time" ;;
        gthread:granian) echo "gthread workloads compare the gthread workers of rustcorn and Gunicorn" ;;
        idle:gunicorn) echo "the sync worker closes every connection after its response" ;;
        asgi:bjoern | ws:bjoern) echo "a WSGI-only server" ;;
        sync:uvicorn | gthread:uvicorn | idle:uvicorn | sync:hypercorn | gthread:hypercorn | idle:hypercorn)
            echo "an ASGI server (the WSGI workloads compare WSGI servers)" ;;
        *) return 1 ;;
    esac
}

# rustcorn_program NAME: the program a rustcorn* server runs.
rustcorn_program() {
    case "$1" in
        rustcorn) echo "$rustcorn_bin" ;;
        rustcorn-wheel) echo "$venv/bin/rustcorn" ;;
        rustcorn-before) echo "$rustcorn_before_bin" ;;
    esac
}

# server_cmd NAME PORT APP: sets S_CMD (argv) for W_WORKERS workers on 127.0.0.1:PORT,
# and S_WORKER (how the report labels it: "gthread" or "-" for as usual).
# Every server runs from benches/apps with the bench venv activated
# (VIRTUAL_ENV + PATH), access logs off (the default of each). W_MODE gthread:
# four app threads in one worker; idle: idle keep-alive connections are kept
# for longer than a run lasts.
server_cmd() {
    local name="$1" port="$2" app="$3" threads=() gunicorn_class=(-k sync) tuning=()
    S_WORKER=-
    if [[ "$W_MODE" == gthread ]]; then
        threads=(-k gthread --threads 4) gunicorn_class=(-k gthread --threads 4) S_WORKER=gthread
    fi
    case "$W_MODE:$name" in
        idle:rustcorn | idle:rustcorn-wheel | idle:rustcorn-before) tuning=(--keep-alive 300 --worker-connections 2000) ;;
        idle:granian) tuning=(--http1-header-read-timeout 60000) ;; # its idle timeout (default 30 s, at most 60)
    esac
    if [[ "$W_MODE" == asgi || "$W_MODE" == ws ]]; then
        asgi_server_cmd "$@"
        return
    fi
    case "$name" in
        rustcorn | rustcorn-wheel | rustcorn-before)
            local program
            program="$(rustcorn_program "$name")"
            S_CMD=("$program" -b "127.0.0.1:$port" --workers "$W_WORKERS" "${threads[@]}" "${tuning[@]}"
                --chdir "$apps" "$app") ;;
        gunicorn) S_CMD=("$venv/bin/gunicorn" -b "127.0.0.1:$port" -w "$W_WORKERS" "${gunicorn_class[@]}" --keep-alive 2
            --chdir "$apps" "$app") ;;
        bjoern) S_CMD=("$venv/bin/python" "$bench/run_bjoern.py" "$port" "$app") ;;
        granian) S_CMD=("$venv/bin/granian" --interface wsgi --host 127.0.0.1 --port "$port"
            --workers "$W_WORKERS" --blocking-threads 1 --no-access-log "${tuning[@]}" --working-dir "$apps" "$app") ;;
    esac
}

# asgi_server_cmd NAME PORT APP: server_cmd for the ASGI workloads: one worker,
# uvloop (each server's choice when installed, made explicit where it has a flag),
# access logs off, lifespan on where it is optional.
asgi_server_cmd() {
    local name="$1" port="$2" app="$3"
    S_WORKER=-
    case "$name" in
        rustcorn | rustcorn-wheel | rustcorn-before)
            local program
            program="$(rustcorn_program "$name")"
            S_CMD=("$program" -b "127.0.0.1:$port" --workers 1 -k asgi --asgi-loop uvloop
                --chdir "$apps" "$app") ;;
        uvicorn) S_CMD=("$venv/bin/uvicorn" --host 127.0.0.1 --port "$port" --workers 1
            --loop uvloop --http httptools --no-access-log --app-dir "$apps" "$app") ;;
        granian) S_CMD=("$venv/bin/granian" --interface asgi --host 127.0.0.1 --port "$port"
            --workers 1 --loop uvloop --no-access-log --working-dir "$apps" "$app") ;;
        gunicorn) S_CMD=("$venv/bin/gunicorn" -b "127.0.0.1:$port" -w 1 -k asgi --keep-alive 2
            --chdir "$apps" "$app") ;;
        hypercorn) S_CMD=("$venv/bin/hypercorn" -b "127.0.0.1:$port" -w 1 -k uvloop
            "$app") ;;
    esac
}

# --- server lifecycle -------------------------------------------------------------
SERVER_PID=""

start_server() { # NAME PORT APP LOG
    server_cmd "$1" "$2" "$3"
    # setsid: the server gets its own process group (so the KILL fallback
    # reaches workers too, and a Ctrl-C here reaches only our trap); taskset
    # pins it, and every process it forks inherits the pinning (W_PIN 0: no
    # taskset). Each step execs, so $! is the server's own (master's) PID.
    local pin=(taskset -c "$server_cpu")
    ((W_PIN)) || pin=()
    (
        cd "$apps"
        export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
        # idle-1000: room for the held connections (raise the soft limit only)
        if [[ "$W_MODE" == idle && "$(ulimit -n)" != unlimited ]] && (($(ulimit -n) < 4096)); then
            ulimit -n 4096 || echo "compare: could not raise the open files limit to 4096" >&2
        fi
        exec setsid "${pin[@]}" "${S_CMD[@]}"
    ) >"$4" 2>&1 </dev/null &
    SERVER_PID=$!
}

# wait_ready PORT PATH: poll until the server answers HTTP at all (any status).
wait_ready() {
    local deadline=$((SECONDS + startup_timeout)) code
    while ((SECONDS < deadline)); do
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1$2" || true)"
        [[ "$code" != 000 && -n "$code" ]] && return 0
        sleep 0.1
    done
    return 1
}

# stop_server: TERM the master, KILL the whole group after $stop_timeout s.
# Sets STOP_HOW to "term" or "kill" (how it ended). Not to be called in a
# subshell: it reaps the server.
STOP_HOW=""
stop_server() {
    STOP_HOW=""
    [[ -n "$SERVER_PID" ]] || return 0
    local pid="$SERVER_PID" deadline
    STOP_HOW=term
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + stop_timeout))
    while kill -0 -- "-$pid" 2>/dev/null && ((SECONDS < deadline)); do
        # a reaped master leaves workers in the group; an unreaped one is a zombie
        if [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]]; then
            wait "$pid" 2>/dev/null || true
        fi
        sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
        STOP_HOW="kill"
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# The idle-1000 connection holder: benches/hold_idle.py, its PID, the write end
# of the FIFO that is its stdin (closing it lets the holder go) and its output.
HOLDER_PID="" HOLDER_FD="" HOLDER_OUT=""

exited() { [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" =~ ^(Z|)$ ]]; } # PID: gone or a zombie

# start_holder PORT BASE: starts hold_idle.py (pinned to the client CPU) to open
# W_HOLD keep-alive connections, each after one request, and returns once it
# says it holds them all; else returns 1 with HOLD_WHY saying why (it exited,
# or took more than $hold_timeout s).
start_holder() {
    local fifo="$2.hold-fifo" deadline
    HOLDER_OUT="$2.hold.txt"
    rm -f "$fifo"
    mkfifo "$fifo"
    (
        if [[ "$(ulimit -n)" != unlimited ]] && (($(ulimit -n) < W_HOLD + 100)); then
            ulimit -n $((W_HOLD + 100)) || true
        fi
        exec taskset -c "$client_cpu" "$venv/bin/python" "$bench/hold_idle.py" "$1" "$W_HOLD"
    ) <"$fifo" >"$HOLDER_OUT" 2>&1 &
    HOLDER_PID=$!
    exec {HOLDER_FD}>"$fifo" # returns once the holder has opened its end
    rm -f "$fifo"
    deadline=$((SECONDS + hold_timeout))
    until grep -q "^holding $W_HOLD\$" "$HOLDER_OUT"; do
        if exited "$HOLDER_PID"; then
            HOLD_WHY="hold_idle.py exited: $(tail -n 1 "$HOLDER_OUT" | tr '|\t' '/ ' | cut -c1-120)"
            return 1
        fi
        ((SECONDS < deadline)) || { HOLD_WHY="$W_HOLD connections not all open after ${hold_timeout}s"; return 1; }
        sleep 0.05
    done
}

# stop_holder: closes the holder's stdin, so it checks its connections, says
# how many the server closed while they were held, and exits (KILL after 10 s).
# Sets HOLD_CLOSED to that count ("?" if it did not say).
stop_holder() {
    HOLD_CLOSED="?"
    [[ -n "$HOLDER_PID" ]] || return 0
    local pid="$HOLDER_PID" deadline=$((SECONDS + 10))
    HOLDER_PID=""
    [[ -z "$HOLDER_FD" ]] || exec {HOLDER_FD}>&-
    HOLDER_FD=""
    while ! exited "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
    exited "$pid" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    HOLD_CLOSED="$(sed -n 's/^closed by server while held: //p' "$HOLDER_OUT")"
    HOLD_CLOSED="${HOLD_CLOSED:-?}"
}

trap 'stop_holder; stop_server; exit 130' INT TERM
trap 'stop_holder; stop_server' EXIT

# sanity_check PORT PATH CHECK: one request of the workload's kind; prints a
# reason and fails unless the answer is 200 (and, for echo, the same body).
sanity_check() {
    local url="http://127.0.0.1:$1$2" code h hdrs=()
    for h in "${W_HEADERS[@]}"; do hdrs+=(-H "$h"); done
    case "$3" in
        get)
            code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${hdrs[@]}" "$url" || true)"
            [[ "$code" == 200 ]] || { echo "GET $2 answered ${code:-nothing}"; return 1; } ;;
        echo)
            local body="$logdir/echo-body.bin"
            [[ -s "$body" ]] || head -c $((1024 * 1024)) /dev/urandom >"$body"
            code="$(curl -s -o "$logdir/echo-back.bin" -w '%{http_code}' --max-time 10 \
                -H 'Content-Type: application/octet-stream' "${hdrs[@]}" --data-binary "@$body" "$url" || true)"
            [[ "$code" == 200 ]] || { echo "POST $2 answered ${code:-nothing}"; return 1; }
            cmp -s "$body" "$logdir/echo-back.bin" || { echo "POST $2 did not echo the body"; return 1; } ;;
        ws)
            "$venv/bin/python" "$bench/ws_echo_load.py" --check 127.0.0.1 "$1" "$2" 2>&1 | tail -n 1 \
                && [[ ${PIPESTATUS[0]} -eq 0 ]] || return 1 ;;
    esac
}

run_wrk() { # PORT SECONDS OUTFILE TIMEFILE — wrk on the client CPU (W_PIN 0: anywhere), user+sys secs to TIMEFILE
    local TIMEFORMAT='%U %S' h args=("${W_WRK_ARGS[@]}") pin=(taskset -c "$client_cpu")
    ((W_PIN)) || pin=()
    for h in "${W_HEADERS[@]}"; do args+=(-H "$h"); done
    local load=(wrk -t"$W_WRK_THREADS" -c"$W_CONNS" -d"$2s" --latency "${args[@]}" "http://127.0.0.1:$1$W_PATH")
    [[ "$W_MODE" != ws ]] || load=("$venv/bin/python" "$bench/ws_echo_load.py" 127.0.0.1 "$1" "$W_PATH" "$W_CONNS" "$2")
    {
        time timeout $(($2 + 30)) "${pin[@]}" "${load[@]}" >"$3" 2>&1
    } 2>"$4"
}

# --- one run ------------------------------------------------------------------------
# The raw results file has one row per run, tab-separated, note last:
RESULT_FIELDS="server workload status requests rps p99_ms cpu_s server_cpu_pct client_cpu_pct"
RESULT_FIELDS+=" worker_rss_kib tree_rss_kib nprocs errors srv_other_pct cli_other_pct"
RESULT_FIELDS+=" steal_pct in_service worker p50_ms"
# idle-1000 only ("-" otherwise): the idle case's requests/s, p50 and p99 (ms);
# the worker's VmRSS just before the holder started and once it held them; how
# many connections were held.
RESULT_FIELDS+=" idle_rps idle_p50_ms idle_p99_ms rss_before_kib rss_held_kib held"
# W_WORKERS > 1 only ("-" otherwise): the ESTABLISHED connections each worker
# held half-way through the run, ascending, "/"-separated ("?" if they could
# not be counted); the largest count ÷ the mean; how many no worker held yet.
RESULT_FIELDS+=" conns_per_worker conns_max_over_mean conns_queued note"
# record FIELD...: sets R_ROW, the tab-separated row (run_spec decides where it goes).
record() { R_ROW="$(IFS=$'\t'; echo "$*")"; }
# record_status SERVER WORKLOAD STATUS: a row without measurements ("failed: …", "n/a: …").
record_status() {
    record "$1" "$2" "$3" 0 0 nan 0 0 0 0 0 0 - 0 0 0 0 "${S_WORKER:--}" nan - - - - - - - - - -
    R_DISTURBANCE=0
}
record_failure() { record_status "$1" "$2" "failed: $3"; }

# measure PORT BASE: runs wrk once with the server's process tree and both
# CPUs sampled around it. Sets M_TICKS (the tree's utime+stime delta),
# M_WORKER (the PID of the process that used the most CPU), M_WORKER_RSS /
# M_TREE_RSS (KiB, after the run), M_NPROCS, M_WALL (s), M_STAT (cpu_stat
# before and after), M_WRK_RC, M_NOTE; with W_WORKERS > 1, M_SPREAD,
# M_SPREAD_RATIO and M_QUEUED (conn_spread half-way through the run, also left
# in BASE.spread; "-" otherwise).
measure() {
    local before after stat0 stat1 t0 t1 p t d counter=""
    M_WRK_RC=0 M_NOTE="-" M_SPREAD=- M_SPREAD_RATIO=- M_QUEUED=-
    stat0="$(cpu_stat "$server_cpu" "$client_cpu")"
    before="$(snapshot "$SERVER_PID")"
    t0=$EPOCHREALTIME
    if ((W_WORKERS > 1)); then
        rm -f "$2.spread"
        (
            sleep "$(awk -v d="$duration" 'BEGIN { print d / 2 }')"
            conn_spread "$SERVER_PID" "$1"
        ) >"$2.spread" 2>&1 &
        counter=$!
    fi
    run_wrk "$1" "$duration" "$2.wrk.txt" "$2.wrk-time" || M_WRK_RC=$?
    t1=$EPOCHREALTIME
    if [[ -n "$counter" ]]; then
        wait "$counter" || true
        read -r M_SPREAD M_SPREAD_RATIO M_QUEUED <"$2.spread" || true
        [[ "$M_SPREAD" =~ ^[0-9/]+$ ]] || M_SPREAD="?" M_SPREAD_RATIO=- M_QUEUED=-
        M_SPREAD_RATIO="${M_SPREAD_RATIO:--}" M_QUEUED="${M_QUEUED:--}"
    fi
    after="$(snapshot "$SERVER_PID")"
    stat1="$(cpu_stat "$server_cpu" "$client_cpu")"
    M_STAT="$stat0 $stat1"
    M_WALL="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"

    local -A ticks0=()
    local worker="" worker_ticks=-1
    M_TICKS=0 M_TREE_RSS=0 M_NPROCS=0
    while read -r p t; do [[ -n "$p" ]] && ticks0[$p]=$t; done <<<"$before"
    while read -r p t; do
        [[ -n "$p" ]] || continue
        [[ -n "${ticks0[$p]:-}" ]] || M_NOTE="process tree changed during the run"
        d=$((t - ${ticks0[$p]:-0}))
        M_TICKS=$((M_TICKS + d))
        ((d > worker_ticks)) && { worker_ticks=$d; worker=$p; }
        M_TREE_RSS=$((M_TREE_RSS + $(rss_kib "$p")))
        M_NPROCS=$((M_NPROCS + 1))
    done <<<"$after"
    (($(grep -c . <<<"$before") <= M_NPROCS)) || M_NOTE="process tree changed during the run"
    M_WORKER="$worker" M_WORKER_RSS=0
    [[ -z "$worker" ]] || M_WORKER_RSS="$(rss_kib "$worker")"
}

# add_note TEXT: appends to the caller's local $note (bash's dynamic scope).
add_note() { note="${note:+$note; }$*"; }

# conditions BASE: where the CPU time went during the last measure (its M_*
# and wrk's time file BASE.wrk-time), as shares of the wall time wrk ran (a
# bit over --duration: wrk's own start-up is inside the sampled window).
# Sets C_SRV (server %), C_CLI (wrk %), C_SRV_OTHER / C_CLI_OTHER (everything
# else on the server / client CPU %), C_STEAL (both CPUs %), C_DIST (how far
# past the thresholds, 5% other load and 2% steal, the worst of the three is;
# 0 = a clean run) and C_TEXT (the figures, for a note). W_PIN 0 (server and
# wrk free to run on either CPU): C_SRV_OTHER and C_CLI_OTHER are both the
# load of everything else on the two CPUs together, as a share of one CPU.
conditions() {
    local client_s
    client_s="$(awk '{ printf "%.3f", $1 + $2 }' "$1.wrk-time" 2>/dev/null || echo 0)"
    read -r C_SRV C_CLI C_SRV_OTHER C_CLI_OTHER C_STEAL < <(awk -v hz="$clk_tck" -v wall="$M_WALL" \
        -v srv="$M_TICKS" -v cli="$client_s" -v st="$M_STAT" 'BEGIN {
            split(st, x, " "); w = wall * hz
            printf "%.0f %.0f %.0f %.0f %.0f\n",
                100 * srv / w, 100 * cli * hz / w,
                100 * (x[5] - x[1] - srv) / w, 100 * (x[7] - x[3] - cli * hz) / w,
                100 * (x[6] - x[2] + x[8] - x[4]) / w
        }')
    if ((!W_PIN)); then
        C_SRV_OTHER=$((C_SRV_OTHER + C_CLI_OTHER))
        C_CLI_OTHER=$C_SRV_OTHER
    fi
    C_DIST=$((C_SRV_OTHER > C_CLI_OTHER ? C_SRV_OTHER - 5 : C_CLI_OTHER - 5))
    ((C_STEAL - 2 <= C_DIST)) || C_DIST=$((C_STEAL - 2))
    ((C_DIST > 0)) || C_DIST=0
    C_TEXT="other load on the server CPU ${C_SRV_OTHER}%, client CPU ${C_CLI_OTHER}%, steal ${C_STEAL}%"
    ((W_PIN)) || C_TEXT="other load on the two CPUs ${C_SRV_OTHER}% (of one CPU), steal ${C_STEAL}%"
}

# record_run SERVER WORKLOAD BASE: turns the M_* measurements, wrk's output and
# (idle-1000) the X_* fields of attempt_idle into a result row.
record_run() {
    local req rps p99 errs mean p50 cpu_s in_service
    read -r req rps p99 errs mean p50 < <(parse_wrk "$3.wrk.txt")
    # Little's law: connections with a request in service on average. Every wrk
    # connection always has one outstanding, so on keep-alive this should be
    # close to W_CONNS; much less means some connections were left waiting
    # (and their requests, never completed, are missing from the latencies).
    in_service="$(awk -v m="$mean" -v r="$rps" 'BEGIN { printf "%.1f", m / 1000 * r }')"
    cpu_s="$(awk -v t="$M_TICKS" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }')"
    conditions "$3"
    local note=""
    [[ "$M_NOTE" == - ]] || add_note "$M_NOTE"
    [[ -z "$X_NOTE" ]] || add_note "$X_NOTE"
    # R_DISTURBANCE: the worst of this measurement's and (idle-1000) the idle
    # case's C_DIST; 0 = a clean run.
    R_DISTURBANCE=$((C_DIST > X_DIST ? C_DIST : X_DIST))
    ((C_DIST == 0)) || add_note "disturbed: $C_TEXT"
    if ((W_KEEPALIVE)) && awk -v s="$in_service" -v c="$W_CONNS" 'BEGIN { exit !(s < 0.8 * c) }'; then
        add_note "only $in_service of $W_CONNS connections in service on average (mean latency x requests/s):" \
            "the others waited, so the latency figures leave out their requests"
    fi
    [[ "$STOP_HOW" == term ]] || add_note "needed SIGKILL to stop"
    ((M_WRK_RC == 0)) || add_note "wrk exited $M_WRK_RC"
    ((M_ALIVE)) || add_note "stopped answering (a request 5 s after the run got no response)"
    note="${note:--}"
    local status="$X_STATUS"
    if ((req == 0)); then
        status="failed: no response in ${duration}s of load"
        ((M_ALIVE)) || status="$status; stopped answering"
        log "$1 / $2: FAILED: ${status#failed: } (errors: $errs); see $3.wrk.txt and $3.log"
        record_failure "$1" "$2" "${status#failed: }"
        return
    fi
    record "$1" "$2" "$status" "$req" "$rps" "$p99" "$cpu_s" "$C_SRV" "$C_CLI" \
        "$M_WORKER_RSS" "$M_TREE_RSS" "$M_NPROCS" "$errs" "$C_SRV_OTHER" "$C_CLI_OTHER" "$C_STEAL" \
        "$in_service" "$S_WORKER" "$p50" "$X_IDLE_RPS" "$X_IDLE_P50" "$X_IDLE_P99" \
        "$X_RSS_BEFORE" "$X_RSS_HELD" "$X_HELD" "$M_SPREAD" "$M_SPREAD_RATIO" "$M_QUEUED" "$note"
    local extra=""
    [[ "$note" == - ]] || extra="; $note"
    [[ "$status" == ok ]] || extra="; $status$extra"
    [[ "$X_HELD" == - ]] || extra=" with $X_HELD held (idle case: $X_IDLE_RPS req/s, p99 ${X_IDLE_P99}ms)$extra"
    [[ "$M_SPREAD" == - ]] || extra=", connections per worker $M_SPREAD (max/mean $M_SPREAD_RATIO, $M_QUEUED not accepted)$extra"
    log "$1 / $2: $rps req/s, $req requests, server CPU ${cpu_s}s (${C_SRV}%)," \
        "p99 ${p99}ms, errors $errs$extra"
}

# wait_quiet: until both CPUs were under 10% busy over one second (this machine
# may be shared with builds and tests), for at most 20 s and what is left of
# --patience, which the wait (past its first second) uses up.
wait_quiet() {
    local start=$SECONDS a b said=0 limit=$((patience_left < 20 ? patience_left : 20))
    while ((limit > 0)); do
        a="$(cpu_stat "$server_cpu" "$client_cpu")"
        sleep 1
        b="$(cpu_stat "$server_cpu" "$client_cpu")"
        # shellcheck disable=SC2086
        set -- $a $b
        (((($5 - $1) * 100 <= clk_tck * 10) && (($7 - $3) * 100 <= clk_tck * 10))) && break
        if ((SECONDS - start >= limit)); then
            log "machine still busy after $((SECONDS - start))s; running anyway"
            break
        fi
        ((said)) || { log "waiting (up to ${limit}s) for other load on CPUs $client_cpu,$server_cpu to stop"; said=1; }
    done
    patience_left=$((patience_left - (SECONDS - start > 1 ? SECONDS - start - 1 : 0)))
    ((patience_left > 0)) || patience_left=0
}

# attempt_idle PORT BASE: the idle-1000 measurements, on a server that is up
# and warmed up. wrk alone (the idle case, BASE.idle.*); the worker's VmRSS;
# hold_idle.py opens W_HOLD keep-alive connections (one request each) and
# holds them; the worker's VmRSS again; the same wrk while they are held (the
# run's own measurement, left in M_*); the holder closes them, saying how many
# the server had closed. Sets the X_* fields; returns 1 with X_WHY if it could
# not measure (the caller records the failure).
attempt_idle() {
    local req rps p99 errs mean p50
    measure "$1" "$2.idle"
    read -r req rps p99 errs mean p50 < <(parse_wrk "$2.idle.wrk.txt")
    ((req > 0)) || { X_WHY="no response in ${duration}s of load (idle case)"; return 1; }
    conditions "$2.idle"
    X_IDLE_RPS="$rps" X_IDLE_P50="$p50" X_IDLE_P99="$p99" X_DIST=$C_DIST
    ((C_DIST == 0)) || X_NOTE="idle case disturbed: $C_TEXT"
    [[ "$errs" == 0 ]] || X_NOTE="${X_NOTE:+$X_NOTE; }idle case errors: $errs"
    local worker="$M_WORKER"
    X_RSS_BEFORE="$(rss_kib "$worker")"
    if ! start_holder "$1" "$2"; then
        stop_holder
        X_WHY="could not hold $W_HOLD connections: $HOLD_WHY"
        return 1
    fi
    X_RSS_HELD="$(rss_kib "$worker")" X_HELD="$W_HOLD"
    log "$W_HOLD connections held; worker VmRSS $((X_RSS_BEFORE / 1024)) -> $((X_RSS_HELD / 1024)) MiB"
    measure "$1" "$2"
    [[ "$M_WORKER" == "$worker" ]] || X_NOTE="${X_NOTE:+$X_NOTE; }the worker changed between the idle case and the run"
    stop_holder
    if [[ "$HOLD_CLOSED" != 0 ]]; then
        X_STATUS="n/a: closed $HOLD_CLOSED of the $W_HOLD idle keep-alive connections while they were held"
    fi
}

# attempt SERVER WORKLOAD BASE TAG: start, check, warm up, measure, stop; sets
# R_ROW and R_DISTURBANCE.
attempt() {
    local server="$1" workload="$2" base="$3" tag="$4" port why log="$3.log"
    workload_spec "$workload"
    X_IDLE_RPS=- X_IDLE_P50=- X_IDLE_P99=- X_RSS_BEFORE=- X_RSS_HELD=- X_HELD=- X_DIST=0 X_NOTE="" X_STATUS=ok
    port="$(free_port "$venv/bin/python")"
    log "$server / $workload$tag: starting on port $port"
    start_server "$server" "$port" "$W_APP" "$log"
    if ! wait_ready "$port" "$W_PATH"; then
        why="did not answer within ${startup_timeout}s"
        kill -0 "$SERVER_PID" 2>/dev/null || why="exited during startup"
        stop_server
        # the server's last words, for the table (| and tabs would break it)
        local last
        last="$(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | tr '|\t' '/ ' | cut -c1-120)"
        [[ -z "$last" ]] || why="$why: $last"
        log "$server / $workload: FAILED: $why; last lines of $log:"
        tail -n 10 "$log" | sed 's/^/    /' >&2
        record_failure "$server" "$workload" "$why"
        return
    fi
    if ! why="$(sanity_check "$port" "$W_PATH" "$W_CHECK")"; then
        stop_server
        log "$server / $workload: FAILED sanity check: $why"
        record_failure "$server" "$workload" "$why"
        return
    fi
    ((warmup == 0)) || run_wrk "$port" "$warmup" "$base.warmup.txt" /dev/null || true
    if [[ "$W_MODE" != idle ]]; then
        measure "$port" "$base"
    elif ! attempt_idle "$port" "$base"; then
        stop_server
        log "$server / $workload: FAILED: $X_WHY"
        record_failure "$server" "$workload" "$X_WHY"
        return
    fi
    # Still answering after the load? (a wedged worker shows up here)
    M_ALIVE=1
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port$W_PATH" || true)" != 000 ]] \
        || M_ALIVE=0
    stop_server
    record_run "$server" "$workload" "$base"
}

# The runs: SPECS[i] = "SERVER WORKLOAD ROUND"; BEST_ROW[i] / BEST_DIST[i] are
# the least disturbed attempt so far and its R_DISTURBANCE, TRIES[i] how many
# attempts it had. Attempts not kept go to discarded.tsv beside the results.
SPECS=() BEST_ROW=() BEST_DIST=() TRIES=()

# run_spec I: one attempt at run I (waiting for quiet CPUs first).
run_spec() {
    local i="$1" server workload round base tag="" n why
    read -r server workload round <<<"${SPECS[$i]}"
    workload_spec "$workload"
    if why="$(not_applicable "$server")"; then
        S_WORKER=-
        record_status "$server" "$workload" "n/a: $why"
        TRIES[i]=1 BEST_ROW[i]="$R_ROW" BEST_DIST[i]=0
        return
    fi
    n=$((${TRIES[$i]:-0} + 1))
    base="$logdir/$server-$workload"
    ((repeat == 1)) || { base="$base.$round"; tag=" (round $round/$repeat)"; }
    ((n == 1)) || { base="$base.try$n"; tag="$tag (try $n)"; }
    wait_quiet
    attempt "$server" "$workload" "$base" "$tag"
    TRIES[i]=$n
    if ((n == 1 || R_DISTURBANCE < BEST_DIST[i])); then
        ((n == 1)) || echo "${BEST_ROW[$i]}" >>"$logdir/discarded.tsv"
        BEST_ROW[i]="$R_ROW" BEST_DIST[i]=$R_DISTURBANCE
    else
        echo "$R_ROW" >>"$logdir/discarded.tsv"
    fi
}

# run_seconds WORKLOAD: about how long one run takes, start to stop (idle-1000
# measures twice and opens its connections in between).
run_seconds() {
    workload_spec "$1"
    if [[ "$W_MODE" == idle ]]; then echo $((2 * duration + warmup + 6)); else echo $((duration + warmup + 3)); fi
}

# rerun_disturbed: up to two more passes over the runs other load disturbed,
# the most disturbed first, while --patience lasts. After the first pass, so
# every server gets the same chance whatever its place in the order.
rerun_disturbed() {
    local pass i start todo workload
    for pass in 2 3; do
        mapfile -t todo < <(for i in "${!SPECS[@]}"; do
            ((BEST_DIST[i] == 0)) || echo "${BEST_DIST[$i]} $i"
        done | sort -rn | awk '{ print $2 }')
        ((${#todo[@]} > 0)) || return 0
        log "pass $pass: re-running ${#todo[@]} disturbed run(s), ${patience_left}s of patience left"
        for i in "${todo[@]}"; do
            read -r _ workload _ <<<"${SPECS[$i]}"
            if ((patience_left < $(run_seconds "$workload") + 2)); then
                log "--patience used up; disturbed runs stay flagged in the report"
                return 0
            fi
            start=$SECONDS
            run_spec "$i"
            patience_left=$((patience_left - (SECONDS - start)))
        done
    done
}

# --- main -------------------------------------------------------------------------
runnable=()
skipped=()
for s in "${servers[@]}"; do
    if why="$(server_available "$s")"; then
        runnable+=("$s")
    else
        log "skipping $s: $why"
        skipped+=("$s: $why")
    fi
done
((${#runnable[@]} > 0)) || die "no server can run"
# A worker's RSS depends on its code lying side by side (build.rs, link/symbol-order.txt):
# say when the binary measured no longer matches the list.
if [[ " ${runnable[*]} " == *" rustcorn "* ]]; then
    log "$("$repo/scripts/symbol-order.sh" --check "$rustcorn_bin" 2>&1 | tr '\n' ' ')"
fi

runs=0 secs=0
# Within a round, the servers take turns on each workload: the runs a ratio pairs are
# a few seconds apart, not a whole round, so the host's speed (it drifts by 20% over
# minutes on shared machines) moves both sides of a round's ratio together.
for ((r = 1; r <= repeat; r++)); do
    for w in "${workloads[@]}"; do
        for s in "${runnable[@]}"; do
            SPECS+=("$s $w $r")
            workload_spec "$w"
            not_applicable "$s" >/dev/null && continue
            runs=$((runs + 1)) secs=$((secs + $(run_seconds "$w")))
        done
    done
done
log "${#runnable[@]} server(s) x ${#workloads[@]} workload(s) x $repeat: $runs runs of ${duration}s" \
    "(+${warmup}s warm-up each; idle-1000 measures twice): about ${secs}s," \
    "plus at most ${patience}s waiting for quiet CPUs and re-running disturbed runs; logs in $logdir"
for i in "${!SPECS[@]}"; do run_spec "$i"; done
rerun_disturbed
for i in "${!SPECS[@]}"; do
    if ((TRIES[i] == 1)); then
        echo "${BEST_ROW[$i]}"
    else
        awk -F '\t' -v OFS='\t' -v n="${TRIES[$i]}" \
            '{ $NF = ($NF == "-" ? "" : $NF "; ") "least disturbed of " n " attempts"; print }' <<<"${BEST_ROW[$i]}"
    fi
done >"$results"

# --- report -------------------------------------------------------------------------
versions() {
    local rc_ver="not run"
    if [[ " ${runnable[*]} " == *" rustcorn "* ]]; then
        rc_ver="$(timeout 5 "$rustcorn_bin" --version 2>/dev/null | head -n1 || true)"
        rc_ver="${rc_ver:-rustcorn} (tree $tree_desc,"
        rc_ver="$rc_ver binary ${rustcorn_bin#"$repo/"} built $(date -u -r "$rustcorn_bin" +%Y-%m-%dT%H:%MZ))"
    fi
    if [[ " ${runnable[*]} " == *" rustcorn-before "* ]]; then
        rc_ver="$rc_ver; rustcorn-before: binary $rustcorn_before_bin built"
        rc_ver="$rc_ver $(date -u -r "$rustcorn_before_bin" +%Y-%m-%dT%H:%MZ)"
    fi
    if [[ " ${runnable[*]} " == *" rustcorn-wheel "* ]]; then
        rc_ver="$rc_ver; rustcorn-wheel: the bench venv's console script from"
        rc_ver="$rc_ver $(cd "$repo" && ls dist/rustcorn-*.whl 2>/dev/null | grep "cp$("$venv/bin/python" -c 'import sys; print("%d%d" % sys.version_info[:2])')" | head -n1)"
    fi
    "$venv/bin/python" - "$rc_ver" <<'PY'
import importlib.metadata as m, platform, sys
parts = [f"rustcorn: {sys.argv[1]}", f"Python {platform.python_version()}"]
for name in ("gunicorn", "bjoern", "granian", "flask", "django", "uvicorn", "hypercorn",
             "fastapi", "uvloop", "httptools", "websockets"):
    try:
        parts.append(f"{name} {m.version(name)}")
    except m.PackageNotFoundError:
        parts.append(f"{name} (not installed)")
print(", ".join(parts))
PY
}

{
    echo "### $stamp"
    echo
    echo "Command: \`$invocation\`"
    echo
    echo "- Machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -n1), Linux $(uname -r)"
    echo "- Versions: $(versions), $(wrk --version 2>&1 | head -n1 | awk '{print $1, $2}')"
    pinned=() free=() conditions="" free_how=""
    for w in "${workloads[@]}"; do
        workload_spec "$w"
        if ((W_PIN)); then
            pinned+=("$w")
        else
            free+=("$w")
            # the multi-* workloads all have the same workers, wrk threads and connections
            free_how="$W_WORKERS workers per server, wrk -t$W_WRK_THREADS -c$W_CONNS, neither pinned"
        fi
    done
    if ((${#pinned[@]} > 0)); then
        conditions="Servers pinned to CPU $server_cpu (whole process tree), wrk -t1 pinned to CPU $client_cpu; "
    fi
    conditions+="${duration}s measured per run after ${warmup}s warm-up"
    ((${#pinned[@]} == 0)) || conditions+="; one worker per server"
    ((${#free[@]} == 0)) || conditions+="; on $(printf '%s, ' "${free[@]}" | sed 's/, $//'): $free_how"
    ((repeat == 1)) || conditions+="; median of $repeat runs"
    echo "- $conditions"
    for s in "${skipped[@]}"; do echo "- Skipped $s"; done
    echo
    python3 "$bench/report.py" "$results" "$RESULT_FIELDS" "$baseline" "${runnable[@]}"
} >"$output"

echo
cat "$output"
log "report written to $output"
