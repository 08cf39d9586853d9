//! systemd: socket activation through `systemd-socket-activate` (the master serves on
//! the inherited socket and binds nothing itself) and sd_notify to a datagram socket
//! the test owns: `READY=1` once the workers serve, `RELOADING=1`/`READY=1` around a
//! HUP, `STOPPING=1` on TERM, and `MAINPID=` when a USR2 child takes over.

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::client::{parse_responses, request, Response};
use crate::harness::{
    process_alive, signal, wait_until, Scratch, Server, ServerBuilder, EXIT_TIMEOUT, STARTUP,
};

const ACTIVATE: &str = "/usr/bin/systemd-socket-activate";

/// A unix datagram socket standing in for systemd's notify socket.
pub struct NotifySocket {
    socket: UnixDatagram,
    pub path: PathBuf,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket { socket, path }
    }

    /// The path, for `NOTIFY_SOCKET`.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Reads messages until one has the line `line`; returns the messages read (in
    /// order). Panics, saying what came, after `STARTUP`.
    pub fn wait_for(&self, line: &str) -> Vec<String> {
        let deadline = Instant::now() + STARTUP;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {line:?} notification within {STARTUP:?}; got {seen:?}"
            );
            self.socket.set_read_timeout(Some(left)).unwrap();
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = msg.lines().any(|l| l == line);
                seen.push(msg);
                if done {
                    return seen;
                }
            }
        }
    }

    /// Messages already queued, without waiting.
    pub fn pending(&self) -> Vec<String> {
        self.socket.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.socket.set_nonblocking(false).unwrap();
        out
    }
}

/// Debian's `systemd` package provides the tool (scripts/setup-test-env.sh installs
/// it); without it the test fails saying so.
fn require_socket_activate() {
    assert!(
        Path::new(ACTIVATE).exists(),
        "{ACTIVATE} is missing: run scripts/setup-test-env.sh (installs Debian's systemd package)"
    );
}

/// `GET target` over the unix socket; waits up to `STARTUP` for the answer (the first
/// connection is what starts a socket-activated server).
pub fn get_over_unix(path: &Path, target: &str) -> Response {
    let mut stream =
        UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
    stream.set_read_timeout(Some(STARTUP)).unwrap();
    stream
        .write_all(&request("GET", target, &[("Connection", "close")], b""))
        .unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read the answer");
    parse_responses(&bytes, &[]).expect("parse").remove(0)
}

/// Starts `rustcorn args` under systemd-socket-activate listening on `sock`, with
/// `NOTIFY_SOCKET`, and makes the first connection that starts it; returns the server
/// once its workers booted, and the first answer.
fn activate(
    sock: &Path,
    notify: &NotifySocket,
    args: &[&str],
    workers: usize,
) -> (Server, Response) {
    require_socket_activate();
    let sock_arg = sock.display().to_string();
    let mut launcher = vec![ACTIVATE, "-l", &sock_arg];
    for var in [
        "VIRTUAL_ENV",
        "PATH",
        "PYTHONDONTWRITEBYTECODE",
        "NOTIFY_SOCKET",
    ] {
        launcher.extend(["-E", var]);
    }
    let mut server = ServerBuilder::new(args)
        .launcher(&launcher)
        .env("NOTIFY_SOCKET", &notify.name())
        .spawn();
    wait_until(STARTUP, "systemd-socket-activate to listen", || {
        sock.exists()
    });
    let first = get_over_unix(sock, "/pid");
    server.wait_for(STARTUP, "the workers to boot", |log| {
        log.matches("Booting worker with pid: ").count() >= workers
    });
    (server, first)
}

