# Server hooks are recognised and shown by --print-config as their function names.


def post_fork(server, worker):
    server.log.info("forked %s", worker.pid)


on_exit = lambda server: None  # noqa: E731
