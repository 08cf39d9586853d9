#!/usr/bin/env bash
# The project's test command: prepares the Python test virtualenv, then runs
# every cargo target's tests (unit tests, the integration crate under
# tests/integration/, examples, benches). Exits non-zero on any failure.
#
#   RUSTCORN_TEST_VENV  venv used by the fixture apps (default: <repo>/.venv-test)
#   Extra arguments go to `cargo test`, e.g. `scripts/test.sh --test integration faults::`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export RUSTCORN_TEST_VENV="${RUSTCORN_TEST_VENV:-$repo/.venv-test}"

scripts/setup-test-env.sh

# The venv is built from the `python3` on PATH, the same interpreter pyo3's
# build script resolves by default, so the binary and the venv agree.
cargo test --all-targets "$@"

# House rules: formatted, and clippy-clean with warnings as errors.
cargo fmt --check
cargo clippy --all-targets -- -D warnings
