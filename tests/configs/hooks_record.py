# Every server hook rustcorn calls, each appending one line to $HOOKS_RECORD:
# the hook's name and the attributes it read (tests/integration/hooks.rs).
import os

workers = 2
bind = os.environ.get("HOOKS_BIND", "127.0.0.1:0")
raw_env = ["HOOKS_GREETING=" + os.environ.get("HOOKS_GREETING_VALUE", "hello")]


def record(*fields):
    with open(os.environ["HOOKS_RECORD"], "a") as f:
        f.write(" ".join(str(x) for x in fields) + "\n")


def on_starting(server):
    record("on_starting", server.pid == os.getpid(), server.cfg.workers, server.cfg.proc_name)


def when_ready(server):
    server.log.info("when_ready hook ran (%s workers)", server.num_workers)
    record("when_ready", server.pid, server.num_workers, server.cfg.bind)


def on_reload(server):
    record("on_reload", server.pid, server.cfg.workers)


def nworkers_changed(server, new_value, old_value):
    record("nworkers_changed", new_value, old_value)


def pre_fork(server, worker):
    record("pre_fork", server.pid, worker.age, worker.pid)


def post_fork(server, worker):
    record("post_fork", server.pid, worker.age, worker.pid == os.getpid(), worker.ppid == server.pid)


def post_worker_init(worker):
    record("post_worker_init", worker.pid, worker.age, worker.alive, worker.cfg.timeout)


def pre_request(worker, req):
    if req.path == "/hook-raises":
        raise RuntimeError("pre_request refuses " + req.path)
    record("pre_request", worker.pid, req.method, req.path, req.query, req.uri,
           req.version, dict(req.headers).get("X-HOOK-TEST"))


def post_request(worker, req, environ, resp):
    record("post_request", worker.pid, req.path, environ.get("PATH_INFO"), resp.status,
           resp.status_code, dict(resp.headers).get("Content-Type"), resp.sent)


def worker_int(worker):
    record("worker_int", worker.pid, worker.alive)


def worker_abort(worker):
    record("worker_abort", worker.pid)


def child_exit(server, worker):
    record("child_exit", server.pid, worker.pid, worker.age)


def worker_exit(server, worker):
    record("worker_exit", server.pid, worker.pid)


def on_exit(server):
    record("on_exit", server.pid)


def pre_exec(server):
    record("pre_exec", server.pid)
