//! `--log-syslog`: error-log and access-log lines sent to syslog the way Gunicorn's
//! `logging.handlers.SysLogHandler` sends them:
//! `<PRI>gunicorn.<prefix>.<error|access>: [<pid>] <message>\0`, PRI being
//! `facility * 8 + severity`. The socket is opened once in the master; workers inherit
//! it. Sending never blocks a request and never fails one: errors are dropped.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::{Mutex, OnceLock};

use crate::config::logging::SyslogConfig;

/// `--log-syslog-to`, parsed as Gunicorn's `parse_syslog_address` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogAddress {
    /// `unix://PATH`, `#dgram` or `#stream` forcing the socket type (None: dgram, then
    /// stream, as Python tries).
    Unix {
        path: String,
        dgram: Option<bool>,
    },
    Udp {
        host: String,
        port: u16,
    },
    Tcp {
        host: String,
        port: u16,
    },
}

impl SyslogAddress {
    pub fn parse(addr: &str) -> Result<SyslogAddress, String> {
        if let Some(rest) = addr.strip_prefix("unix://") {
            let (path, kind) = match rest.split_once('#') {
                Some((p, k)) => (p, Some(k)),
                None => (rest, None),
            };
            return Ok(SyslogAddress::Unix {
                path: path.to_string(),
                dgram: match kind {
                    Some("dgram") => Some(true),
                    Some("stream") => Some(false),
                    _ => None,
                },
            });
        }
        let (rest, tcp) = if let Some(r) = addr.strip_prefix("udp://") {
            (r, false)
        } else if let Some(r) = addr.strip_prefix("tcp://") {
            (r, true)
        } else {
            return Err("expected unix://PATH, udp://HOST:PORT or tcp://HOST:PORT".into());
        };
        let host = if rest.contains('[') && rest.contains(']') {
            rest.split(']').next().unwrap_or("")[1..].to_lowercase()
        } else if let Some((h, _)) = rest.split_once(':') {
            h.to_lowercase()
        } else if rest.is_empty() {
            "localhost".to_string()
        } else {
            rest.to_lowercase()
        };
        let after = rest.rsplit(']').next().unwrap_or("");
        let port = match after.split_once(':') {
            Some((_, p)) => p
                .parse::<u16>()
                .map_err(|_| format!("{p:?} is not a valid port number"))?,
            None => 514,
        };
        Ok(if tcp {
            SyslogAddress::Tcp { host, port }
        } else {
            SyslogAddress::Udp { host, port }
        })
    }
}

/// Gunicorn's syslog facility names and codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facility(pub u8);

impl Facility {
    pub fn parse(name: &str) -> Result<Facility, String> {
        let code = match name.to_lowercase().as_str() {
            "kern" => 0,
            "user" => 1,
            "mail" => 2,
            "daemon" => 3,
            "auth" | "security" => 4,
            "syslog" => 5,
            "lpr" => 6,
            "news" => 7,
            "uucp" => 8,
            "cron" => 9,
            "authpriv" => 10,
            "ftp" => 11,
            "local0" => 16,
            "local1" => 17,
            "local2" => 18,
            "local3" => 19,
            "local4" => 20,
            "local5" => 21,
            "local6" => 22,
            "local7" => 23,
            _ => return Err("unknown facility name".into()),
        };
        Ok(Facility(code))
    }
}

/// Python's `SysLogHandler.mapPriority` severities.
#[derive(Clone, Copy, Debug)]
pub enum Severity {
    Critical = 2,
    Error = 3,
    Warning = 4,
    Info = 6,
    Debug = 7,
}

enum Socket {
    Udp(UdpSocket),
    UnixDgram(UnixDatagram),
    UnixStream(UnixStream),
    Tcp(TcpStream),
}

struct Syslog {
    socket: Mutex<Socket>,
    facility: Facility,
    tag: String,
}

static SYSLOG: OnceLock<Syslog> = OnceLock::new();

/// Connects to the syslog address; called once in the master before forking.
pub fn init(config: &SyslogConfig) -> io::Result<()> {
    let socket = match &config.address {
        SyslogAddress::Udp { host, port } => {
            let target = (host.as_str(), *port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::other(format!("{host} does not resolve")))?;
            let local = if target.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let s = UdpSocket::bind(local)?;
            s.connect(target)?;
            s.set_nonblocking(true)?;
            Socket::Udp(s)
        }
        SyslogAddress::Tcp { host, port } => {
            Socket::Tcp(TcpStream::connect((host.as_str(), *port))?)
        }
        SyslogAddress::Unix { path, dgram } => match dgram {
            Some(false) => Socket::UnixStream(UnixStream::connect(path)?),
            _ => match UnixDatagram::unbound().and_then(|s| s.connect(path).map(|_| s)) {
                Ok(s) => {
                    s.set_nonblocking(true)?;
                    Socket::UnixDgram(s)
                }
                Err(_) if dgram.is_none() => Socket::UnixStream(UnixStream::connect(path)?),
                Err(e) => return Err(e),
            },
        },
    };
    let _ = SYSLOG.set(Syslog {
        socket: Mutex::new(socket),
        facility: config.facility,
        tag: config.tag.clone(),
    });
    Ok(())
}

/// Sends one message as `<tag>.<kind>` (`error` or `access`), if syslog is on.
pub fn send(severity: Severity, kind: &str, message: &str) {
    let Some(syslog) = SYSLOG.get() else {
        return;
    };
    let datagram = format!(
        "<{}>{}.{kind}: [{}] {message}\0",
        (u32::from(syslog.facility.0) << 3) | severity as u32,
        syslog.tag,
        std::process::id()
    );
    let mut socket = syslog.socket.lock().unwrap_or_else(|p| p.into_inner());
    let _ = match &mut *socket {
        Socket::Udp(s) => s.send(datagram.as_bytes()).map(drop),
        Socket::UnixDgram(s) => s.send(datagram.as_bytes()).map(drop),
        Socket::UnixStream(s) => s.write_all(datagram.as_bytes()),
        Socket::Tcp(s) => s.write_all(datagram.as_bytes()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_gunicorn() {
        let udp = |h: &str, p| SyslogAddress::Udp {
            host: h.into(),
            port: p,
        };
        assert_eq!(
            SyslogAddress::parse("udp://localhost:514"),
            Ok(udp("localhost", 514))
        );
        assert_eq!(
            SyslogAddress::parse("udp://LOG.example"),
            Ok(udp("log.example", 514))
        );
        assert_eq!(SyslogAddress::parse("udp://"), Ok(udp("localhost", 514)));
        assert_eq!(SyslogAddress::parse("udp://[::1]:9"), Ok(udp("::1", 9)));
        assert_eq!(
            SyslogAddress::parse("tcp://h:1"),
            Ok(SyslogAddress::Tcp {
                host: "h".into(),
                port: 1
            })
        );
        assert_eq!(
            SyslogAddress::parse("unix:///dev/log#dgram"),
            Ok(SyslogAddress::Unix {
                path: "/dev/log".into(),
                dgram: Some(true)
            })
        );
        assert!(SyslogAddress::parse("udp://h:x").is_err());
        assert!(SyslogAddress::parse("h:514").is_err());
        assert_eq!(Facility::parse("LOCAL7"), Ok(Facility(23)));
        assert!(Facility::parse("nope").is_err());
    }
}
