#!/usr/bin/env bash
# Prepares everything benches/compare.sh needs. Idempotent: a second run with
# everything in place only checks it (no pip, no apt), and rebuilds rustcorn
# (a no-op when the tree has not changed).
#
#   benches/setup-bench-env.sh [--no-build] [--upgrade]
#
#   --no-build   do not run `cargo build --release`; use target/release/rustcorn
#                as it is (or skip rustcorn if it does not exist)
#   --upgrade    pip install --upgrade the peers even if they are installed
#   --wheel      install rustcorn's wheel for the venv's Python into the venv (the
#                `rustcorn-wheel` server), built by scripts/build-wheels.sh if dist/
#                has none
#
#   RUSTCORN_BENCH_VENV  where the venv lives (default: <repo>/.venv-bench)
#   PYTHON               interpreter the venv is built from (default: python3);
#                        it must be the one rustcorn embeds (same minor version)
#
# What it sets up:
#   - wrk and nghttp2-client's h2load (Debian's packages) and libev-dev (for bjoern),
#     through apt-get if missing
#   - the bench venv with gunicorn, granian, flask, django (latest from PyPI), for
#     the ASGI workloads uvicorn[standard] (httptools, websockets), hypercorn,
#     fastapi and uvloop (each pinned to its current major: 0.x for the 0.x ones), h2
#     (Gunicorn's HTTP/2 for benches/h2load.sh), and
#     bjoern (built from source against libev; if that fails it says so and goes
#     on: compare.sh then skips bjoern)
#   - target/release/rustcorn (cargo build --release; a failed build is reported
#     and compare.sh skips rustcorn)
#
# Exit status is non-zero only if something every run needs is missing
# (python, the venv, wrk, gunicorn/granian/flask/django and the ASGI peers).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RUSTCORN_BENCH_VENV:-$repo/.venv-bench}"
python="${PYTHON:-python3}"
build=1
upgrade=0
wheel=0
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        --upgrade) upgrade=1 ;;
        --wheel) wheel=1 ;;
        -h | --help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup-bench-env: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "setup-bench-env: $*" >&2; }
die() { log "$*"; exit 1; }

apt_updated=0
apt_install() {
    # apt_install PKG... — installs Debian packages; runs `apt-get update` once
    # per invocation of this script, and only if a plain install fails.
    command -v apt-get >/dev/null 2>&1 || { log "no apt-get; install $* by hand"; return 1; }
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo -n)
    if DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null 2>&1; then
        return 0
    fi
    if [[ $apt_updated -eq 0 ]]; then
        apt_updated=1
        "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
    fi
    log "apt-get install $* failed"
    return 1
}

# --- system tools -----------------------------------------------------------
for tool in taskset curl getconf; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required (util-linux/curl/libc-bin)"
done
if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk (apt)"
    apt_install wrk || die "wrk is required: apt-get install -y wrk"
fi
if ! command -v h2load >/dev/null 2>&1; then
    log "installing nghttp2-client (apt) for h2load (benches/h2load.sh)"
    apt_install nghttp2-client || die "h2load is required: apt-get install -y nghttp2-client"
fi

# --- the bench venv -------------------------------------------------------------
command -v "$python" >/dev/null 2>&1 || die "no '$python' on PATH"
want_version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    || die "'$python' does not run"
if [[ -x "$venv/bin/python" ]]; then
    have_version="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
    if [[ "$have_version" != "$want_version" ]]; then
        log "rebuilding $venv (python ${have_version:-broken} -> $want_version)"
        rm -rf "$venv"
    fi
fi
if [[ ! -x "$venv/bin/python" ]]; then
    log "creating $venv with $("$python" -c 'import sys; print(sys.executable)')"
    "$python" -m venv "$venv" || die "$python -m venv $venv failed"
fi

have() { "$venv/bin/python" -c "import importlib.metadata as m; m.version('$1')" >/dev/null 2>&1; }
pip_install() {
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$@"
}

# Pure-Python / wheel packages: one pip call, only when something is missing.
required=(gunicorn granian flask django)
# The ASGI peers: "distribution=requirement" (the name `have` checks, what pip gets).
asgi_required=("uvicorn=uvicorn[standard]>=0.30,<1" "hypercorn=hypercorn>=0.17,<1"
    "fastapi=fastapi>=0.110,<1" "uvloop=uvloop>=0.21,<1" "httptools=httptools>=0.6,<1"
    "websockets=websockets>=13" "h2=h2>=4.1,<5")
missing=()
for pkg in "${required[@]}"; do
    if [[ $upgrade -eq 1 ]] || ! have "$pkg"; then missing+=("$pkg"); fi
