//! Listeners: parsing Gunicorn's bind syntax and creating the sockets the master binds
//! once and every worker inherits.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockType, SockaddrLike, SockaddrStorage,
};

/// An inherited TCP listener was listening without TCP_NODELAY, which it only got
/// here: connections that queued before then do not have it (see
/// [`accepted_sockets_have_nodelay`]).
static NODELAY_SET_LATE: AtomicBool = AtomicBool::new(false);

/// Whether every connection accepted from our TCP listeners already has TCP_NODELAY.
/// Linux copies it from the listener to each connection the listener queues, so a
/// listener that had it before listen(2) (ours always; an inherited one when whoever
/// bound it set it, as systemd's `NoDelay=true` does) saves the worker a
/// setsockopt(2) per connection.
pub fn accepted_sockets_have_nodelay() -> bool {
    !NODELAY_SET_LATE.load(Ordering::Relaxed)
}

/// One `--bind` value, parsed but not yet bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindAddress {
    /// A host (name or address literal) and port.
    Tcp { host: String, port: u16 },
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `fd://N`: an already-listening socket inherited from whoever started us.
    Fd(RawFd),
}

impl BindAddress {
    /// Parses HOST, HOST:PORT, [V6]:PORT, [V6], unix:PATH and fd://N (port 8000 when
    /// none is given, as Gunicorn does).
    pub fn parse(spec: &str) -> Result<BindAddress, String> {
        let spec = spec.trim();
        if let Some(path) = spec.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("unix: needs a socket path".into());
            }
            return Ok(BindAddress::Unix(PathBuf::from(path)));
        }
        if let Some(fd) = spec.strip_prefix("fd://") {
            return fd
                .parse::<RawFd>()
                .ok()
                .filter(|&n| n >= 0)
                .map(BindAddress::Fd)
                .ok_or_else(|| "fd:// needs a file descriptor number".into());
        }
        if spec.is_empty() {
            return Err("empty address".into());
        }
        let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or("missing ']' after an IPv6 address")?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("'{host}' is not an IPv6 address"));
            }
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or("expected ':' after ']'")?),
                ),
            }
        } else if spec.matches(':').count() > 1 {
            return Err("an IPv6 address must be written in brackets: [::1]:8000".into());
        } else {
            match spec.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (spec, None),
            }
        };
        let port = match port {
            None => 8000,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("'{p}' is not a port number"))?,
        };
        if host.is_empty() {
            return Err("missing host".into());
        }
        Ok(BindAddress::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

/// A bound, listening, non-blocking socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: Option<PathBuf>,
    },
}

impl Listener {
    /// Binds `addr` with SO_REUSEADDR and the given backlog.
    pub fn bind(addr: &BindAddress, backlog: u32) -> io::Result<Listener> {
        Listener::bind_with(addr, backlog, false)
    }

    /// Like [`Listener::bind`]; `reuse_port` also sets SO_REUSEPORT on a TCP socket
    /// (`--reuse-port`), so other processes may bind the same address.
    pub fn bind_with(addr: &BindAddress, backlog: u32, reuse_port: bool) -> io::Result<Listener> {
        let listener = match addr {
            BindAddress::Tcp { host, port } => {
                let sockaddr = (host.as_str(), *port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, format!("{host} does not resolve"))
                    })?;
                Listener::Tcp(bind_tcp(sockaddr, backlog, reuse_port)?)
            }
            BindAddress::Unix(path) => {
                remove_stale_socket(path)?;
                let listener = UnixListener::bind(path)?;
                listen_again(listener.as_raw_fd(), backlog)?;
                Listener::Unix {
                    listener,
                    path: Some(path.clone()),
                }
            }
            BindAddress::Fd(fd) => inherit_fd(*fd)?,
        };
        listener.set_nonblocking()?;
        Ok(listener)
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true),
            Listener::Unix { listener, .. } => listener.set_nonblocking(true),
        }
    }

    /// Removes the socket file of a unix listener on shutdown.
    pub fn cleanup(&self) {
        if let Listener::Unix {
            path: Some(path), ..
        } = self
        {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Duplicates the listener (each worker's event loop owns its own handle).
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix { listener, .. } => Listener::Unix {
                listener: listener.try_clone()?,
                path: None,
            },
        })
    }

    /// The local TCP address, for SERVER_NAME/SERVER_PORT fallbacks.
    pub fn local_tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix { .. } => None,
        }
    }
}

