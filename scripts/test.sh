#!/usr/bin/env bash
# The project's test command. Stages, each timed:
#   setup        the Python test virtualenv, nginx, systemd-socket-activate, openssl,
#                valgrind
#   wheels       one manylinux wheel per CPython 3.10–3.13 and the sdist (dist/)
#   wheel-venvs  each wheel pip-installed in a fresh venv of its Python, the sdist built
#                by pip, and the test venv's own wheel
#   binary       every cargo target's tests against the binary (unit tests, the
#                integration suite — including `wheel::`, which runs those venvs — examples,
#                benches)
#   script       the whole integration suite again, against the test venv's installed
#                `rustcorn` console script (RUSTCORN_TEST_SERVER)
#   instructions the instructions one hello request costs a worker (callgrind), against
#                benches/instructions.baseline: fails on growth over 5%
#                (benches/instructions.sh, on the test venv's release-wheel `rustcorn`)
#   lint         cargo fmt --check, cargo clippy -D warnings
# Exits non-zero on any failure, and prints each stage's time at the end either way.
#
#   RUSTCORN_TEST_VENV  venv used by the fixture apps (default: <repo>/.venv-test)
#   --binary-only       development shortcut: only the binary stage (and setup), with
#                       the given cargo arguments; says loudly what it did not run
#   Extra arguments go to the binary stage's `cargo test`, e.g. `scripts/test.sh --binary-only --test integration faults::`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export RUSTCORN_TEST_VENV="${RUSTCORN_TEST_VENV:-$repo/.venv-test}"
binary_only=false
if [[ "${1:-}" == "--binary-only" ]]; then
    binary_only=true
    shift
fi

timings=()
report() {
    local status=$?
    echo
    echo "== stage times"
    for line in "${timings[@]}"; do echo "   $line"; done
    if $binary_only; then
        echo "== NOT RUN (--binary-only): wheels, wheel-venvs, script, instructions, lint"
    fi
    if [[ $status -eq 0 ]]; then echo "== scripts/test.sh: all stages passed"; else echo "== scripts/test.sh: FAILED (exit $status)"; fi
}
trap report EXIT
# Killed (a CI timeout, ^C): the EXIT trap must not read a finished stage's 0 as success.
trap 'exit 143' TERM
trap 'exit 130' INT

# stage NAME COMMAND...: runs COMMAND, records how long it took.
stage() {
    local name="$1" start=$SECONDS
    shift
    echo "== stage $name: $*"
    "$@"
    timings+=("$(printf '%-12s %4d s' "$name" $((SECONDS - start)))")
}

stage setup scripts/setup-test-env.sh
if $binary_only; then
    stage binary cargo test --all-targets "$@"
    exit 0
fi
stage wheels scripts/build-wheels.sh
stage wheel-venvs scripts/setup-wheel-venvs.sh
# The venv is built from the `python3` on PATH, the same interpreter pyo3's build
# script resolves by default, so the binary and the venv agree.
stage binary cargo test --all-targets "$@"
stage script env RUSTCORN_TEST_SERVER="$RUSTCORN_TEST_VENV/bin/rustcorn" \
    cargo test --test integration
# The regression guard measures the release build the wheels stage made (fat LTO, as
# target/release/rustcorn; the figures agree), so the test command builds nothing more.
stage instructions env RUSTCORN_BIN="$RUSTCORN_TEST_VENV/bin/rustcorn" benches/instructions.sh
# House rules: formatted, and clippy-clean with warnings as errors.
stage lint bash -c 'cargo fmt --check && cargo clippy --all-targets -- -D warnings && python3 scripts/symbol_order.py script link/symbol-order.txt | cmp - link/worker-text.ld'
