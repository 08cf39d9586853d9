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