impl fmt::Display for Listener {
    /// The URL Gunicorn prints in `Listening at:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(SocketAddr::V4(a)) => write!(f, "http://{}:{}", a.ip(), a.port()),
                Ok(SocketAddr::V6(a)) => write!(f, "http://[{}]:{}", a.ip(), a.port()),
                Err(_) => write!(f, "http://?"),
            },
            Listener::Unix { listener, path } => {
                let shown = path.clone().or_else(|| {
                    listener
                        .local_addr()
                        .ok()
                        .and_then(|a| a.as_pathname().map(Into::into))
                });
                match shown {
                    Some(p) => write!(f, "unix:{}", p.display()),
                    None => write!(f, "unix:?"),
                }
            }
        }
    }
}

/// How long the kernel holds a connection that has sent nothing before handing it to
/// accept(2) anyway (`TCP_DEFER_ACCEPT`, rounded up to its SYN-ACK retransmissions):
/// short, so that such a client still meets the worker's own timeouts.
pub const DEFER_ACCEPT_SECONDS: u32 = 1;

fn bind_tcp(addr: SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<TcpListener> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    socket::setsockopt(&fd, socket::sockopt::ReuseAddr, &true)?;
    if reuse_port {
        socket::setsockopt(&fd, socket::sockopt::ReusePort, &true)?;
    }
    if addr.is_ipv6() {
        socket::setsockopt(&fd, socket::sockopt::Ipv6V6Only, &true)?;
    }
    // Before listen(2), so that every connection inherits it: responses written in
    // pieces never wait for the client's delayed ACK.
    socket::setsockopt(&fd, socket::sockopt::TcpNoDelay, &true)?;
    // HTTP clients speak first: a connection reaches a worker with its request, so
    // the worker reads it at accept instead of waking once for the handshake and again
    // for the bytes (a third more connections per CPU-second on hello-close).
    crate::sys::defer_accept(fd.as_raw_fd(), DEFER_ACCEPT_SECONDS)?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    socket::listen(&fd, backlog_of(backlog))?;
    Ok(TcpListener::from(fd))
}

fn backlog_of(backlog: u32) -> Backlog {
    Backlog::new(backlog.min(i32::MAX as u32) as i32).unwrap_or(Backlog::MAXCONN)
}

/// Calls listen(2) again to apply our backlog (std binds with its own).
fn listen_again(fd: RawFd, backlog: u32) -> io::Result<()> {
    // SAFETY: fd belongs to a listener the caller owns for the duration of the call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    socket::listen(&borrowed, backlog_of(backlog))?;
    Ok(())
}

/// A socket file left by a previous run would make bind fail with EADDRINUSE; a regular
/// file at that path is not ours to delete.
fn remove_stale_socket(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(_) => Ok(()),
    }
}

