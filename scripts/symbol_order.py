"""The symbol ordering list for lld, from callgrind outputs (scripts/symbol-order.sh).

    symbol_order.py write LIST BIN CALLGRIND_OUT...
    symbol_order.py check LIST BIN

`write` lists the functions of BIN each output ran (callgrind run with --demangle=no,
so its names are BIN's symbols), the first output's functions first, then what each
later one adds, each in the order callgrind first met it. `check` says how many of the
list's symbols BIN still defines and fails below 80%: the rest no longer exist (renamed
or changed), and lld skips them, losing their locality.
"""

import re
import subprocess
import sys

# A callgrind name line: `ob=`, `fn=`, `cfn=`, ... with "(id)" and, the first time an
# id is used, the name.
NAME_LINE = re.compile(r"^(c?ob|c?fn|c?fl|c?fi|c?fe)=\((\d+)\)(?: (.*))?$")
MIN_PRESENT = 0.8


def text_symbols(binary):
    """The names of BIN's functions (text symbols, local or global)."""
    out = subprocess.run(
        ["nm", "--defined-only", binary], capture_output=True, text=True, check=True
    ).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("t", "T"):
            names.add(parts[2])
    return names


def functions_run(path):
    """The functions a callgrind output charges cost to, in the order first met."""
    objects, functions = {}, {}
    current_object = None
    found = {}
    with open(path, errors="replace") as lines:
        for line in lines:
            match = NAME_LINE.match(line.rstrip("\n"))
            if not match:
                continue
            kind, ident, name = match.groups()
            if kind.endswith("ob"):
                table = objects
            elif kind.endswith("fn"):
                table = functions
            else:
                continue
            if name is not None:
                table[ident] = name
            if kind == "ob":
                current_object = objects.get(ident)
            elif kind == "fn":
                found.setdefault((current_object, functions[ident]), None)
    return list(found)


def write(list_path, binary, outputs):
    symbols = text_symbols(binary)
    ordered = {}
    for output in outputs:
        added = 0
        for _object, name in functions_run(output):
            if name in symbols and name not in ordered:
                ordered[name] = None
                added += 1
        print(f"symbol-order: {output}: {added} functions added")
    with open(list_path, "w") as f:
        f.write("\n".join(ordered) + "\n")
    print(f"symbol-order: {len(ordered)} functions written to {list_path}")


def check(list_path, binary):
    with open(list_path) as f:
        listed = [line.strip() for line in f if line.strip()]
    if not listed:
        print(f"symbol-order: {list_path} is empty", file=sys.stderr)
        return 1
    present = sum(1 for name in listed if name in text_symbols(binary))
    share = present / len(listed)
    print(f"symbol-order: {present} of the {len(listed)} listed functions are in {binary} ({share:.0%})")
    if share < MIN_PRESENT:
        print(
            "symbol-order: the list is stale: run scripts/symbol-order.sh on a release build"
            " and commit link/symbol-order.txt",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "write":
        write(argv[2], argv[3], argv[4:])
        return 0
    if len(argv) == 4 and argv[1] == "check":
        return check(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
