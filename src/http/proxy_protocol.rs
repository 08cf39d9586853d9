//! The PROXY protocol (HAProxy's, v1 text and v2 binary): a load balancer that
//! forwards raw TCP prepends one header to the connection saying who the client
//! really is. Parsed once, at the start of a connection, as Gunicorn does with
//! `--proxy-protocol`; the addresses then hold for every request on it.
//!
//! Like Gunicorn, a connection that does not start with a PROXY header is served
//! as plain HTTP: the header is recognised by its first bytes, never required.
//! "Need more bytes" is a state ([`Parsed::Partial`]), so a header split across
//! reads is parsed once it is complete.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature: twelve bytes no HTTP request can start with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 line the specification allows, CRLF included.
const V1_MAX_LINE: usize = 107;

/// Which header versions are accepted (`--proxy-protocol`, Gunicorn's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    V1,
    V2,
    Auto,
}

impl Mode {
    /// Gunicorn's `validate_proxy_protocol`: off/false/0/none, v1, v2,
    /// auto/true/1 (case-insensitive); `None` for anything else.
    pub fn parse(value: &str) -> Option<Mode> {
        match value.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "0" | "none" => Some(Mode::Off),
            "v1" => Some(Mode::V1),
            "v2" => Some(Mode::V2),
            "auto" | "true" | "1" => Some(Mode::Auto),
            _ => None,
        }
    }

    fn accepts_v1(self) -> bool {
        matches!(self, Mode::V1 | Mode::Auto)
    }

    fn accepts_v2(self) -> bool {
        matches!(self, Mode::V2 | Mode::Auto)
    }
}

/// What the first bytes of a connection are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// Too few bytes to tell (they are a prefix of an accepted signature).
    Undecided,
    /// Not a PROXY header: the bytes are HTTP.
    Http,
    V1,
    V2,
}

/// Recognises an accepted PROXY header by its first bytes.
pub fn sniff(buf: &[u8], mode: Mode) -> Sniff {
    let mut undecided = false;
    for (accepted, signature, found) in [
        (mode.accepts_v2(), &V2_SIGNATURE[..], Sniff::V2),
        (mode.accepts_v1(), V1_PREFIX, Sniff::V1),
    ] {
        if !accepted {
            continue;
        }
        if buf.starts_with(signature) {
            return found;
        }
        undecided |= signature.starts_with(buf);
    }
    if undecided {
        Sniff::Undecided
    } else {
        Sniff::Http
    }
}

/// What the PROXY header said about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Gunicorn's `PROXY_PROTOCOL` environ value: `TCP4`, `TCP6`, `UNKNOWN` (v1),
    /// `LOCAL` or `UNSPEC` (v2).
    pub protocol: &'static str,
    /// (client, proxy) — the source and destination the proxy saw; `None` when the
    /// header carries no addresses (health checks: the socket's own addresses stand).
    pub addresses: Option<(SocketAddr, SocketAddr)>,
}

/// The outcome of parsing the start of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A header has started but is not complete yet.
    Partial,
    /// No PROXY header: the connection is plain HTTP.
    Absent,
    /// A complete header of `len` bytes.
    Complete { header: Header, len: usize },
}

/// A malformed PROXY header: the connection is answered 400 and closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("Invalid PROXY line: {0:?}")]
    Line(String),
    #[error("Invalid PROXY header: {0}")]
    Header(String),
}

/// Parses a PROXY header at the start of `buf`, if there is one.
pub fn parse(buf: &[u8], mode: Mode) -> Result<Parsed, ProxyError> {
    match sniff(buf, mode) {
        Sniff::Undecided => Ok(Parsed::Partial),
        Sniff::Http => Ok(Parsed::Absent),
        Sniff::V1 => parse_v1(buf),
        Sniff::V2 => parse_v2(buf),
    }
}

