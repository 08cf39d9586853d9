//! `--statsd-host`: Gunicorn's statsd metrics (`gunicorn/instrument/statsd.py`), same
//! names, types and datagram text:
//!
//! | metric | type | sent by |
//! |---|---|---|
//! | `gunicorn.requests` | counter `:1\|c\|@1.0` | worker, per response |
//! | `gunicorn.request.duration` | timer, milliseconds `\|ms` | worker, per response |
//! | `gunicorn.request.status.NNN` | counter | worker, per response |
//! | `gunicorn.workers` | gauge `\|g` | master, when the number of workers changes |
//! | `gunicorn.log.critical`, `.error`, `.warning`, `.exception` | counter | any process, per log line |
//!
//! Each name gets `--statsd-prefix` in front and `|#<--dogstatsd-tags>` behind. The
//! socket is a connected, non-blocking datagram socket opened in the master before the
//! workers fork: sending is one send(2) that never waits, and a lost or refused
//! datagram is dropped — metrics never slow or fail a request.

use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::config::logging::StatsdConfig;

/// `--statsd-host`, parsed as Gunicorn's `validate_statsd_address` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsdAddress {
    Udp { host: String, port: u16 },
    Unix(String),
}

impl StatsdAddress {
    pub fn parse(value: &str) -> Result<StatsdAddress, String> {
        let bad = || "Value must be one of ('host:port', 'unix://PATH')".to_string();
        // Gunicorn keeps `unix:8125` meaning host "unix", port 8125 (its pre-20 reading).
        if let Some(port) = value
            .strip_prefix("unix:")
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Ok(StatsdAddress::Udp {
                host: "unix".into(),
                port: port.parse().map_err(|_| bad())?,
            });
        }
        if let Some(path) = value.strip_prefix("unix:") {
            return Ok(StatsdAddress::Unix(
                path.strip_prefix("//").unwrap_or(path).to_string(),
            ));
        }
        if value.starts_with("fd://") {
            return Err(bad());
        }
        let net = value.strip_prefix("tcp://").unwrap_or(value);
        let (host, port) = if net.contains('[') && net.contains(']') {
            let host = net.split(']').next().unwrap_or("")[1..].to_string();
            let port = net.split_once("]:").map_or("8125", |(_, p)| p);
            (host, port)
        } else if let Some((h, p)) = net.split_once(':') {
            (h.to_string(), p.split(':').next().unwrap_or(p))
        } else if net.is_empty() {
            ("0.0.0.0".to_string(), "8125")
        } else {
            (net.to_string(), "8125")
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("{port:?} is not a valid port number"))?;
        Ok(StatsdAddress::Udp {
            host: host.to_lowercase(),
            port,
        })
    }
}

enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

struct Statsd {
    socket: Socket,
    prefix: String,
    tags: String,
}

static STATSD: OnceLock<Statsd> = OnceLock::new();

/// Opens the socket; called once in the master. Like Gunicorn, an address that cannot
/// be reached leaves metrics off without stopping the server.
pub fn init(config: &StatsdConfig) {
    let socket = match &config.address {
        StatsdAddress::Udp { host, port } => (host.as_str(), *port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .and_then(|target| {
                let local = if target.is_ipv6() {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let s = UdpSocket::bind(local).ok()?;
                s.connect(target).ok()?;
                s.set_nonblocking(true).ok()?;
                Some(Socket::Udp(s))
            }),
        StatsdAddress::Unix(path) => UnixDatagram::unbound().ok().and_then(|s| {
            s.connect(path).ok()?;
            s.set_nonblocking(true).ok()?;
            Some(Socket::Unix(s))
        }),
    };
    match socket {
        Some(socket) => {
            let _ = STATSD.set(Statsd {
                socket,
                prefix: config.prefix.clone(),
                tags: config.tags.clone(),
            });
        }
        None => tracing::warn!(
            "Cannot reach statsd at {:?}; metrics are off",
            config.address
        ),
    }
}

/// Whether metrics are on (skip computing them otherwise).
pub fn enabled() -> bool {
    STATSD.get().is_some()
}

fn send(name: &str, value: &str, kind: &str) {
    let Some(s) = STATSD.get() else { return };
    let mut msg = String::with_capacity(64);
    msg.push_str(&s.prefix);
    msg.push_str(name);
    msg.push(':');
    msg.push_str(value);
    msg.push('|');
    msg.push_str(kind);
    if !s.tags.is_empty() {
        msg.push_str("|#");
        msg.push_str(&s.tags);
    }
    let _ = match &s.socket {
        Socket::Udp(sock) => sock.send(msg.as_bytes()),
        Socket::Unix(sock) => sock.send(msg.as_bytes()),
    };
}

/// A counter, `name:value|c|@1.0`.
pub fn increment(name: &str, value: u64) {
    send(name, &value.to_string(), "c|@1.0");
}

/// A histogram, `name:value|h`.
pub fn histogram(name: &str, value: u64) {
    send(name, &value.to_string(), "h");
}

/// A gauge, `name:value|g`.
pub fn gauge(name: &str, value: u64) {
    send(name, &value.to_string(), "g");
}

/// The three per-response metrics, as Gunicorn's `Statsd.access` sends them.
pub fn request(status: u16, duration: Duration) {
    if !enabled() {
        return;
    }
    // Python: seconds * 1000 + float(microseconds) / 10**3, printed with repr().
    let secs = duration.as_secs() % 86_400;
    let ms = (secs * 1000) as f64 + f64::from(duration.subsec_micros()) / 1000.0;
    send("gunicorn.request.duration", &python_float(ms), "ms");
    increment("gunicorn.requests", 1);
    increment(&format!("gunicorn.request.status.{status}"), 1);
}

/// The master's worker count, sent when it changes (Gunicorn's `manage_workers`).
pub fn workers(count: usize) {
    static LAST: AtomicUsize = AtomicUsize::new(usize::MAX);
    if LAST.swap(count, Ordering::Relaxed) != count {
        tracing::debug!("{count} workers");
        gauge("gunicorn.workers", count as u64);
    }
}

/// `repr(float)` for the values a duration takes: the shortest round-trip digits (which
/// Rust's `Display` also gives) with a `.0` on whole numbers.
fn python_float(v: f64) -> String {
    let s = v.to_string();
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_gunicorn() {
        let udp = |h: &str, p| StatsdAddress::Udp {
            host: h.into(),
            port: p,
        };
        assert_eq!(
            StatsdAddress::parse("localhost:8125"),
            Ok(udp("localhost", 8125))
        );
        assert_eq!(StatsdAddress::parse("Stats"), Ok(udp("stats", 8125)));
        assert_eq!(StatsdAddress::parse("[::1]:9125"), Ok(udp("::1", 9125)));
        assert_eq!(StatsdAddress::parse("unix:8125"), Ok(udp("unix", 8125)));
        assert_eq!(
            StatsdAddress::parse("unix:///run/statsd.sock"),
            Ok(StatsdAddress::Unix("/run/statsd.sock".into()))
        );
        assert!(StatsdAddress::parse("host:port").is_err());
    }

    #[test]
    fn durations_print_as_python_floats() {
        assert_eq!(python_float(0.0), "0.0");
        assert_eq!(python_float(12.345), "12.345");
        assert_eq!(python_float(1000.0), "1000.0");
        assert_eq!(python_float(3.0 + 1.0 / 1000.0), "3.001");
    }
}
