//! A connection behind a proxy: whether its peer is trusted with forwarding headers,
//! the PROXY protocol header it may start with, and the secure-scheme check every
//! request from a trusted peer goes through (Gunicorn's rules, see
//! [`crate::http::forwarded`] and [`crate::http::proxy_protocol`]).

use super::{Conn, Next, Phase};
use crate::config::http2::Cleartext;
use crate::config::proxy::ProxyConfig;
use crate::http::proxy_protocol::{self, Mode, Parsed, Sniff};
use crate::http::request::{name_length_bit, Head};
use crate::http::{forwarded, HttpError};

impl Conn {
    /// Applies the proxy settings to a new connection, from the socket's own peer
    /// address: trust for forwarding headers, and, with `--proxy-protocol`, a first
    /// phase that looks for a PROXY header. Unix-socket peers are trusted and allowed.
    /// `h2c` is what the server offers trusted peers ([`crate::config::Config::h2c`]).
    pub fn admit(&mut self, policy: &ProxyConfig, h2c: Cleartext) {
        let ip = self.peer.remote.map(|addr| addr.ip());
        self.peer.trusted = ip.is_none_or(|ip| policy.forwarded_allow_ips.allows(ip));
        if policy.proxy_protocol != Mode::Off {
            self.phase = Phase::ProxyHeader {
                mode: policy.proxy_protocol,
                allowed: ip.is_none_or(|ip| policy.proxy_allow_ips.allows(ip)),
            };
        }
        self.admit_uwsgi(policy);
        self.admit_h2c(h2c);
    }

    /// Reads the PROXY header, if the connection starts with one. `None` means go on
    /// to the request head; `Some` is what the event loop should do now (wait for
    /// more bytes, or close after a 400/403).
    pub(super) fn advance_proxy_header(&mut self, mode: Mode, allowed: bool) -> Option<Next> {
        let data = self.rbuf.data();
        if !allowed && matches!(proxy_protocol::sniff(data, mode), Sniff::V1 | Sniff::V2) {
            let why = format!(
                "Proxy request from '{}' not allowed",
                self.peer.remote_ip.as_str()
            );
            return Some(self.refuse(&HttpError::Forbidden("Request forbidden".into()), &why));
        }
        match proxy_protocol::parse(data, mode) {
            Ok(Parsed::Partial) => Some(self.wait_or_close()),
            Ok(Parsed::Absent) => {
                self.phase = self.head_phase();
                None
            }
            Ok(Parsed::Complete { header, len }) => {
                self.rbuf.consume(len);
                self.peer.apply_proxy_header(&header);
                self.phase = self.head_phase();
                None
            }
            // Logged as Gunicorn words it, without the page's "Bad Request:".
            Err(e) => Some(self.refuse(&HttpError::bad(e.to_string()), &e.to_string())),
        }
    }

    /// Decides what the request's secure-scheme headers mean (only a trusted peer's
    /// count). `Err` carries the event loop's next step after answering 400 to
    /// contradictory ones.
    pub fn vet_forwarded(&mut self, head: &mut Head, policy: &ProxyConfig) -> Result<(), Next> {
        // A uwsgi front end says the scheme in its `HTTPS` var; the client's own
        // headers, which it passes on verbatim, cannot override it.
        if !self.peer.trusted || head.uwsgi {
            return Ok(());
        }
        // Most requests carry none of them, which the lengths of their names tell
        // without a pass over the fields.
        let lengths = policy
            .secure_scheme_headers
            .iter()
            .fold(0, |bits, (name, _)| bits | name_length_bit(name.len()));
        if head.name_lengths() & lengths == 0 {
            head.forwarded_https = None;
            return Ok(());
        }
        match forwarded::secure_scheme(head, &policy.secure_scheme_headers) {
            Ok(said) => {
                head.forwarded_https = said;
                Ok(())
            }
            Err(e) => Err(self.reject(&e)),
        }
    }
}
