#!/usr/bin/env bash
# Per-worker memory with and without --preload, for the Django and Flask test apps.
#
# For each app and mode it starts rustcorn with N workers on a free port, warms every
# worker with requests from parallel clients, then reads /proc/PID/smaps_rollup of the
# master and each worker: private memory (Private_Clean + Private_Dirty, what a
# worker costs on its own) and PSS (its fair share of pages shared with the master and
# the other workers). Memory, unlike timing, does not depend on how busy the machine is.
#
#   benches/preload_memory.sh [--workers N] [--requests N]
#
#   RUSTCORN_BIN  the binary to measure (default: target/debug/rustcorn, built with
#                 `cargo build` when missing)
#   VENV          the virtualenv with Flask and Django (default: .venv-test, made by
#                 scripts/setup-test-env.sh)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/measure.sh
source "$repo/benches/lib/measure.sh"
cd "$repo"
bin="${RUSTCORN_BIN:-$repo/target/debug/rustcorn}"
venv="${VENV:-$repo/.venv-test}"
workers=4
requests=400

while [[ $# -gt 0 ]]; do
    case "$1" in
        --workers) workers="$2"; shift 2 ;;
        --requests) requests="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "preload_memory: unknown argument $1" >&2; exit 2 ;;
    esac
done

[[ -x "$venv/bin/python" ]] || scripts/setup-test-env.sh
[[ -x "$bin" ]] || cargo build
py="$venv/bin/python"
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" PYTHONDONTWRITEBYTECODE=1

# name | APP_MODULE | path to warm with
apps=(
    "django|djangoproj.wsgi:application|/?name=Ada"
    "flask|flask_app:app|/?name=Ada"
)

log="$(mktemp)"
master=""
cleanup() {
    [[ -n "$master" ]] && kill -TERM "$master" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

# kB of Private_Clean+Private_Dirty and of Pss for one pid: "private pss".
mem_of() {
    awk '/^Private_(Clean|Dirty):/ {p += $2} /^Pss:/ {s = $2} END {print p, s}' \
        "/proc/$1/smaps_rollup"
}

# kB / divisor, in MiB with one decimal.
mib() {
    awk -v kb="$1" -v d="$2" 'BEGIN { printf "%.1f", kb / d / 1024 }'
}

measure() {
    local name="$1" app="$2" path="$3" mode="$4"
    local port
    port="$(free_port "$py")"
    local flags=(-b "127.0.0.1:$port" --workers "$workers" --chdir tests/apps)
    [[ "$mode" == preload ]] && flags+=(--preload)
    "$bin" "${flags[@]}" "$app" >"$log" 2>&1 &
    master=$!
    "$py" - "$port" "$path" "$requests" "$workers" <<'PY'
import sys, time, threading, urllib.request
port, path, total, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
url = "http://127.0.0.1:%s%s" % (port, path)
deadline = time.time() + 120
while True:
    try:
        urllib.request.urlopen(url, timeout=30).read()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("server did not answer within 120 s")
        time.sleep(0.2)
def client(n):
    for _ in range(n):
        urllib.request.urlopen(url, timeout=30).read()
threads = [threading.Thread(target=client, args=(total // (2 * workers),)) for _ in range(2 * workers)]
for t in threads: t.start()
for t in threads: t.join()
PY
    local pids
    pids="$(cat "/proc/$master/task/$master/children")"
    local n=0 priv_sum=0 pss_sum=0 priv pss
    for pid in $pids; do
        read -r priv pss < <(mem_of "$pid")
        priv_sum=$((priv_sum + priv)); pss_sum=$((pss_sum + pss)); n=$((n + 1))
    done
    local m_priv m_pss
    read -r m_priv m_pss < <(mem_of "$master")
    printf '| %-6s | %-10s | %7d | %18s | %14s | %14s | %13s |\n' \
        "$name" "$mode" "$n" "$(mib "$priv_sum" "$n")" "$(mib "$pss_sum" "$n")" \
        "$(mib "$m_pss" 1)" "$(mib "$((pss_sum + m_pss))" 1)"
    kill -TERM "$master"
    wait "$master" || true
    master=""
}

echo "$("$bin" --version | tr -d "\n"), $workers workers, $requests warm-up requests each run"
echo "binary: $bin; Python: $("$py" -c 'import sys; print(sys.version.split()[0])')"
echo
echo "| app    | mode       | workers | private MiB/worker | PSS MiB/worker | master PSS MiB | total PSS MiB |"
echo "|--------|------------|---------|--------------------|----------------|----------------|---------------|"
for entry in "${apps[@]}"; do
    IFS='|' read -r name app path <<<"$entry"
    for mode in no-preload preload; do
        measure "$name" "$app" "$path" "$mode"
    done
done
