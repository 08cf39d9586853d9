//! A retiring worker loses no request (Gunicorn 27.0.1, RFC 9112 §9.6): whatever
//! retires it — HUP, TERM, TTOU, `--max-requests`, `--reload` — its kept-alive
//! connections stay open for a short linger, and a request that a client sends on one
//! just after the event is answered, with `Connection: close`, before the connection
//! closes. Sync and gthread workers alike.

use std::path::Path;

use crate::client::{request, Conn};
use crate::harness::{signal, Scratch, Server, ServerBuilder, IO_TIMEOUT, STARTUP};

/// What retires the worker.
#[derive(Clone, Copy, Debug)]
enum Event {
    Hup,
    Term,
    Ttou,
    MaxRequests,
    Reload,
}

/// The app `--reload` watches: answers its worker's pid.
const RELOAD_APP: &str = "import os\n\
def application(environ, start_response):\n\
\x20   body = str(os.getpid()).encode()\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [body]\n";

/// The worker's debug line once it takes no new connections (its drain began).
fn draining_line(worker: u32) -> String {
    format!("Worker {worker} takes no new connections")
}

/// Starts one worker (`threads` app threads) with what `event` needs, at debug level.
fn start(event: Event, threads: &str, dir: &Path) -> Server {
    let dir = dir.to_str().unwrap();
    let mut args = vec![
        "-b",
        "127.0.0.1:0",
        "--log-level",
        "debug",
        "--keep-alive",
        "60",
        "--graceful-timeout",
        "60",
        "--threads",
        threads,
    ];
    match event {
        Event::MaxRequests => args.extend(["--max-requests", "2"]),
        Event::Reload => args.extend(["--reload", "--reload-engine", "poll"]),
        _ => {}
    }
    match event {
        Event::Reload => args.extend(["--chdir", dir, "app:application"]),
        _ => args.extend(["--chdir", "tests/apps", "basics:application"]),
    }
    let mut server = ServerBuilder::new(&args).start();
    if let Event::Reload = event {
        server.wait_for_log("Reloader watching ", STARTUP);
    }
    server
}

/// `GET /pid` on `conn`; the answer's status, `Connection` header and pid.
fn ask_pid(conn: &mut Conn) -> (u16, Option<String>, u32) {
    let r = conn.roundtrip(&request("GET", "/pid", &[], b""));
    let pid = r.text().trim().parse().unwrap_or(0);
    (
        r.status,
        r.header("Connection").map(str::to_ascii_lowercase),
        pid,
    )
}

/// Makes `event` happen to `server`, whose only worker (so far) is `worker`.
fn trigger(event: Event, server: &mut Server, dir: &Path) {
    match event {
        Event::Hup => signal(server.pid, "HUP"),
        Event::Term => signal(server.pid, "TERM"),
        Event::Ttou => {
            // A younger worker first, so TTOU retires the one holding the connection.
            signal(server.pid, "TTIN");
            server.wait_for(STARTUP, "a second worker", |log| {
                crate::harness::booted_pids(log).len() >= 2
            });
            signal(server.pid, "TTOU");
        }
        Event::MaxRequests => {
            // The second request is the worker's last; another connection asks it.
            let mut other = Conn::open(server.port());
            let (status, connection, _) = ask_pid(&mut other);
            assert_eq!((status, connection.as_deref()), (200, Some("close")));
        }
        Event::Reload => {
            let source = format!("{RELOAD_APP}# edited\n");
            std::fs::write(dir.join("app.py"), source).unwrap();
        }
    }
}

fn request_after(event: Event, threads: &str) {
    let scratch = Scratch::new("retire");
    std::fs::write(scratch.path().join("app.py"), RELOAD_APP).unwrap();
    let mut server = start(event, threads, scratch.path());
    let mut conn = Conn::open(server.port());
    let (status, connection, worker) = ask_pid(&mut conn);
    assert_eq!(status, 200);
    assert_ne!(
        connection.as_deref(),
        Some("close"),
        "{event:?}: kept alive first"
    );
    let mark = server.log_mark();
    trigger(event, &mut server, scratch.path());
    server.wait_for_log_since(mark, &draining_line(worker), STARTUP);
    // The client reuses its connection now, as one following a redirect would.
    let (status, connection, pid) = ask_pid(&mut conn);
    assert_eq!(
        (status, connection.as_deref(), pid),
        (200, Some("close"), worker),
        "{event:?} with {threads} thread(s): the request after the event; log:\n{}",
        server.log()
    );
    assert!(
        conn.closed_within(IO_TIMEOUT),
        "{event:?}: the connection stayed open after `Connection: close`"
    );
}

/// An idle kept-alive connection with no request closes once the linger is over,
/// and the worker then exits (it is not held up by idle clients).
#[test]
fn an_idle_kept_alive_connection_closes_after_the_linger_and_the_worker_exits() {
    let scratch = Scratch::new("retire-idle");
    let mut server = start(Event::Hup, "1", scratch.path());
    let mut conn = Conn::open(server.port());
    let (_, _, worker) = ask_pid(&mut conn);
    signal(server.pid, "HUP");
    server.wait_for_log(&draining_line(worker), STARTUP);
    assert!(
        conn.closed_within(IO_TIMEOUT),
        "the idle connection stayed open"
    );
    server.wait_for_log(&format!("Worker exiting (pid: {worker})"), STARTUP);
}

macro_rules! retirement_tests {
    ($($name:ident => $event:expr),* $(,)?) => {$(
        /// The request sent on a kept-alive connection just after the event is answered.
        mod $name {
            #[test]
            fn sync() {
                super::request_after($event, "1");
            }

            #[test]
            fn gthread() {
                super::request_after($event, "2");
            }
        }
    )*};
}

retirement_tests! {
    after_hup => super::Event::Hup,
    after_term => super::Event::Term,
    after_ttou => super::Event::Ttou,
    after_max_requests => super::Event::MaxRequests,
    after_reload => super::Event::Reload,
}
