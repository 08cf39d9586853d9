//! Where the master's listeners come from: sockets handed over by systemd
//! (`$LISTEN_FDS`) or by a master that re-executed itself (`$RUSTCORN_FD`, or
//! Gunicorn's `$GUNICORN_FD`), or else bound here from `--bind`. Inherited sockets are
//! used as they are: not bound again, not listened again, their queued connections
//! kept.

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};

use crate::config::Config;
use crate::sock::{BindAddress, Listener};
use crate::systemd;

/// The variables a re-executing master lists its listening fds in (same value).
pub const FD_VARS: [&str; 2] = ["RUSTCORN_FD", "GUNICORN_FD"];

/// Who handed the listeners to this master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Bound here from `--bind`.
    Bound,
    /// From a previous master (USR2) or a launcher, in `$RUSTCORN_FD`/`$GUNICORN_FD`.
    Handed,
    /// systemd socket activation: the sockets (and their files) belong to systemd.
    Systemd,
}

/// The listening sockets and where they came from.
pub struct Opened {
    pub listeners: Vec<Listener>,
    pub origin: Origin,
}

/// Opens the listeners: inherited ones when there are, each matched to a configured
/// `--bind` (an address with port 0 matches any port on that host), otherwise
/// `--bind` as given.
pub fn open(config: &Config) -> Result<Opened, String> {
    let from_systemd = systemd::listen_fds().map_err(|e| e.to_string())?;
    let (fds, origin) = if from_systemd.is_empty() {
        (handed_fds()?, Origin::Handed)
    } else {
        (from_systemd, Origin::Systemd)
    };
    if fds.is_empty() {
        return bind_all(config).map(|listeners| Opened {
            listeners,
            origin: Origin::Bound,
        });
    }
    let mut listeners = Vec::new();
    for &fd in &fds {
        let listener = Listener::bind(&BindAddress::Fd(fd), config.backlog)
            .map_err(|e| format!("Cannot use the inherited socket fd {fd}: {e}"))?;
        listeners.push(listener);
    }
    for addr in &config.binds {
        match addr {
            BindAddress::Fd(fd) if fds.contains(fd) => {}
            BindAddress::Fd(_) => listeners.push(
                Listener::bind_with(addr, config.backlog, config.ops.reuse_port)
                    .map_err(|e| format!("Cannot bind {}: {e}", super::describe(addr)))?,
            ),
            _ => match listeners.iter_mut().find(|l| matches(l, addr)) {
                // The file of a unix socket a previous master bound is ours to remove
                // on the final stop; systemd's stays systemd's.
                Some(Listener::Unix { path, .. }) if origin == Origin::Handed => {
                    if let BindAddress::Unix(p) = addr {
                        *path = Some(p.clone());
                    }
                }
                Some(_) => {}
                None => tracing::debug!(
                    "Not binding {}: serving on the inherited sockets instead",
                    super::describe(addr)
                ),
            },
        }
    }
    Ok(Opened { listeners, origin })
}

fn bind_all(config: &Config) -> Result<Vec<Listener>, String> {
    let mut listeners = Vec::new();
    for addr in &config.binds {
        match Listener::bind_with(addr, config.backlog, config.ops.reuse_port) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                listeners.iter().for_each(Listener::cleanup);
                return Err(format!("Cannot bind {}: {e}", super::describe(addr)));
            }
        }
    }
    Ok(listeners)
}

/// The fds in `$RUSTCORN_FD` (or `$GUNICORN_FD`), comma-separated; both variables are
/// unset so workers and the app do not see them.
fn handed_fds() -> Result<Vec<RawFd>, String> {
    let found = FD_VARS
        .iter()
        .find_map(|var| std::env::var(var).ok().map(|v| (*var, v)));
    for var in FD_VARS {
        crate::python::environ::remove_var(var);
    }
    let Some((var, value)) = found else {
        return Ok(Vec::new());
    };
    let mut fds = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let fd = part
            .parse::<RawFd>()
            .ok()
            .filter(|&fd| fd >= 0)
            .ok_or_else(|| format!("{var}={value:?}: '{part}' is not a file descriptor number"))?;
        if !fds.contains(&fd) {
            fds.push(fd);
        }
    }
    Ok(fds)
}

/// Whether an inherited listener is the one `addr` asks for.
fn matches(listener: &Listener, addr: &BindAddress) -> bool {
    match (listener, addr) {
        (Listener::Tcp(_), BindAddress::Tcp { host, port }) => {
            let Some(local) = listener.local_tcp_addr() else {
                return false;
            };
            let wanted: Vec<SocketAddr> = (host.as_str(), *port)
                .to_socket_addrs()
                .map(Iterator::collect)
                .unwrap_or_default();
            wanted
                .iter()
                .any(|w| w.ip() == local.ip() && (w.port() == 0 || w.port() == local.port()))
        }
        (Listener::Unix { listener, .. }, BindAddress::Unix(path)) => listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p == path))
            .unwrap_or(false),
        _ => false,
    }
}

/// The descriptor number of a listener, to hand it to a new master.
pub fn raw_fd(listener: &Listener) -> RawFd {
    match listener {
        Listener::Tcp(l) => l.as_raw_fd(),
        Listener::Unix { listener, .. } => listener.as_raw_fd(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inherited_tcp_socket_matches_its_bind_and_port_zero_matches_any_port() {
        let listener = Listener::bind(&BindAddress::parse("127.0.0.1:0").unwrap(), 8).unwrap();
        let port = listener.local_tcp_addr().unwrap().port();
        let other = if port == 65535 { 1 } else { port + 1 };
        let cases: &[(String, bool)] = &[
            ("127.0.0.1:0".into(), true),
            (format!("127.0.0.1:{port}"), true),
            (format!("localhost:{port}"), true),
            (format!("127.0.0.1:{other}"), false),
            (format!("127.0.0.2:{port}"), false),
            ("unix:/tmp/rustcorn-no-such.sock".into(), false),
            ("fd://3".into(), false),
        ];
        for (spec, want) in cases {
            let addr = BindAddress::parse(spec).unwrap();
            assert_eq!(matches(&listener, &addr), *want, "{spec}");
        }
    }

    #[test]
    fn an_inherited_unix_socket_matches_its_path_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let spec = format!("unix:{}", path.display());
        let listener = Listener::bind(&BindAddress::parse(&spec).unwrap(), 8).unwrap();
        assert!(matches(&listener, &BindAddress::parse(&spec).unwrap()));
        let elsewhere = format!("unix:{}", dir.path().join("t.sock").display());
        assert!(!matches(
            &listener,
            &BindAddress::parse(&elsewhere).unwrap()
        ));
        assert!(!matches(
            &listener,
            &BindAddress::parse("127.0.0.1:0").unwrap()
        ));
    }
}
