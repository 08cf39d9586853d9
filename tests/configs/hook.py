# Server hooks are recognised and kept, and a warning says they are not called yet.


def post_fork(server, worker):
    server.log.info("forked %s", worker.pid)


on_exit = lambda server: None  # noqa: E731
