"""The worker's functions, side by side, from callgrind outputs (scripts/symbol-order.sh).

    symbol_order.py write LIST SCRIPT BIN CALLGRIND_OUT...
    symbol_order.py check LIST BIN
    symbol_order.py script LIST    (the linker script again, on stdout)

`write` lists the functions of BIN each output ran (callgrind run with --demangle=no,
so its names are BIN's symbols), the first output's functions first, then what each
later one adds (each group sorted by name); and SCRIPT, the linker script
build.rs passes to the link: an output section `.text.worker` before `.text` holding
those functions' input sections (rustc puts each function in its own `.text.<symbol>`).
In the script each symbol's hash is a wildcard, so the list holds for the wheel's
extension module (another build of the same code, whose hashes differ) and for later
builds of functions that did not move. `check` says how many of the list's symbols BIN
still defines and fails below 80%: the rest no longer exist (renamed or moved).
"""

import re
import subprocess
import sys

# A callgrind function line, `fn=` or `cfn=`, with "(id)" and, the first time an id is
# used, the name.
NAME_LINE = re.compile(r"^(c?fn)=\((\d+)\)(?: (.*))?$")
MIN_PRESENT = 0.8
# The parts of a Rust symbol that change from build to build: the legacy mangling's
# trailing hash and the v0 mangling's crate disambiguators.
LEGACY_HASH = re.compile(r"17h[0-9a-f]{16}E$")
V0_CRATE = re.compile(r"C(s[0-9A-Za-z]*_)")


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
    """The functions a callgrind output charges cost to (its `fn=` lines; an id's name
    may first appear in a `cfn=` line, so both name it)."""
    names, run = {}, set()
    with open(path, errors="replace") as lines:
        for line in lines:
            match = NAME_LINE.match(line.rstrip("\n"))
            if not match or not match.group(1).endswith("fn"):
                continue
            kind, ident, name = match.groups()
            if name is not None:
                names[ident] = name
            if kind == "fn":
                run.add(names[ident])
    return run


def pattern(symbol):
    """The symbol with its build-specific parts as `*` (a linker script glob)."""
    symbol = LEGACY_HASH.sub("17h*E", symbol)
    if symbol.startswith("_R"):
        symbol = V0_CRATE.sub("Cs*_", symbol)
    return symbol


def linker_script(names):
    """`.text.worker`, the listed functions in order, placed before `.text`.

    Each name is a glob, its hash a wildcard, so the script holds for every build of
    the same code: this binary's, and the wheel's extension module's, whose hashes
    differ. A generic function's glob also takes its other instances, which the worker
    may not run (about 160 KB more in `.text.worker`); ordering the binary's exact
    names instead saved 0.1 MiB of a worker's RSS and left the wheel's worker no better
    than without the script.
    """
    lines = [
        "/* Written by scripts/symbol-order.sh: the functions a worker runs, side by side",
        "   (see build.rs). Regenerate it rather than editing it. */",
        "SECTIONS",
        "{",
        "  .text.worker : ALIGN(4096)",
        "  {",
    ]
    seen = set()
    for name in names:
        glob = pattern(name)
        if glob not in seen:
            seen.add(glob)
            # LLVM puts a function it deems cold in `.text.unlikely.<symbol>`.
            lines.append(f"    *(.text.{glob} .text.unlikely.{glob})")
    lines += ["  }", "}", "INSERT BEFORE .text;", ""]
    return "\n".join(lines)


def write(list_path, script_path, binary, outputs):
    symbols = text_symbols(binary)
    ordered = {}
    for output in outputs:
        # Sorted by name within each output: the whole group is run anyway, and a
        # regenerated list then differs only where functions did.
        added = sorted(
            {name for name in functions_run(output) if name in symbols} - set(ordered)
        )
        ordered.update(dict.fromkeys(added))
        print(f"symbol-order: {output}: {len(added)} functions added")
    with open(list_path, "w") as f:
        f.write("\n".join(ordered) + "\n")
    with open(script_path, "w") as f:
        f.write(linker_script(ordered))
    print(f"symbol-order: {len(ordered)} functions written to {list_path} and {script_path}")


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
    if len(argv) == 3 and argv[1] == "script":
        with open(argv[2]) as f:
            print(linker_script([line.strip() for line in f if line.strip()]), end="")
        return 0
    if len(argv) >= 5 and argv[1] == "write":
        write(argv[2], argv[3], argv[4], argv[5:])
        return 0
    if len(argv) == 4 and argv[1] == "check":
        return check(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
