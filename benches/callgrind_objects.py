"""Per-request instructions split by ELF object, from two callgrind outputs.

    python3 callgrind_objects.py FEW_FILE MANY_FILE REQUESTS [TOP]

benches/instructions.sh (INSTRUCTIONS_BY_OBJECT=1) calls it with the worker's
callgrind files of its two runs and the number of requests between them. Each
file's self cost (what `callgrind_annotate --inclusive=no` shows per function) is
summed by the object the function lives in (the `ob=` lines); the difference of the
two sums, divided by REQUESTS, is what one request costs in each object, so start-up
and shutdown cancel out as in the total. With TOP, the TOP functions by the same
per-request self cost follow. Callgrind sees user space only: the kernel's share of a
request (syscalls, TCP) is not in these figures.
"""

import collections
import os
import sys


def self_cost_by_function(path):
    """{(object, function): Ir} over every cost line that is not a call's inclusive cost."""
    names = {"ob": {}, "fn": {}}
    totals = collections.Counter()
    obj, fn = "?", "?"
    skip_next_cost = False
    with open(path) as f:
        for line in f:
            if line.startswith("ob="):
                obj = resolve(names["ob"], line[3:].strip())
            elif line.startswith("fn="):
                fn = resolve(names["fn"], line[3:].strip())
            elif line.startswith("cob="):
                resolve(names["ob"], line[4:].strip())  # a name first given for a callee
            elif line.startswith("cfn="):
                resolve(names["fn"], line[4:].strip())
            elif line.startswith("calls="):
                skip_next_cost = True  # the next cost line is the callee's inclusive cost
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip_next_cost:
                    skip_next_cost = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    totals[(obj, fn)] += int(fields[1])
    return totals


def resolve(names, spec):
    """An `ob=`/`fn=` value, "(id) name" or "(id)" (compressed) or "name", to the name."""
    if spec.startswith("("):
        ident, _, name = spec.partition(")")
        name = name.strip()
        if name:
            names[ident] = name
        return names.get(ident, spec)
    return spec


def label(path):
    base = os.path.basename(path)
    prefixes = [
        ("libpython", "libpython"),
        ("libc.so", "libc, libm"),
        ("libm.so", "libc, libm"),
        ("ld-linux", "ld.so"),
        ("_bjoern", "bjoern (_bjoern.so)"),
        ("libev", "libev"),
        ("vgpreload", "valgrind preload"),
    ]
    for prefix, name in prefixes:
        if base.startswith(prefix):
            return name
    if ".cpython-" in base:
        return "Python extension modules"
    return base


def main():
    few, many, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    a, b = self_cost_by_function(few), self_cost_by_function(many)
    per_fn = collections.Counter({k: b[k] - a[k] for k in set(a) | set(b)})
    by_obj = collections.Counter()
    for (obj, _), ir in per_fn.items():
        by_obj[label(obj)] += ir
    total = sum(by_obj.values())
    print("instructions: per request by object (self cost, user space only):")
    for name, ir in by_obj.most_common():
        if abs(ir) / requests >= 1:
            print("  %-28s %9.0f  %5.1f%%" % (name, ir / requests, 100.0 * ir / total))
    print("  %-28s %9.0f" % ("total", total / requests))
    if top:
        print("instructions: top %d functions per request (self cost):" % top)
        for (obj, fn), ir in per_fn.most_common(top):
            print("  %8.0f  %-22s %s" % (ir / requests, label(obj)[:22], fn[:110]))


if __name__ == "__main__":
    main()
