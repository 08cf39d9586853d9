# Strings; None keeps the default.
worker_class = "gthread"
loglevel = "debug"
proc_name = "corpus"
accesslog = None
pythonpath = "/srv/a,/srv/b"
