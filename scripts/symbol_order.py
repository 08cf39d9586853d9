"""The worker's functions, side by side, from callgrind outputs (scripts/symbol-order.sh).

    symbol_order.py write LIST SCRIPT GROUP...
    symbol_order.py check LIST OBJECT
    symbol_order.py script LIST    (the linker script again, on stdout)

Each GROUP is one worker class's runs, `OBJECT=CALLGRIND_OUT[,OBJECT=CALLGRIND_OUT...]`:
OBJECT the artifact a run profiled, the binary or a wheel's extension module (a `.so`,
one per CPython version), unstripped and built without the script (callgrind names no
function of `.text.worker`). `write` lists, as patterns (a symbol with its
build-specific parts as `*`), the functions of each OBJECT its run executed: the first
group's first, then what each later group adds. Each line is `WHERE PATTERN`, WHERE
the artifacts that ran it, comma-separated (`binary`, and `cp310`, `cp311`, ... for
the extension modules, named by the version in the module's file name). Within a group
the functions every artifact ran come first, and the rest are kept together by who ran
them, so a worker's functions are as few 64 KiB fault-around windows as the union
allows; by name within that, so a regenerated list differs only where functions did.
SCRIPT is the linker script build.rs passes to the link: an output section
`.text.worker` before `.text` holding those functions' input sections (rustc puts each
function in its own `.text.<symbol>`). The patterns make it hold for both artifacts
(two builds of the same code, whose hashes differ) and for later builds of functions
that did not move. `check` says how many of the patterns the list has for OBJECT (the
binary, or an extension module of a version: every version's when the list has none of
its own) match one of OBJECT's functions, and fails below 80%: the rest no longer exist.
"""

import re
import subprocess
import sys

# A callgrind function line, `fn=` or `cfn=`, with "(id)" and, the first time an id is
# used, the name.
NAME_LINE = re.compile(r"^(c?fn)=\((\d+)\)(?: (.*))?$")
MIN_PRESENT = 0.8
# The parts of a Rust symbol that change from build to build: the legacy mangling's
# trailing hash, the v0 mangling's crate disambiguators, and the `.<n>` LLVM appends to
# a local symbol whose name another one already took (`write_str.343` in the binary is
# `write_str.4865` in the wheel).
LEGACY_HASH = re.compile(r"17h[0-9a-f]{16}E$")
V0_CRATE = re.compile(r"C(s[0-9A-Za-z]*_)")
LOCAL_SUFFIX = re.compile(r"\.[0-9]+$")
# Which artifacts ran a function, as the list's first column says it: the binary, or
# the extension module of one CPython version (`_rustcorn.cpython-313-x86_64-linux-gnu.so`
# is `cp313`).
BINARY = "binary"
ARTIFACT = re.compile(r"^(binary|cp3[0-9]+)$")
MODULE_VERSION = re.compile(r"\.cpython-(3[0-9]+)")


def kind(obj):
    """`binary`, or `cp3X` for an extension module (a shared library) of CPython 3.X."""
    if not obj.endswith(".so"):
        return BINARY
    version = MODULE_VERSION.search(obj.rsplit("/", 1)[-1])
    if not version:
        raise SystemExit(f"symbol-order: {obj}: no CPython version in the module's name")
    return f"cp{version.group(1)}"


def text_symbols(obj):
    """The names of OBJECT's functions (text symbols, local or global)."""
    out = subprocess.run(
        ["nm", "--defined-only", obj], capture_output=True, text=True, check=True
    ).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("t", "T"):
            names.add(parts[2])
    if not names:
        raise SystemExit(
            f"symbol-order: {obj} has no symbol table (stripped?): use a build made with"
            " `--strip false` (maturin) or the release profile (the binary)"
        )
    return names


def functions_run(path):
    """The functions a callgrind output charges cost to (its `fn=` lines; an id's name
    may first appear in a `cfn=` line, so both name it)."""
    names, run = {}, set()
    with open(path, errors="replace") as lines:
        for line in lines:
            match = NAME_LINE.match(line.rstrip("\n"))
            if not match:
                continue
            kind_, ident, name = match.groups()
            if name is not None:
                names[ident] = name
            if kind_ == "fn":
                run.add(names[ident])
    return run


def pattern(symbol):
    """The symbol with its build-specific parts as `*` (a linker script glob)."""
    local = LOCAL_SUFFIX.search(symbol)
    if local:
        symbol = symbol[: local.start()]
    symbol = LEGACY_HASH.sub("17h*E", symbol)
    if symbol.startswith("_R"):
        symbol = V0_CRATE.sub("Cs*_", symbol)
    return symbol + "*" if local else symbol


