#!/usr/bin/env bash
# Regression guard: how many instructions one hello request costs a rustcorn worker,
# counted by callgrind (deterministic, unlike wall time on a shared 2-core machine),
# against the figure committed in benches/instructions.baseline.
#
# The server (`-w 1`, benches/apps/hello.py's hello:application) runs twice under
# `valgrind --tool=callgrind`, serving 200 and then 1200 keep-alive GETs on one
# connection, one request at a time. Callgrind follows the forked worker into its own
# output file; only the worker's count is used. The figure is
#     (Ir(1200 requests) - Ir(200 requests)) / 1000
# so interpreter start-up, the app import, the first requests' warm-up and shutdown
# cancel out.
#
#   benches/instructions.sh            measure; exit 1 when the figure exceeds the
#                                      baseline by more than 5% (prints the change
#                                      either way)
#   benches/instructions.sh --bless    measure and write the figure into the baseline
#                                      (after a deliberate change; commit it)
#
#   RUSTCORN_BIN        the server to measure (default: <repo>/target/release/rustcorn);
#                       scripts/test.sh passes the test venv's `rustcorn` script, which
#                       runs the release wheel the wheels stage built; the baseline holds
#                       the figure for that one, so bless with the same RUSTCORN_BIN
#   RUSTCORN_TEST_VENV  its python runs the client (default: <repo>/.venv-test)
#   INSTRUCTIONS_TOLERANCE  allowed growth in percent (default: 5)
#   INSTRUCTIONS_APP    another app from benches/apps answering `GET /` with "Hello,
#                       World!" and its own worker class, e.g. for the asgi worker
#                       INSTRUCTIONS_APP="-k asgi asgi_hello:app" (to measure a change;
#                       the baseline is for the default, hello:application); with
#                       INSTRUCTIONS_SERVER=bjoern its last word (MODULE:APP) is served
#   INSTRUCTIONS_PATH   the path to GET (default /); any other path is only checked
#                       for a 200 with a body, e.g. for the FastAPI workload
#                       INSTRUCTIONS_APP="-k asgi fastapi_json:app" INSTRUCTIONS_PATH=/json
#
# For the breakdown in benches/README.md ("Where the time goes"), two more knobs measure
# the same way what the guard does not hold (they only print; no baseline, no --bless):
#   INSTRUCTIONS_SERVER  rustcorn (default) or bjoern: benches/run_bjoern.py under the
#                        bench venv's python (RUSTCORN_BENCH_VENV, default <repo>/.venv-bench);
#                        bjoern is one process, so its own count is used
#   INSTRUCTIONS_CLIENT  keepalive (default) or close: every request on a new connection,
#                        with 'Connection: close', read until the server closes it
#   INSTRUCTIONS_BY_OBJECT=N  also print the per-request figure split by ELF object
#                        (self cost: libpython, the server's own code, libc, ...) and
#                        the N costliest functions (benches/callgrind_objects.py)
#   INSTRUCTIONS_KEEP=1  keep the callgrind outputs (the path is printed)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${RUSTCORN_BIN:-$repo/target/release/rustcorn}"
venv="${RUSTCORN_TEST_VENV:-$repo/.venv-test}"
baseline_file="$repo/benches/instructions.baseline"
tolerance="${INSTRUCTIONS_TOLERANCE:-5}"
read -r -a app_args <<<"${INSTRUCTIONS_APP:-hello:application}"
few=200
many=1200
server="${INSTRUCTIONS_SERVER:-rustcorn}"
client_mode="${INSTRUCTIONS_CLIENT:-keepalive}"
bench_venv="${RUSTCORN_BENCH_VENV:-$repo/.venv-bench}"
by_object="${INSTRUCTIONS_BY_OBJECT:-0}"
path="${INSTRUCTIONS_PATH:-/}"
[[ "$path" == /* && "$path" != *[[:space:]]* ]] || die "INSTRUCTIONS_PATH must start with / and hold no space"

die() { echo "instructions: $*" >&2; exit 2; }
# shellcheck source=lib/boot.sh
source "$repo/benches/lib/boot.sh"
# shellcheck source=lib/measure.sh
source "$repo/benches/lib/measure.sh"
[[ "$by_object" =~ ^[0-9]+$ ]] || die "INSTRUCTIONS_BY_OBJECT must be a number (of functions to list)"

bless=false
case "${1:-}" in
    --bless) bless=true ;;
    "") ;;
    *) die "unknown argument '$1' (usage: benches/instructions.sh [--bless])" ;;
esac

case "$server:$client_mode" in
    rustcorn:keepalive) guard=true ;;
    rustcorn:close | bjoern:keepalive | bjoern:close) guard=false ;;
    *) die "INSTRUCTIONS_SERVER must be rustcorn or bjoern, INSTRUCTIONS_CLIENT keepalive or close" ;;
esac
# The baseline is hello:application's figure: another app's is only printed.
[[ -z "${INSTRUCTIONS_APP:-}" ]] || guard=false
if $bless && ! $guard; then
    die "--bless holds the rustcorn keep-alive figure for hello:application only (unset INSTRUCTIONS_SERVER, INSTRUCTIONS_CLIENT and INSTRUCTIONS_APP)"
fi
if [[ "$server" == bjoern ]]; then
    "$bench_venv/bin/python" -c 'import bjoern' 2>/dev/null \
        || die "no bjoern in $bench_venv (benches/setup-bench-env.sh, or set RUSTCORN_BENCH_VENV)"
fi

command -v valgrind >/dev/null || die "no valgrind on PATH (scripts/setup-test-env.sh installs it)"
[[ "$server" == bjoern || -x "$bin" ]] || die "no server at $bin (build it, or set RUSTCORN_BIN)"
[[ -x "$venv/bin/python" ]] || die "no python in $venv (scripts/setup-test-env.sh makes it)"

work="$(mktemp -d "${TMPDIR:-/tmp}/rustcorn-instructions.XXXXXX")"
server_pid=""
keep=false
[[ "${INSTRUCTIONS_KEEP:-0}" == 1 ]] && keep=true
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if $keep; then
        echo "instructions: callgrind outputs kept in $work (run-$few/, run-$many/; the worker's is callgrind.<its pid>)" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# The client: N GETs on one keep-alive connection, each answered (200, "Hello, World!")
# before the next is sent. Each request is sent only once the worker sleeps in
# epoll_wait again (its /proc wchan), so every request takes the same path through the
# worker: woken by the request, one read, the response, a read that would block, back
# to epoll_wait. Without that wait, whether the worker's read after a response already
# finds the next request depends on scheduling, which moved the figure by about 1%.
cat >"$work/client.py" <<'PY'
import socket, sys, time

port, worker, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
close = sys.argv[4] == "close"
path = sys.argv[5].encode()
request = b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: instructions.sh\r\nAccept: */*\r\n"
request += b"Connection: close\r\n\r\n" if close else b"\r\n"


# epoll_wait, epoll_pwait, epoll_pwait2 on x86_64: /proc/PID/syscall's first field, for
# kernels whose wchan reads "0".
EPOLL_SYSCALLS = {"232", "281", "441"}


def in_epoll():
    with open("/proc/%d/wchan" % worker) as f:
        wchan = f.read()
    if "epoll" in wchan:
        return True, wchan
    try:
        with open("/proc/%d/syscall" % worker) as f:
            return f.read().split()[0] in EPOLL_SYSCALLS, wchan
    except (OSError, IndexError):
        return False, wchan


def wait_for_epoll():
    deadline = time.monotonic() + 600
    while True:
        sleeping, wchan = in_epoll()
        if sleeping:
            return
        if time.monotonic() > deadline:
            sys.exit("worker %d not back in epoll_wait within 600 s (wchan %r)" % (worker, wchan))
        time.sleep(0.0002)


def read_response(sock, buf, i):
    """One response off sock (after what buf holds); returns what is left over."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(buf) >= end + 4 + length:
                break
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("connection closed after %d of %d responses" % (i, count))
        buf += chunk
    body = buf[end + 4:end + 4 + length]
    expected = body if path != b"/" and body else b"Hello, World!"
    if not head[0].startswith("HTTP/1.1 200 ") or body != expected:
        sys.exit("response %d is not the hello answer: %r %r" % (i, head[0], body))
    return buf[end + 4 + length:]


def connect():
    return socket.create_connection(("127.0.0.1", port), timeout=120)


# close: one connection per request, read until the server closes it, so the close is
# part of the request's path (and counted) before the next one connects.
sock = None if close else connect()
buf = b""
for i in range(count):
    wait_for_epoll()
    if close:
        sock = connect()
    sock.sendall(request)
    buf = read_response(sock, buf, i)
    if close:
        while sock.recv(65536):
            pass
        sock.close()
if not close:
    sock.close()
PY

# start_rustcorn DIR: starts rustcorn under callgrind; sets server_pid, port and worker
# (the pid whose count is used).
start_rustcorn() {
    local dir="$1"
    # PYTHONHASHSEED=0: the same hash seed, so dict and set layouts are the same in
    # every run. --timeout 600: under callgrind on a loaded machine a worker can miss
    # its heartbeat for longer than the default 30 s.
    PYTHONHASHSEED=0 valgrind --tool=callgrind --trace-children=yes \
        --log-file="$dir/valgrind.%p.log" --callgrind-out-file="$dir/callgrind.%p" \
        "$bin" -w 1 -b 127.0.0.1:0 --no-control-socket --timeout 600 --chdir "$repo/benches/apps" \
        "${app_args[@]}" >"$dir/server.log" 2>&1 &
    server_pid=$!
    await_boot "$dir/server.log" "$server_pid"
}

# start_bjoern DIR: the same for bjoern (one process: the worker is the server itself).
# bjoern binds after its import, so wait for the port to listen before the client
# connects (a refused connection would fail the client).
start_bjoern() {
    local dir="$1" waited=0
    port="$(free_port "$bench_venv/bin/python")"
    (
        cd "$repo/benches/apps"
        PYTHONHASHSEED=0 exec valgrind --tool=callgrind \
            --log-file="$dir/valgrind.%p.log" --callgrind-out-file="$dir/callgrind.%p" \
            "$bench_venv/bin/python" "$repo/benches/run_bjoern.py" "$port" "${app_args[-1]}"
    ) >"$dir/server.log" 2>&1 &
    server_pid=$!
    worker=$server_pid
    until [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]; do
        kill -0 "$server_pid" 2>/dev/null || { cat "$dir/server.log" >&2; die "bjoern exited before listening"; }
        ((waited++ < 1200)) || { cat "$dir/server.log" >&2; die "bjoern not listening within 120 s"; }
        sleep 0.1
    done
}

# measure COUNT: sets `ir` to the worker's instruction count for a server run serving
# COUNT requests (and `objects`, its callgrind file). (Not a $(...) subshell: the EXIT
# trap must see server_pid.)
measure() {
    local count="$1" dir="$work/run-$1" port="" worker="" status=0
    mkdir -p "$dir"
    "start_$server" "$dir"
    "$venv/bin/python" "$work/client.py" "$port" "$worker" "$count" "$client_mode" "$path" \
        || { cat "$dir/server.log" >&2; die "the client failed against the server"; }
    kill -TERM "$server_pid"
    wait "$server_pid" || status=$?
    server_pid=""
    # bjoern keeps SIGTERM's default action (run_bjoern.py): killed by it is its normal end
    [[ "$server" == bjoern ]] && ((status == 128 + 15)) && status=0
    ((status == 0)) || { cat "$dir/server.log" "$dir"/valgrind.*.log >&2; die "the server exited with status $status"; }
    [[ -f "$dir/callgrind.$worker" ]] || die "no callgrind output for worker $worker"
    ir="$(awk '/^totals:/ { print $2; exit }' "$dir/callgrind.$worker")"
    [[ "$ir" =~ ^[0-9]+$ ]] || die "no 'totals:' line in $dir/callgrind.$worker"
    objects="$dir/callgrind.$worker"
}

start=$SECONDS
measure "$few"
ir_few="$ir" objects_few="$objects"
measure "$many"
ir_many="$ir" objects_many="$objects"
per_request=$(((ir_many - ir_few) / (many - few)))
shown="$bin"
[[ "$server" == bjoern ]] && shown="bjoern, $bench_venv/bin/python"
echo "instructions: worker Ir: $ir_few for $few requests, $ir_many for $many requests ($((SECONDS - start)) s)"
echo "instructions: $per_request instructions per hello request ($shown, $client_mode)"
if ((by_object > 0)); then
    python3 "$repo/benches/callgrind_objects.py" "$objects_few" "$objects_many" $((many - few)) "$by_object"
fi
if ! $guard; then
    exit 0
fi

if $bless; then
    bin_shown="${bin#"$repo/"}"
    [[ "$bin" == "$venv/"* ]] && bin_shown="\$RUSTCORN_TEST_VENV/${bin#"$venv/"}"
    {
        echo "# Instructions per hello request, benches/instructions.sh (callgrind, worker only)."
        echo "# Blessed $(date -u +%Y-%m-%d) on $(uname -m) $(uname -r), $("$venv/bin/python" --version 2>&1), valgrind $(valgrind --version | sed 's/^valgrind-//'),"
        echo "# RUSTCORN_BIN=$bin_shown"
        echo "$per_request"
    } >"$baseline_file"
    echo "instructions: wrote $per_request into ${baseline_file#"$repo/"}"
    exit 0
fi

[[ -f "$baseline_file" ]] || die "no ${baseline_file#"$repo/"}: run benches/instructions.sh --bless"
baseline="$(grep -v '^#' "$baseline_file" | grep -m1 -E '^[0-9]+$')" \
    || die "${baseline_file#"$repo/"} holds no figure (one line with an integer)"
change="$(awk -v m="$per_request" -v b="$baseline" 'BEGIN { printf "%+.1f%%", (m - b) * 100 / b }')"
echo "instructions: baseline $baseline, change $change (allowed: +$tolerance%)"
if ((per_request * 100 > baseline * (100 + tolerance))); then
    echo "instructions: FAILED: one hello request costs $per_request instructions, $change over the baseline $baseline." >&2
    echo "instructions: find what made it grow (callgrind_annotate on the worker's outputs below), or, if the growth is deliberate, run 'RUSTCORN_BIN=$bin benches/instructions.sh --bless' and commit benches/instructions.baseline." >&2
    keep=true
    exit 1
fi
if ((per_request * 100 < baseline * (100 - tolerance))); then
    echo "instructions: note: more than $tolerance% below the baseline; bless the new figure (--bless) so the guard holds the gain."
fi
