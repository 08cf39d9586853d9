#!/usr/bin/env bash
# Installs what scripts/build-wheels.sh put in dist/ the way a user would — `pip install`
# into a fresh virtualenv — for the `wheel::` integration tests:
#   $RUSTCORN_WHEEL_VENVS/3.X    one per CPython 3.X wheel, with Flask beside it
#   $RUSTCORN_WHEEL_VENVS/sdist  from the sdist, built from source by pip
# and puts the wheel matching the test venv ($RUSTCORN_TEST_VENV) into it, so the whole
# integration suite can run a second time against its `rustcorn` script.
#
#   PYTHON_VERSIONS       the wheels to install (default: "3.10 3.11 3.12 3.13")
#   RUSTCORN_WHEEL_VENVS  where the venvs go (default: <repo>/.venv-wheels)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
root="${RUSTCORN_WHEEL_VENVS:-$repo/.venv-wheels}"
test_venv="${RUSTCORN_TEST_VENV:-$repo/.venv-test}"
versions="${PYTHON_VERSIONS:-3.10 3.11 3.12 3.13}"
pip_quiet=(--quiet --disable-pip-version-check --no-input)

die() { echo "setup-wheel-venvs: $*" >&2; exit 1; }

# shellcheck source=scripts/find-python.sh
source "$repo/scripts/find-python.sh"

# The one wheel for CPython $1 in dist/.
wheel_for() {
    local tag="cp${1/./}" found=()
    shopt -s nullglob
    found=(dist/rustcorn-*-"$tag"-"$tag"-*.whl)
    shopt -u nullglob
    [[ ${#found[@]} -eq 1 ]] || die "want one $tag wheel in dist/, found ${#found[@]}: run scripts/build-wheels.sh"
    echo "$repo/${found[0]}"
}

mkdir -p "$root"
for version in $versions; do
    python="$(find_python "$version")" || die "CPython $version not found (see scripts/find-python.sh)"
    wheel="$(wheel_for "$version")"
    venv="$root/$version"
    rm -rf "$venv"
    "$python" -m venv "$venv" || die "$python -m venv $venv failed"
    "$venv/bin/python" -m pip install "${pip_quiet[@]}" "$wheel" "flask>=3,<4" \
        || die "pip install $wheel into $venv failed"
    echo "setup-wheel-venvs: $venv: $("$venv/bin/rustcorn" --version) on $("$venv/bin/python" --version)"
done

# The sdist, built by pip as on a machine with Rust. The dev profile and this checkout's
# target directory keep it to a rebuild of what changed: what is tested is that the
# sdist holds everything the build needs and that pip builds and installs it.
sdists=(dist/rustcorn-*.tar.gz)
[[ -f "${sdists[0]}" ]] || die "no sdist in dist/: run scripts/build-wheels.sh"
venv="$root/sdist"
rm -rf "$venv"
python3 -m venv "$venv" || die "python3 -m venv $venv failed"
CARGO_TARGET_DIR="$repo/target/sdist" MATURIN_PEP517_ARGS="--profile dev" \
    "$venv/bin/python" -m pip install "${pip_quiet[@]}" "$repo/${sdists[0]}" \
    || die "pip install ${sdists[0]} into $venv failed"
echo "setup-wheel-venvs: $venv: $("$venv/bin/rustcorn" --version) built from ${sdists[0]}"

# The test venv gets its version's wheel: `RUSTCORN_TEST_SERVER=$test_venv/bin/rustcorn`.
test_version="$("$test_venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    || die "no test venv at $test_venv: run scripts/setup-test-env.sh"
"$test_venv/bin/python" -m pip install "${pip_quiet[@]}" --force-reinstall --no-deps \
    "$(wheel_for "$test_version")" || die "pip install of the $test_version wheel into $test_venv failed"
echo "setup-wheel-venvs: $test_venv: $("$test_venv/bin/rustcorn" --version)"
