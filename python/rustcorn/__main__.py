"""``python -m rustcorn``: the same command line as the ``rustcorn`` script."""

from rustcorn import main

main()
