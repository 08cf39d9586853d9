# A worker class rustcorn refuses.
worker_class = "gevent"