fn inherit_fd(fd: RawFd) -> io::Result<Listener> {
    // SAFETY: fstat on an arbitrary integer only reads kernel state; EBADF is an error.
    let valid = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    if !valid {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("fd://{fd} is not an open file descriptor"),
        ));
    }
    crate::sys::set_cloexec(fd)?;
    // SAFETY: the descriptor is open and was handed to this process to own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let family = socket::getsockname::<SockaddrStorage>(owned.as_raw_fd())?.family();
    let accepting = socket::getsockopt(&owned, socket::sockopt::AcceptConn)?;
    if !accepting {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd://{fd} is not a listening socket"),
        ));
    }
    Ok(match family {
        Some(AddressFamily::Unix) => Listener::Unix {
            listener: UnixListener::from(owned),
            path: None,
        },
        _ => {
            if !socket::getsockopt(&owned, socket::sockopt::TcpNoDelay)? {
                socket::setsockopt(&owned, socket::sockopt::TcpNoDelay, &true)?;
                NODELAY_SET_LATE.store(true, Ordering::Relaxed);
            }
            Listener::Tcp(TcpListener::from(owned))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodelay(fd: RawFd) -> bool {
        // SAFETY: the descriptor stays open for the call.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        socket::getsockopt(&fd, socket::sockopt::TcpNoDelay).unwrap()
    }

    #[test]
    fn our_tcp_listeners_have_nodelay_before_they_listen() {
        let ours = Listener::bind(&BindAddress::parse("127.0.0.1:0").unwrap(), 8).unwrap();
        let Listener::Tcp(l) = &ours else {
            panic!("tcp")
        };
        assert!(nodelay(l.as_raw_fd()));
    }

    /// Whether the listener has a connection for accept(2) within `ms`.
    fn queued_within(l: &TcpListener, ms: u16) -> bool {
        use nix::poll::{poll, PollFd, PollFlags};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(l.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, ms).unwrap() == 1
    }

    #[test]
    fn connections_reach_accept_with_their_first_bytes_or_after_the_deferral() {
        use std::io::Write;
        let ours = Listener::bind(&BindAddress::parse("127.0.0.1:0").unwrap(), 8).unwrap();
        let Listener::Tcp(l) = &ours else {
            panic!("tcp")
        };
        let addr = l.local_addr().unwrap();
        let mut speaking = std::net::TcpStream::connect(addr).unwrap();
        // The handshake is done (connect returned), but nothing was sent yet.
        assert!(!queued_within(l, 300), "queued before its first byte");
        speaking.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        assert!(queued_within(l, 10_000), "not queued after its first byte");
        let (accepted, _) = l.accept().unwrap();
        drop(accepted);
        // A client that never speaks is still handed over, a little later.
        let _silent = std::net::TcpStream::connect(addr).unwrap();
        assert!(queued_within(l, 15_000), "a silent client was never queued");
    }

    #[test]
    fn an_inherited_listener_without_nodelay_gets_it_and_workers_are_told() {
        use std::os::fd::IntoRawFd;
        let theirs = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!nodelay(theirs.as_raw_fd()));
        let fd = theirs.into_raw_fd();
        let inherited = Listener::bind(&BindAddress::Fd(fd), 8).unwrap();
        assert!(nodelay(fd));
        assert!(!accepted_sockets_have_nodelay());
        drop(inherited);
    }

    #[test]
    fn parses_gunicorn_bind_forms() {
        let tcp = |h: &str, p| BindAddress::Tcp {
            host: h.into(),
            port: p,
        };
        let cases: &[(&str, BindAddress)] = &[
            ("127.0.0.1:8000", tcp("127.0.0.1", 8000)),
            ("0.0.0.0:80", tcp("0.0.0.0", 80)),
            ("localhost", tcp("localhost", 8000)),
            ("[::1]:8080", tcp("::1", 8080)),
            ("[::]", tcp("::", 8000)),
            (
                "unix:/tmp/app.sock",
                BindAddress::Unix("/tmp/app.sock".into()),
            ),
            (
                "unix:///run/app.sock",
                BindAddress::Unix("/run/app.sock".into()),
            ),
            ("fd://3", BindAddress::Fd(3)),
        ];
        for (spec, want) in cases {
            assert_eq!(&BindAddress::parse(spec).unwrap(), want, "{spec}");
        }
    }

    #[test]
    fn rejects_malformed_binds_with_a_reason() {
        for spec in [
            "",
            "host:notaport",
            "host:70000",
            "::1:80",
            "[::1",
            "[nothex]:80",
            "unix:",
            "fd://x",
            ":80",
        ] {
            assert!(
                BindAddress::parse(spec).is_err(),
                "{spec} should be rejected"
            );
        }
    }

    #[test]
    fn binds_port_zero_and_reports_the_real_port() {
        let l = Listener::bind(&BindAddress::parse("127.0.0.1:0").unwrap(), 16).unwrap();
        let shown = l.to_string();
        assert!(
            shown.starts_with("http://127.0.0.1:") && !shown.ends_with(":0"),
            "{shown}"
        );
    }
}