done
for spec in "${asgi_required[@]}"; do
    if [[ $upgrade -eq 1 ]] || ! have "${spec%%=*}"; then missing+=("${spec#*=}"); fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "pip install --upgrade ${missing[*]}"
    pip_install --upgrade "${missing[@]}" || die "pip install ${missing[*]} into $venv failed"
fi
"$venv/bin/python" -c 'import gunicorn, granian, flask, django' \
    || die "gunicorn/granian/flask/django not importable from $venv after install"
"$venv/bin/python" -c 'import uvicorn, hypercorn, fastapi, uvloop, httptools, websockets, h2' \
    || die "uvicorn/hypercorn/fastapi/uvloop/httptools/websockets/h2 not importable from $venv after install"

# bjoern: a C extension built from the sdist against libev. Best effort; after
# a failure, later runs do not try again (quietly) unless --upgrade.
bjoern_log="$venv/bjoern-build.log"
bjoern_failed="$venv/.bjoern-build-failed"
if [[ -e "$bjoern_failed" && $upgrade -eq 0 ]]; then
    log "bjoern: not installed (its build failed before, see $bjoern_log; --upgrade tries again)"
elif [[ $upgrade -eq 1 ]] || ! "$venv/bin/python" -c 'import bjoern' >/dev/null 2>&1; then
    if [[ ! -e /usr/include/ev.h ]]; then
        log "installing libev-dev (apt) for bjoern"
        apt_install libev-dev || true
    fi
    command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 \
        || { log "installing gcc (apt) for bjoern"; apt_install gcc || true; }
    py_include="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    [[ -e "$py_include/Python.h" ]] || log "warning: no Python.h under $py_include (bjoern's build needs it)"
    log "building bjoern (log: $bjoern_log)"
    if pip_install --upgrade --no-binary bjoern bjoern >"$bjoern_log" 2>&1 \
        && "$venv/bin/python" -c 'import bjoern' >>"$bjoern_log" 2>&1; then
        log "bjoern built"
        rm -f "$bjoern_failed"
    else
        touch "$bjoern_failed"
        log "WARNING: bjoern did NOT build; compare.sh will run without it."
        log "         last lines of $bjoern_log:"
        tail -n 15 "$bjoern_log" | sed 's/^/           /' >&2
    fi
fi

# --- rustcorn -----------------------------------------------------------------
# The outcome goes to target/bench-build.status ("ok" or "failed"): compare.sh
# skips rustcorn after a failed build rather than benchmark a stale binary.
rustcorn_bin="$repo/target/release/rustcorn"
status_file="$repo/target/bench-build.status"
if [[ $build -eq 1 ]]; then
    mkdir -p "$repo/target"
    if ! command -v cargo >/dev/null 2>&1; then
        log "WARNING: no cargo on PATH; rustcorn is not built"
        echo failed >"$status_file"
    else
        build_log="$repo/target/bench-build.log"
        log "cargo build --release (log: $build_log)"
        if (cd "$repo" && cargo build --release) >"$build_log" 2>&1 && [[ -x "$rustcorn_bin" ]]; then
            log "rustcorn built: $rustcorn_bin"
            echo ok >"$status_file"
        else
            log "WARNING: cargo build --release FAILED; compare.sh will skip rustcorn."
            log "         last lines of $build_log:"
            tail -n 15 "$build_log" | sed 's/^/           /' >&2
            echo failed >"$status_file"
        fi
    fi
fi

# --- rustcorn's wheel ---------------------------------------------------------
# The same server as the binary, from `pip install`: the wheel for the venv's Python.
if [[ $wheel -eq 1 ]]; then
    minor="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    tag="cp${minor/./}"
    if [[ $build -eq 1 ]] || ! compgen -G "$repo/dist/rustcorn-*-$tag-$tag-*.whl" >/dev/null; then
        PYTHON_VERSIONS="$minor" "$repo/scripts/build-wheels.sh" >"$repo/target/bench-wheel.log" 2>&1 \
            || die "scripts/build-wheels.sh for $minor failed (target/bench-wheel.log)"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
        "$repo"/dist/rustcorn-*-"$tag"-"$tag"-*.whl || die "pip install of the $minor wheel failed"
    log "rustcorn wheel installed: $("$venv/bin/rustcorn" --version)"
fi

# --- summary -----------------------------------------------------------------
"$venv/bin/python" - <<'PY' >&2
import importlib.metadata as m
vs = []
for name in ("gunicorn", "bjoern", "granian", "flask", "django", "uvicorn", "hypercorn",
             "fastapi", "uvloop"):
    try:
        vs.append(f"{name} {m.version(name)}")
    except m.PackageNotFoundError:
        vs.append(f"{name} (missing)")
print("setup-bench-env: ready:", ", ".join(vs))
PY
