# The file sees the server's command line in sys.argv, as under Gunicorn.
import sys

proc_name = "argv:" + sys.argv[-1]
