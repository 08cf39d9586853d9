"""rustcorn: a pre-fork WSGI HTTP server for Python, Gunicorn's interface on a Rust core.

The server lives in the extension module ``rustcorn._rustcorn``, built from the same Rust
library as the ``rustcorn`` binary; ``main`` hands it the command line.
"""

import sys

from rustcorn._rustcorn import __version__, run

__all__ = ["__version__", "main", "run"]


def main():
    """The ``rustcorn`` console script and ``python -m rustcorn``."""
    sys.exit(run(sys.argv))