/// `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n`.
fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX_LINE)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX_LINE {
            return Err(ProxyError::Line(format!(
                "{}... (no CRLF in {V1_MAX_LINE} bytes)",
                String::from_utf8_lossy(&buf[..40])
            )));
        }
        return Ok(Parsed::Partial);
    };
    let line = std::str::from_utf8(&buf[..end])
        .map_err(|_| ProxyError::Line(String::from_utf8_lossy(&buf[..end]).into_owned()))?;
    let bad = || ProxyError::Line(line.to_string());
    let bits: Vec<&str> = line.split(' ').collect();
    // "UNKNOWN" (the proxy could not tell) may be followed by anything; the
    // connection's own addresses stand.
    if bits.get(1) == Some(&"UNKNOWN") {
        let header = Header {
            protocol: "UNKNOWN",
            addresses: None,
        };
        return Ok(Parsed::Complete {
            header,
            len: end + 2,
        });
    }
    if bits.len() != 6 {
        return Err(bad());
    }
    let (protocol, client_ip, proxy_ip): (&'static str, IpAddr, IpAddr) = match bits[1] {
        "TCP4" => (
            "TCP4",
            bits[2].parse::<Ipv4Addr>().map_err(|_| bad())?.into(),
            bits[3].parse::<Ipv4Addr>().map_err(|_| bad())?.into(),
        ),
        "TCP6" => (
            "TCP6",
            bits[2].parse::<Ipv6Addr>().map_err(|_| bad())?.into(),
            bits[3].parse::<Ipv6Addr>().map_err(|_| bad())?.into(),
        ),
        other => {
            return Err(ProxyError::Line(format!(
                "protocol '{other}' not supported"
            )))
        }
    };
    let port = |text: &str| {
        let digits =
            !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| text.parse::<u16>().ok())
            .flatten()
            .ok_or_else(|| ProxyError::Line(format!("invalid port {line}")))
    };
    let header = Header {
        protocol,
        addresses: Some((
            SocketAddr::new(client_ip, port(bits[4])?),
            SocketAddr::new(proxy_ip, port(bits[5])?),
        )),
    };
    Ok(Parsed::Complete {
        header,
        len: end + 2,
    })
}

/// The binary form: signature, version/command, family/protocol, length, addresses
/// (and TLVs, which are skipped).
fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if buf.len() < 16 {
        return Ok(Parsed::Partial);
    }
    let (ver_cmd, fam_proto) = (buf[12], buf[13]);
    let length = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let version = ver_cmd >> 4;
    if version != 2 {
        return Err(ProxyError::Header(format!("unsupported version {version}")));
    }
    let command = ver_cmd & 0x0F;
    if command > 1 {
        return Err(ProxyError::Header(format!("unsupported command {command}")));
    }
    let len = 16 + length;
    if buf.len() < len {
        return Ok(Parsed::Partial);
    }
    let complete = |protocol, addresses| {
        Ok(Parsed::Complete {
            header: Header {
                protocol,
                addresses,
            },
            len,
        })
    };
    if command == 0 {
        // LOCAL: the proxy's own connection (a health check); no addresses.
        return complete("LOCAL", None);
    }
    if fam_proto & 0x0F != 1 {
        return Err(ProxyError::Header("only TCP protocol is supported".into()));
    }
    let data = &buf[16..len];
    let port = |at: usize| u16::from_be_bytes([data[at], data[at + 1]]);
    match fam_proto >> 4 {
        0 => complete("UNSPEC", None),
        1 => {
            if length < 12 {
                return Err(ProxyError::Header(
                    "insufficient address data for IPv4".into(),
                ));
            }
            let ip = |at: usize| IpAddr::from(<[u8; 4]>::try_from(&data[at..at + 4]).unwrap());
            let client = SocketAddr::new(ip(0), port(8));
            let proxy = SocketAddr::new(ip(4), port(10));
            complete("TCP4", Some((client, proxy)))
        }
        2 => {
            if length < 36 {
                return Err(ProxyError::Header(
                    "insufficient address data for IPv6".into(),
                ));
            }
            let ip = |at: usize| IpAddr::from(<[u8; 16]>::try_from(&data[at..at + 16]).unwrap());
            let client = SocketAddr::new(ip(0), port(32));
            let proxy = SocketAddr::new(ip(16), port(34));
            complete("TCP6", Some((client, proxy)))
        }
        family => Err(ProxyError::Header(format!(
            "unsupported address family {family}"
        ))),
    }
}

#[cfg(test)]
mod tests;
