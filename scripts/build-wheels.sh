#!/usr/bin/env bash
# Builds what `pip install rustcorn` installs, into dist/: one wheel per CPython
# 3.10–3.13, tagged manylinux_2_28 (built with maturin's --zig against glibc 2.28, so pip
# on other glibc distributions accepts them, and checked with auditwheel), and the sdist.
#
#   PYTHON_VERSIONS  which minor versions to build (default: "3.10 3.11 3.12 3.13")
#   RUSTCORN_TOOLS_VENV  venv holding maturin, ziglang and auditwheel, made here when
#                        missing (default: <repo>/.venv-tools)
#
# Each interpreter is `python3.X` on PATH, else pyenv's newest 3.X. A version that cannot
# be found is reported and the script fails: a wheel is never skipped silently.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

tools="${RUSTCORN_TOOLS_VENV:-$repo/.venv-tools}"
versions="${PYTHON_VERSIONS:-3.10 3.11 3.12 3.13}"
# The manylinux policy the wheels are built for and checked against.
policy=manylinux_2_28
tool_pins=("maturin==1.16.0" "ziglang==0.17.1" "auditwheel==6.8.2")

die() { echo "build-wheels: $*" >&2; exit 1; }

"$repo/scripts/setup-tools.sh" "$tools" "${tool_pins[@]}"
export PATH="$tools/bin:$PATH"

# shellcheck source=scripts/find-python.sh
source "$repo/scripts/find-python.sh"

interpreters=()
missing=()
for version in $versions; do
    if python="$(find_python "$version")"; then
        echo "build-wheels: CPython $version: $python"
        interpreters+=("$python")
    else
        echo "build-wheels: CPython $version: NOT FOUND (no python$version on PATH, none under ~/.pyenv/versions)" >&2
        missing+=("$version")
    fi
done
[[ ${#missing[@]} -eq 0 ]] || die "missing interpreters: ${missing[*]}"

mkdir -p dist
rm -f dist/rustcorn-*.tar.gz
for python in "${interpreters[@]}"; do
    start=$SECONDS
    tag="$("$python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
    rm -f dist/rustcorn-*-"$tag"-"$tag"-*.whl
    maturin build --release --zig --compatibility "$policy" --interpreter "$python" \
        --out dist --quiet || die "maturin build for $python failed"
    echo "build-wheels: built for $python in $((SECONDS - start)) s"
done
maturin sdist --out dist || die "maturin sdist failed"

# auditwheel confirms each tag from the symbols the wheel really uses.
for wheel in dist/rustcorn-*.whl; do
    report="$(auditwheel show "$wheel")" || die "auditwheel show $wheel failed"
    grep -q "consistent" <<<"$report" || die "auditwheel: $wheel: $report"
    grep -qE "platform tag: \"manylinux_2_(28|2[0-7]|1[0-9]|[5-9])_x86_64\"|platform tag: \"manylinux(1|2010|2014)_x86_64\"" <<<"$report" \
        || die "auditwheel: $wheel is not $policy or older: $report"
    echo "build-wheels: $(basename "$wheel"): auditwheel: $(grep -o 'platform tag: "[^"]*"' <<<"$report")"
done
ls -l dist/