def read_list(path):
    """The list's (artifacts, pattern) pairs, in order."""
    entries = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            kinds = parts[0].split(",") if len(parts) == 2 else []
            if kinds and all(ARTIFACT.match(k) for k in kinds):
                entries.append((kinds, parts[1]))
            elif parts:
                raise SystemExit(f"symbol-order: {path}: not `WHERE PATTERN`: {line.strip()}")
    return entries


def linker_script(patterns):
    """`.text.worker`, the listed functions in order, placed before `.text`.

    Each pattern's hash is a wildcard, so the script holds for every build of the same
    code: the binary's, and the wheel's extension module's, whose hashes differ. A
    legacy-mangled generic function's glob also takes its other instances, which the
    worker may not run (about 160 KB more in `.text.worker`); ordering the binary's
    exact names instead saved 0.1 MiB of a worker's RSS and left the wheel's worker no
    better than without the script.
    """
    lines = [
        "/* Written by scripts/symbol-order.sh: the functions a worker runs, side by side",
        "   (see build.rs). Regenerate it rather than editing it. */",
        "SECTIONS",
        "{",
        "  .text.worker : ALIGN(4096)",
        "  {",
    ]
    for glob in patterns:
        # LLVM puts a function it deems cold in `.text.unlikely.<symbol>`.
        lines.append(f"    *(.text.{glob} .text.unlikely.{glob})")
    lines += ["  }", "}", "INSERT BEFORE .text;", ""]
    return "\n".join(lines)


def group_patterns(group):
    """{pattern: set of kinds} of the functions one group's runs executed, and the kinds
    in the order of the runs."""
    found, kinds = {}, []
    for run in group.split(","):
        obj, sep, output = run.partition("=")
        if not sep:
            raise SystemExit(f"symbol-order: not OBJECT=CALLGRIND_OUT: {run}")
        symbols = text_symbols(obj)
        names = {name for name in functions_run(output) if name in symbols}
        for name in names:
            found.setdefault(pattern(name), set()).add(kind(obj))
        kinds.append(kind(obj))
        print(f"symbol-order: {output}: {len(names)} functions of {obj}")
    return found, kinds


def by_who_ran_it(artifacts, found):
    """A sort key for a group's patterns: those every artifact ran first, then the rest
    kept together by which artifacts ran them (lexicographic on "ran it", in the order the
    artifacts were profiled), by name within each."""
    return lambda glob: ([a not in found[glob] for a in artifacts], glob)


def write(list_path, script_path, groups):
    where, artifacts = {}, []
    for group in groups:
        found, kinds = group_patterns(group)
        artifacts += [k for k in kinds if k not in artifacts]
        added = sorted(set(found) - set(where), key=by_who_ran_it(artifacts, found))
        where.update((glob, set()) for glob in added)
        for glob, ran in found.items():
            where[glob].update(ran)
        print(f"symbol-order: {len(added)} functions added")
    with open(list_path, "w") as f:
        for glob, kinds in where.items():
            ran = ",".join(a for a in artifacts if a in kinds)
            f.write(f"{ran} {glob}\n")
    with open(script_path, "w") as f:
        f.write(linker_script(where))
    print(f"symbol-order: {len(where)} functions written to {list_path} and {script_path}")


def check(list_path, obj):
    entries, own = read_list(list_path), kind(obj)
    listed = [glob for kinds, glob in entries if own in kinds]
    if not listed and own != BINARY:
        # A version the list was not profiled on: what any version's module ran.
        listed = [glob for kinds, glob in entries if any(k != BINARY for k in kinds)]
    if not listed:
        print(f"symbol-order: {list_path} names no function of a {own}", file=sys.stderr)
        return 1
    have = {pattern(name) for name in text_symbols(obj)}
    present = sum(1 for glob in listed if glob in have)
    share = present / len(listed)
    print(
        f"symbol-order: {present} of the {len(listed)} functions listed for the"
        f" {own} are in {obj} ({share:.0%})"
    )
    if share < MIN_PRESENT:
        print(
            "symbol-order: the list is stale: run scripts/symbol-order.sh on unordered"
            " release builds and commit link/symbol-order.txt and link/worker-text.ld",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "script":
        print(linker_script([glob for _, glob in read_list(argv[2])]), end="")
        return 0
    if len(argv) >= 5 and argv[1] == "write":
        write(argv[2], argv[3], argv[4:])
        return 0
    if len(argv) == 4 and argv[1] == "check":
        return check(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
