# Measurement helpers for benches/compare.sh (sourced, not run): the server's
# process tree and its CPU time and memory from /proc, the CPUs' counters from
# /proc/stat, and wrk's output. See "How CPU time is measured" in
# benches/README.md.
# shellcheck shell=bash

# tree_pids ROOT: ROOT and all its live descendants.
tree_pids() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2; alive[$1] = 1 }
        END {
            if (!(root in alive)) exit
            tree[root] = 1; grew = 1
            while (grew) {
                grew = 0
                for (p in parent) if (!(p in tree) && (parent[p] in tree)) { tree[p] = 1; grew = 1 }
            }
            for (p in tree) print p
        }'
}

# cpu_ticks PID: utime+stime of PID (all its threads) in clock ticks; 0 if gone.
cpu_ticks() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
    stat="${stat##*) }" # the comm field may hold spaces and parens
    local -a f
    read -ra f <<<"$stat"
    echo $((f[11] + f[12])) # fields 14 and 15 of proc(5), counted from state = 0
}

rss_kib() { awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# tree_ticks ROOT: utime+stime of the whole tree in clock ticks (of the processes
# alive now: a child that exited since is not counted).
tree_ticks() {
    local total=0 p
    for p in $(tree_pids "$1"); do total=$((total + $(cpu_ticks "$p"))); done
    echo "$total"
}

# snapshot ROOT: "pid ticks" lines for the whole tree.
snapshot() {
    local p
    for p in $(tree_pids "$1"); do echo "$p $(cpu_ticks "$p")"; done
}

# cpu_stat SERVER_CPU CLIENT_CPU: "busy steal" ticks of each of the two CPUs, from
# /proc/stat (busy = user+nice+system+irq+softirq). A task's utime+stime
# includes the softirq work (e.g. loopback TCP) done while it ran, which
# /proc/stat files under softirq: so busy minus the tasks we know of is the
# load of everything else on that CPU.
cpu_stat() {
    awk -v s="cpu$1" -v c="cpu$2" '
        $1 == s { S = ($2 + $3 + $4 + $7 + $8) " " $9 }
        $1 == c { C = ($2 + $3 + $4 + $7 + $8) " " $9 }
        END { print S, C }' /proc/stat
}

# parse_wrk FILE: "requests rps p99_ms errors mean_ms p50_ms" (errors: compact
# text, "0" if none).
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /[0-9]m$/) return v * 60000
            if (v ~ /s$/) return v * 1000
            return v + 0
        }
        /requests in/ { req = $1 }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $1 == "Latency" && mean == "" { mean = ms($2) }
        /Socket errors:/ {
            gsub(",", "")
            for (i = 3; i < NF; i += 2) if ($(i + 1) > 0) err = err (err ? "," : "") $i "=" $(i + 1)
        }
        /Non-2xx or 3xx responses:/ { err = err (err ? "," : "") "non2xx=" $NF }
        END {
            printf "%s %s %s %s %s %s\n", (req ? req : 0), (rps ? rps : 0), (p99 != "" ? p99 : "nan"),
                (err ? err : "0"), (mean != "" ? mean : 0), (p50 != "" ? p50 : "nan")
        }
    ' "$1"
}

# conn_spread ROOT PORT: how the ESTABLISHED TCP connections to local PORT are
# spread over the server's workers — every process of ROOT's tree but ROOT (the
# master) itself, or ROOT alone if it has no children — as "COUNTS RATIO
# QUEUED": COUNTS the per-worker counts in ascending order joined by "/" (a
# worker with none counts 0), RATIO the largest count ÷ the mean ("-" if there
# were none), QUEUED the established connections to PORT no worker holds
# (still in the listen backlog, not accepted yet). A worker's connections are
# the sockets its file descriptors refer to (/proc/PID/fd) whose /proc/net/tcp
# (or tcp6) entry is in state 01 (ESTABLISHED) with local port PORT.
conn_spread() {
    local root="$1" p workers=() tables=(/proc/net/tcp)
    [[ ! -r /proc/net/tcp6 ]] || tables+=(/proc/net/tcp6)
    for p in $(tree_pids "$root"); do [[ "$p" == "$root" ]] || workers+=("$p"); done
    ((${#workers[@]} > 0)) || workers=("$root")
    for p in "${workers[@]}"; do
        echo "pid $p $(find "/proc/$p/fd" -maxdepth 1 -lname 'socket:*' -printf '%l ' 2>/dev/null)"
    done | awk -v port="$(printf ':%04X' "$2")" -v ntables="${#tables[@]}" '
        FNR == 1 { file++ }
        file <= ntables {
            if ($4 == "01" && substr($2, length($2) - 4) == port) {
                established["socket:[" $10 "]"] = 1
                # by address pair: a queued socket has no inode yet, and a table
                # that changes while it is read may list a socket twice
                if (!(($2, $3) in seen)) { seen[$2, $3] = 1; total++ }
            }
            next
        }
        { n = 0; for (i = 3; i <= NF; i++) if ($i in established) n++; print n }
        END { print "total", total + 0 }
    ' "${tables[@]}" - | sort -n | awk '
        $1 == "total" { total = $2; next }
        { count[++n] = $1; sum += $1; if ($1 > max) max = $1 }
        END {
            if (n == 0) exit 1
            counts = count[1]
            for (i = 2; i <= n; i++) counts = counts "/" count[i]
            queued = total - sum
            print counts, (sum > 0 ? sprintf("%.2f", max * n / sum) : "-"), (queued > 0 ? queued : 0)
        }'
}

# free_port [PYTHON]: a TCP port on 127.0.0.1 that nothing listens on now (the
# kernel's pick for port 0). PYTHON defaults to python3 on PATH; the scripts pass
# their venv's interpreter where PATH may not have one.
free_port() {
    "${1:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ctx_switches PID...: the context switches (voluntary and not) of every thread of the
# given processes so far.
ctx_switches() {
    local p
    for p in "$@"; do cat "/proc/$p/task/"*/status 2>/dev/null; done \
        | awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}
