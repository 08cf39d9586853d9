"""Run a WSGI app under bjoern for benches/compare.sh.

    python run_bjoern.py PORT MODULE:APP

bjoern is single-process and has no CLI of its own; this imports MODULE from
the current directory (compare.sh starts it from benches/apps) and serves APP
on 127.0.0.1:PORT until SIGTERM.
"""

import importlib
import os
import signal
import sys


def main() -> int:
    if len(sys.argv) != 3 or ":" not in sys.argv[2]:
        print("usage: run_bjoern.py PORT MODULE:APP", file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    module_name, _, attr = sys.argv[2].partition(":")
    sys.path.insert(0, os.getcwd())
    app = getattr(importlib.import_module(module_name), attr)

    import bjoern  # imported late so a usage error does not need bjoern

    # SIGTERM (how compare.sh stops it) keeps its default action: the process
    # ends at once. bjoern has no graceful shutdown to wait for.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    print(f"bjoern listening at: http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    bjoern.run(app, "127.0.0.1", port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
