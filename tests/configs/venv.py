# Runs in the workers' virtualenv: its sys.prefix, and packages installed only there.
import sys

import flask  # noqa: F401 - installed in the test virtualenv only

proc_name = sys.prefix
