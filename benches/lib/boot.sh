# Sourced by benches/instructions.sh and benches/h2_instructions.sh (each defines `die`).

# await_boot LOG SERVER_PID: waits until the server's log names its worker; sets
# `worker` (its pid) and `port` (from the 'Listening at:' line, http or https). Under
# callgrind a worker takes seconds to boot; a client's connection waits in the listen
# backlog meanwhile, so nothing more is needed before it connects.
await_boot() {
    local log="$1" pid="$2" waited=0
    until worker="$(grep -o 'Booting worker with pid: [0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$')"; do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "the server exited before booting a worker"; }
        ((waited++ < 1200)) || { cat "$log" >&2; die "no worker booted within 120 s"; }
        sleep 0.1
    done
    port="$(grep -o 'Listening at: https*://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$')" \
        || die "no 'Listening at:' line in the server log"
}
