#!/usr/bin/env bash
# Creates (or refreshes) the Python virtualenv the integration tests run the
# fixture apps in, and installs nginx for the tests that put it in front
# (scripts/setup-nginx.sh) and valgrind for the instruction-count guard
# (benches/instructions.sh), and nghttp2-client for the HTTP/2 tests. Idempotent: a second run with everything in place only
# checks the installed versions.
#
#   RUSTCORN_TEST_VENV  where the venv lives (default: <repo>/.venv-test)
#   PYTHON              the interpreter to build it from (default: python3); it
#                       must be the one rustcorn embeds (same minor version).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RUSTCORN_TEST_VENV:-$repo/.venv-test}"
python="${PYTHON:-python3}"

# Pins: current major lines of each framework; gunicorn (27, the reference) is
# for side-by-side comparison tests (tests/integration/access_log.rs) and its
# gunicornc client; PasteDeploy for --paste (tests/integration/paste.rs); the
# ASGI frameworks and uvloop for -k asgi (tests/integration/asgi_frameworks.rs);
# kosoku, the Autobahn WebSocket suite (tests/integration/asgi_websocket.rs);
# httpx with HTTP/2 and the h2 package, the HTTP/2 clients of
# tests/integration/http2.rs.
requirements=(
    "flask>=3,<4"
    "django>=5,<6"
    "gunicorn>=27,<28"
    "PasteDeploy>=3,<4"
    "fastapi>=0,<1"
    "python-multipart>=0,<1"
    "sse-starlette>=3,<4"
    "quart>=0,<1"
    "litestar>=2,<3"
    "uvloop>=0,<1"
    "kosoku>=0,<1"
    "httpx[http2]>=0,<1"
    "h2>=4,<5"
)

die() { echo "setup-test-env: $*" >&2; exit 1; }

# nginx and openssl for the tests that run the real nginx in front of rustcorn.
"$repo/scripts/setup-nginx.sh" || die "scripts/setup-nginx.sh failed"

# Gunicorn's request corpus, replayed by tests/integration/corpus.rs.
"$repo/scripts/fetch-gunicorn-corpus.sh" "$python" || die "scripts/fetch-gunicorn-corpus.sh failed"

command -v "$python" >/dev/null 2>&1 || die "no '$python' on PATH"

# The HTTPS tests make their certificates with the openssl command.
if ! command -v openssl >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=600 install -y openssl >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y openssl >/dev/null; } \
        || die "the HTTPS tests need the openssl command (Debian package openssl)"
fi

# The systemd tests run the server under systemd-socket-activate (Debian's
# systemd package; installing it starts nothing in a container).
if [[ ! -x /usr/bin/systemd-socket-activate ]]; then
    install_systemd() {
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends systemd
    }
    install_systemd >/dev/null || { apt-get -o DPkg::Lock::Timeout=600 update >/dev/null && install_systemd >/dev/null; } \
        || die "cannot install systemd-socket-activate (apt-get install systemd)"
fi

# The HTTP/2 tests drive the server with nghttp (Debian's nghttp2-client) and curl.
if [[ ! -x /usr/bin/nghttp || ! -x /usr/bin/curl ]]; then
    install_h2_clients() {
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends nghttp2-client curl
    }
    install_h2_clients >/dev/null || { apt-get -o DPkg::Lock::Timeout=600 update >/dev/null && install_h2_clients >/dev/null; } \
        || die "cannot install nghttp2-client and curl, the HTTP/2 tests' clients"
fi

# The instructions stage of scripts/test.sh counts a request's instructions under
# valgrind's callgrind (benches/instructions.sh).
if ! command -v valgrind >/dev/null 2>&1; then
    install_valgrind() {
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends valgrind
    }
    install_valgrind >/dev/null || { apt-get -o DPkg::Lock::Timeout=600 update >/dev/null && install_valgrind >/dev/null; } \
        || die "cannot install valgrind (apt-get install valgrind), which benches/instructions.sh runs"
fi

# A venv built from another interpreter (or a half-created one) is rebuilt.
want_version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    || die "'$python' does not run"
if [[ -x "$venv/bin/python" ]]; then
    have_version="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
    if [[ "$have_version" != "$want_version" ]]; then
        echo "setup-test-env: rebuilding $venv (python ${have_version:-broken} -> $want_version)" >&2
        rm -rf "$venv"
    fi
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" || die "python3 -m venv $venv failed"
fi

# Skip pip entirely when the pinned set is already satisfied (fast re-runs, no
# network needed).
if "$venv/bin/python" - "${requirements[@]}" <<'PY' 2>/dev/null; then
import re, sys
from importlib.metadata import version, PackageNotFoundError
# Each requirement is "name>=LOW,<HIGH" with integer majors.
for req in sys.argv[1:]:
    name, low, high = re.fullmatch(r"([\w-]+)>=(\d+),<(\d+)", req).groups()
    try:
        got = int(version(name).split(".")[0])
    except PackageNotFoundError:
        sys.exit(1)
    if not int(low) <= got < int(high):
        sys.exit(1)
PY
    exit 0
fi

"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input "${requirements[@]}" \
    || die "pip install into $venv failed"

"$venv/bin/python" -c 'import flask, django, gunicorn, paste.deploy, fastapi, multipart, sse_starlette, quart, litestar, uvloop' \
    || die "flask/django/gunicorn/paste.deploy/the ASGI frameworks not importable from $venv after install"
