# An exception while the file runs.
import os
workers = int(os.environ["RUSTCORN_TEST_NO_SUCH_VARIABLE"])
