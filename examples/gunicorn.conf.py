# A Gunicorn config file; rustcorn reads it unchanged:
#
#     rustcorn -c examples/gunicorn.conf.py
#     gunicorn -c examples/gunicorn.conf.py
#
# Flags on the command line and in $GUNICORN_CMD_ARGS override what is set here.
import multiprocessing
import os

here = os.path.dirname(os.path.abspath(__file__))

# The app: examples/hello/wsgi.py, used when no APP_MODULE is given on the command line.
wsgi_app = "wsgi"
chdir = os.path.join(here, "hello")

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
timeout = 30
graceful_timeout = 30
keepalive = 2

accesslog = "-"
errorlog = "-"
loglevel = "info"
