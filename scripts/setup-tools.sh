#!/usr/bin/env bash
# Creates (or checks) a venv of build tools from PyPI: setup-tools.sh VENV PIN...
# (e.g. maturin==1.16.0). Idempotent: with every pin installed, pip is not run.
set -euo pipefail
venv="$1"; shift
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv" \
    || { echo "setup-tools: python3 -m venv $venv failed" >&2; exit 1; }
if ! "$venv/bin/python" - "$@" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
PY
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$@" \
        || { echo "setup-tools: pip install $* into $venv failed" >&2; exit 1; }
fi
