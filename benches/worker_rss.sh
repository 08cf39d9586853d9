#!/usr/bin/env bash
# The "Worker memory" measurement of benches/README.md: a hello worker's RSS after 200
# requests, and how much of the server's own code it maps.
#
#     benches/worker_rss.sh rustcorn PROGRAM   # PROGRAM: the binary, or a venv's `rustcorn`
#     benches/worker_rss.sh bjoern PYTHON      # PYTHON: a venv's python with bjoern
#
# The server (one sync worker, or bjoern's single process) serves benches/apps/hello.py on
# a free port with the bench venv's packages (RUSTCORN_BENCH_VENV, default
# <repo>/.venv-bench); 200 sequential curl requests; then it prints the process's VmRSS
# and the resident part of each `r-xp` mapping of a file named *rustcorn* (the binary or
# the extension module), from /proc/PID/status and /proc/PID/smaps.
#
# WORKER_RSS_COLD=1 first drops that file (the binary, or the extension module of
# PROGRAM's venv) from the page cache (fsync, then POSIX_FADV_DONTNEED on it alone), so
# the worker's faults read it back the way they do after a reboot. Without it, a file
# just written (a fresh link, a fresh `pip install`) sits in the page cache in the
# large folios its writes made, and a fault maps the whole folio around the page: on
# ext4 (kernel 6.18 here) a just-installed cp313 module's worker held 1,824 KiB of it,
# the same module read back 1,180 KiB (benches/README.md, "Every version's wheel in the
# list, and what the page cache adds").
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/measure.sh
source "$repo/benches/lib/measure.sh"
venv="${RUSTCORN_BENCH_VENV:-$repo/.venv-bench}"
die() { echo "worker_rss: $*" >&2; exit 1; }
[[ $# -eq 2 && ( "$1" == rustcorn || "$1" == bjoern ) ]] || die "usage: worker_rss.sh rustcorn|bjoern PROGRAM"
kind="$1" program="$2"
command -v curl >/dev/null || die "curl is not installed"
port="$(free_port)"
log="$(mktemp /tmp/worker-rss.XXXXXX)"
server=""
cleanup() {
    [[ -z "$server" ]] || { kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }
    rm -f "$log"
}
trap cleanup EXIT

if [[ "${WORKER_RSS_COLD:-0}" == 1 && "$kind" == rustcorn ]]; then
    code="$program"
    if ! head -c 4 "$program" | grep -q ELF; then
        # A venv's `rustcorn` script: its module is in that venv.
        code="$(ls "$(dirname "$program")"/../lib/python3*/site-packages/rustcorn/_rustcorn.*.so)" \
            || die "no extension module beside $program"
    fi
    python3 - "$code" <<'PY'
import os
import sys

fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
PY
fi

cd "$repo/benches/apps"
if [[ "$kind" == bjoern ]]; then
    VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$program" ../run_bjoern.py "$port" hello:application >"$log" 2>&1 &
    server=$!
    ready='listening at'
else
    VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$program" -b "127.0.0.1:$port" -w 1 hello:application >"$log" 2>&1 &
    server=$!
    ready='Booting worker'
fi
waited=0
until grep -q "$ready" "$log" && curl -s -o /dev/null "http://127.0.0.1:$port/"; do
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; die "the server exited"; }
    ((waited++ < 300)) || die "no answer within 30 s"
    sleep 0.1
done
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/"; done
pid="$server"
[[ "$kind" == bjoern ]] || pid="$(ps -o pid= --ppid "$server" | head -1 | tr -d ' ')"
python3 - "$pid" <<'PY'
import sys

pid = sys.argv[1]
rss = next(line.split()[1] for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:"))
code, mapping = {}, None
for line in open(f"/proc/{pid}/smaps"):
    parts = line.split()
    if not parts[0].endswith(":"):
        mapping = parts[5] if len(parts) > 5 and parts[1] == "r-xp" and "rustcorn" in parts[5] else None
    elif parts[0] == "Rss:" and mapping:
        code[mapping] = code.get(mapping, 0) + int(parts[1])
own = ", ".join(f"{kib} KiB of {name}" for name, kib in code.items()) or "-"
print(f"VmRSS {rss} KiB; own code resident: {own}")
PY
