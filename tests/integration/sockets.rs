//! Listener kinds: unix:PATH, [v6]:PORT, several -b at once, fd://N.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::client::{parse_responses, request, Conn, Response};
use crate::harness::{Listener, Scratch, Server, ServerBuilder, IO_TIMEOUT};
use crate::json::Json;

fn get_over_unix(path: &Path, target: &str) -> Response {
    let mut stream =
        UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
        .write_all(&request("GET", target, &[("Connection", "close")], b""))
        .unwrap();
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .expect("read until the server closes");
    parse_responses(&bytes, &[]).expect("parse").remove(0)
}

#[test]
fn unix_socket_bind_serves_requests() {
    let scratch = Scratch::new("unix");
    let sock = scratch.path().join("rc.sock");
    let bind = format!("unix:{}", sock.display());
    let server = Server::start(&["-b", &bind, "--chdir", "tests/apps", "hello"]);
    assert_eq!(
        server.listeners,
        [Listener::Unix(sock.clone())],
        "log:\n{}",
        server.log()
    );
    assert!(
        server
            .log()
            .contains(&format!("Listening at: {bind} ({})", server.pid)),
        "log:\n{}",
        server.log()
    );
    for _ in 0..3 {
        let r = get_over_unix(&sock, "/");
        assert_eq!((r.status, r.text().as_str()), (200, "Hello!"));
    }
}

#[test]
fn several_binds_all_serve() {
    let scratch = Scratch::new("multi");
    let sock = scratch.path().join("rc.sock");
    let bind = format!("unix:{}", sock.display());
    let server = Server::start(&[
        "-b",
        "127.0.0.1:0",
        "--bind",
        &bind,
        "--chdir",
        "tests/apps",
        "hello",
    ]);
    assert_eq!(server.listeners.len(), 2, "log:\n{}", server.log());
    assert_eq!(
        Conn::open(server.port())
            .roundtrip(&request("GET", "/", &[("Connection", "close")], b""))
            .text(),
        "Hello!"
    );
    assert_eq!(get_over_unix(&sock, "/").text(), "Hello!");
}

#[test]
fn ipv6_loopback_bind_serves_and_reports_the_peer() {
    let server = Server::start(&["-b", "[::1]:0", "--chdir", "tests/apps", "echo_environ"]);
    let Some(Listener::Tcp(addr)) = server.listeners.first().cloned() else {
        panic!("no TCP listener; log:\n{}", server.log())
    };
    assert!(addr.is_ipv6(), "{addr}");
    let mut conn = Conn::try_open(addr).expect("connect [::1]");
    let r = conn.roundtrip(&request("GET", "/", &[("Connection", "close")], b""));
    assert_eq!(r.status, 200);
    assert_eq!(
        Json::parse(&r.text()).at("environ").str_at("REMOTE_ADDR"),
        "::1"
    );
}

/// Binds a listening socket in Python, makes it inheritable and execs
/// rustcorn with `fd://N` in place of `{fd}` (std can't clear CLOEXEC).
pub const FD_LAUNCHER: &str = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
s.set_inheritable(True)
args = [a.replace("{fd}", str(s.fileno())) for a in sys.argv[1:]]
os.execv(args[0], args)
"#;

#[test]
fn inherited_fd_bind_serves() {
    let server = ServerBuilder::new(&["-b", "fd://{fd}", "--chdir", "tests/apps", "hello"])
        .launcher(&["python3", "-c", FD_LAUNCHER])
        .start();
    let r =
        Conn::open(server.port()).roundtrip(&request("GET", "/", &[("Connection", "close")], b""));
    assert_eq!((r.status, r.text().as_str()), (200, "Hello!"));
}
