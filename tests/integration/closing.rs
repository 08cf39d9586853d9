//! How connections end, and the socket options they carry: a response is never
//! destroyed by a reset the server caused, and Nagle's algorithm is off on every
//! accepted TCP connection.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::client::{read_response, request, Conn};
use crate::harness::{serve, Server, ServerBuilder, STARTUP};
use crate::sockets::FD_LAUNCHER;

const BASICS: &str = "basics:application";

/// The server closes a connection its client meant to keep (`--keep-alive 0`), and
/// the client sends its next request while the app is still answering the first.
/// The server must read it before it closes: closing a socket with unread bytes makes
/// the kernel send a reset, which ends the client's read with an error instead of the
/// end of the answer (and can destroy the answer in flight).
fn next_request_sent_during_the_app_call_does_not_reset_the_answer(extra: &[&str]) {
    let mut args = vec!["--keep-alive", "0"];
    args.extend_from_slice(extra);
    let mut server = serve(BASICS, &args);
    let mut conn = Conn::open(server.port());
    conn.send(&request("GET", "/slow?ms=300", &[], b""));
    server.wait_for_log("slow request started", STARTUP);
    // The app is sleeping: these bytes arrive after the server's last read.
    conn.send(&request("GET", "/pid", &[], b""));
    let (rest, end) = conn.read_until_closed();
    let answer = read_response(&mut rest.as_slice(), false).expect("a whole response");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"slow done");
    assert!(answer.connection_has("close"));
    assert!(
        end.is_ok(),
        "the answer ended with {end:?} instead of a clean end of stream"
    );
}

#[test]
fn sync_reads_what_came_during_the_app_call_before_closing() {
    next_request_sent_during_the_app_call_does_not_reset_the_answer(&["--workers=1"]);
}

#[test]
fn gthread_reads_what_came_during_the_app_call_before_closing() {
    next_request_sent_during_the_app_call_does_not_reset_the_answer(&[
        "--workers=1",
        "--worker-class=gthread",
        "--threads=2",
    ]);
}

/// A copy of descriptor `fd` of process `pid` (pidfd_getfd(2); the tests run as a user
/// allowed to trace the server they started).
fn fd_of(pid: u32, fd: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscalls; each returned descriptor is new and owned here.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0);
        if pidfd < 0 {
            return None;
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as i32);
        let copy = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        (copy >= 0).then(|| OwnedFd::from_raw_fd(copy as i32))
    }
}

fn int_option(fd: &OwnedFd, level: i32, name: i32) -> Option<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len describe a c_int the kernel writes into.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// The port of the peer of socket `fd`, if it is a connected IPv4 socket.
fn peer_port(fd: &OwnedFd) -> Option<u16> {
    // SAFETY: addr and len describe a sockaddr_in the kernel writes into.
    unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::getpeername(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_in).cast(),
            &mut len,
        );
        (rc == 0 && addr.sin_family == libc::AF_INET as libc::sa_family_t)
            .then(|| u16::from_be(addr.sin_port))
    }
}

/// Small responses written in pieces (a streamed body, or answers to pipelined
/// requests) must not wait for the client's delayed ACK: the worker's socket for this
/// client has TCP_NODELAY.
fn worker_socket_has_nagle_off(server: &Server) {
    let mut conn = Conn::open(server.port());
    // One full exchange: the worker has accepted this connection and keeps it open.
    let answer = conn.roundtrip(&request("GET", "/pid", &[], b""));
    assert_eq!(answer.status, 200);
    let worker: u32 = answer.text().trim().parse().expect("the worker's pid");
    let ours = conn.local_addr().port();
    let fds = std::fs::read_dir(format!("/proc/{worker}/fd")).expect("the worker's fds");
    let socket = fds
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|fd| fd_of(worker, fd))
        .find(|fd| peer_port(fd) == Some(ours))
        .expect("the worker holds the socket of our connection");
    assert_eq!(
        int_option(&socket, libc::IPPROTO_TCP, libc::TCP_NODELAY),
        Some(1),
        "TCP_NODELAY on the worker's socket"
    );
}

/// A listener rustcorn binds has TCP_NODELAY before it listens, so every connection
/// has it from the start.
#[test]
fn accepted_connections_have_nagle_off() {
    worker_socket_has_nagle_off(&serve(BASICS, &["--workers=1"]));
}

/// An inherited listener that was listening without TCP_NODELAY (here bound by
/// Python) gets it from the master; workers also set it on each connection, since
/// the ones that queued before do not have it (see `sock::accepted_sockets_have_nodelay`).
#[test]
fn connections_from_an_inherited_listener_have_nagle_off_too() {
    let server = ServerBuilder::new(&["-b", "fd://{fd}", "--chdir", "tests/apps", BASICS])
        .launcher(&["python3", "-c", FD_LAUNCHER])
        .start();
    worker_socket_has_nagle_off(&server);
}