#[test]
fn socket_activated_server_serves_the_inherited_socket_and_notifies_its_lifecycle() {
    let scratch = Scratch::new("sd");
    let sock = scratch.path().join("s.sock");
    let notify = NotifySocket::bind(scratch.path());
    // No --bind: the default 127.0.0.1:8000 must not be bound beside systemd's socket.
    let args = ["--chdir", "tests/apps", "--workers=2", "basics:application"];
    let (mut server, first) = activate(&sock, &notify, &args, 2);
    assert_eq!(first.status, 200, "{first:?}");
    let log = server.log();
    assert!(
        log.contains(&format!(
            "Listening at: unix:{} ({})",
            sock.display(),
            server.pid
        )),
        "log:\n{log}"
    );
    assert!(
        !log.contains("127.0.0.1:8000"),
        "bound the default address; log:\n{log}"
    );
    notify.wait_for("READY=1");

    let mark = server.log_mark();
    signal(server.pid, "HUP");
    let reload = notify.wait_for("READY=1");
    assert!(
        reload[0].lines().any(|l| l == "RELOADING=1"),
        "want RELOADING=1 before READY=1, got {reload:?}"
    );
    let booted_after_hup = server.log()[mark..].matches("Booting worker").count();
    assert_eq!(booted_after_hup, 2, "READY=1 before the new workers booted");
    assert_eq!(get_over_unix(&sock, "/pid").status, 200);

    signal(server.pid, "TERM");
    notify.wait_for("STOPPING=1");
    let status = server
        .wait_exit(EXIT_TIMEOUT)
        .expect("master exits after TERM");
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    assert!(sock.exists(), "systemd's socket file was removed");
}

/// The pid in every `Listening at: … (PID)` line, first occurrence order.
pub fn master_pids(log: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for line in log.lines().filter(|l| l.contains("Listening at: ")) {
        let pid = line
            .rsplit_once('(')
            .and_then(|(_, p)| p.trim_end_matches(')').parse().ok());
        if let Some(pid) = pid.filter(|p| !pids.contains(p)) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn usr2_under_socket_activation_hands_the_socket_and_mainpid_to_the_new_master() {
    let scratch = Scratch::new("sd2");
    let sock = scratch.path().join("s.sock");
    let notify = NotifySocket::bind(scratch.path());
    let args = ["--chdir", "tests/apps", "--workers=1", "basics:application"];
    let (mut server, _) = activate(&sock, &notify, &args, 1);
    notify.wait_for("READY=1");
    signal(server.pid, "USR2");
    server.wait_for(STARTUP, "a new master and its worker", |log| {
        master_pids(log).len() >= 2 && log.matches("Booting worker with pid: ").count() >= 2
    });
    let new_master = master_pids(&server.log())[1];
    // The new master inherited systemd's socket, not a copy bound anew.
    let log = server.log();
    assert!(
        log.contains(&format!(
            "Listening at: unix:{} ({new_master})",
            sock.display()
        )),
        "log:\n{log}"
    );
    // Not yet promoted, it speaks for nobody.
    assert_eq!(notify.pending(), Vec::<String>::new());

    signal(server.pid, "TERM");
    let handover = notify.wait_for(&format!("MAINPID={new_master}"));
    assert!(
        !handover
            .iter()
            .any(|m| m.contains("STOPPING=1") || m.contains("READY=1")),
        "STOPPING=1 from the old master or READY=1 from the unpromoted new one: {handover:?}"
    );
    server.wait_exit(EXIT_TIMEOUT).expect("old master exits");
    server.wait_for_log("Master has been promoted.", STARTUP);
    let r = get_over_unix(&sock, "/pid");
    assert_eq!(r.status, 200);
    assert_ne!(r.text(), "", "{r:?}");

    signal(new_master, "TERM");
    notify.wait_for("STOPPING=1");
    wait_until(EXIT_TIMEOUT, "the new master to exit", || {
        !process_alive(new_master)
    });
    assert!(sock.exists(), "systemd's socket file was removed");
}

#[test]
fn listen_pid_of_another_process_is_ignored_and_the_configured_bind_serves() {
    // LISTEN_PID names some other process: the variables are not for us.
    let server = ServerBuilder::new(&crate::harness::app_args("hello", &[]))
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .start();
    let r = crate::client::get(server.port(), "/");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello!"));
}
