"""The files `--reload` watches, as Gunicorn's reloader lists them: the source file of
every module in sys.modules (compiled names mapped back to their .py), then the glob
patterns of --reload-extra-file, expanded again on every call so that files created
after boot are watched too."""

import glob
import re
import sys

_COMPILED = re.compile(r"py[co]$")


def files(patterns):
    names = []
    for module in tuple(sys.modules.values()):
        try:
            name = getattr(module, "__file__", None)
        except Exception:
            continue
        if isinstance(name, str) and name:
            names.append(_COMPILED.sub("py", name))
    for pattern in patterns:
        names.extend(sorted(glob.glob(pattern, recursive=True)))
    return names
