# Sourced: `find_python 3.X` prints the path of a working CPython 3.X interpreter —
# `python3.X` on PATH, else pyenv's newest 3.X — or fails. Each candidate is run, so a
# pyenv shim for a version that is not selected does not count.
find_python() {
    local version="$1" candidate
    local candidates=()
    candidate="$(command -v "python$version" 2>/dev/null)" && candidates+=("$candidate")
    while IFS= read -r candidate; do
        candidates+=("$candidate")
    done < <(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python3 2>/dev/null | sort -rV)
    for candidate in "${candidates[@]}"; do
        "$candidate" - "$version" 2>/dev/null <<'PY' && return 0
import sys
if "%d.%d" % sys.version_info[:2] != sys.argv[1] or sys.implementation.name != "cpython":
    sys.exit(1)
print(getattr(sys, "_base_executable", None) or sys.executable)
PY
    done
    return 1
}
