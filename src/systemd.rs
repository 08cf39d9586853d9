//! systemd integration without libsystemd: socket activation (`$LISTEN_FDS`,
//! `$LISTEN_PID`, see sd_listen_fds(3)) and readiness notification (`$NOTIFY_SOCKET`,
//! see sd_notify(3)). Both are a few lines of protocol; a C dependency would buy nothing.

use std::io;
use std::os::fd::RawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The first descriptor systemd passes (after stdin, stdout, stderr).
pub const LISTEN_FDS_START: RawFd = 3;

/// The activation variables, unset once read so workers, the app and a re-executed
/// master never read them again (they name this process's pid, no other's).
const ACTIVATION_VARS: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// Socket-activation variables that name this process but do not parse.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("LISTEN_FDS={0:?} is not a number of sockets")]
    BadCount(String),
}

/// The listening sockets systemd handed to this process: fds 3, 4, … as many as
/// `$LISTEN_FDS` says, when `$LISTEN_PID` is this process (a variable meant for another
/// process is ignored). Empty when the process was not socket-activated. The variables
/// are unset either way, as `sd_listen_fds(1)` does.
pub fn listen_fds() -> Result<Vec<RawFd>, ActivationError> {
    let count = std::env::var("LISTEN_FDS").ok();
    let pid = std::env::var("LISTEN_PID").ok();
    for var in ACTIVATION_VARS {
        crate::python::environ::remove_var(var);
    }
    let ours = pid
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let (Some(count), true) = (count, ours) else {
        return Ok(Vec::new());
    };
    let n: RawFd = count
        .trim()
        .parse()
        .ok()
        .filter(|&n| (0..=4096).contains(&n))
        .ok_or_else(|| ActivationError::BadCount(count.clone()))?;
    Ok((LISTEN_FDS_START..LISTEN_FDS_START + n).collect())
}

/// Sends `state` (newline-separated `KEY=VALUE` assignments: `READY=1`,
/// `RELOADING=1`, `STOPPING=1`, `MAINPID=N`, `STATUS=…`) to the service manager
/// when `$NOTIFY_SOCKET` is set; does nothing otherwise. A name starting with `@` is
/// an abstract socket. A failure is logged at debug level and otherwise ignored, as
/// a notification must never stop the server.
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty()) else {
        return;
    };
    if let Err(e) = send(&target, state) {
        tracing::debug!("sd_notify to {target:?} failed: {e}");
    }
}

fn send(target: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = target.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(std::path::Path::new(target))?,
    };
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// `MONOTONIC_USEC=` for `RELOADING=1`: systemd uses it to tell this reload from the
/// next one.
pub fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_path_and_abstract_datagram_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let by_path = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = by_path.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("rustcorn-test-{}", std::process::id());
        let abstract_addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let by_name = UnixDatagram::bind_addr(&abstract_addr).unwrap();
        send(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = by_name.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
