//! A connection speaking the uwsgi protocol (`--protocol uwsgi`): each request is a
//! packet ([`crate::http::uwsgi`]) whose head joins the HTTP/1 path — body, app call,
//! response framing, keep-alive — from there on.

use super::{Conn, Next};
use crate::config::proxy::{Protocol, ProxyConfig};
use crate::http::request::{Head, Limits};
use crate::http::uwsgi;
use crate::http::HttpError;
use crate::wsgi::environ::InlineText;

impl Conn {
    /// With `--protocol uwsgi`, decides from the socket's peer address whether it may
    /// send packets; unix-socket peers may.
    pub(super) fn admit_uwsgi(&mut self, policy: &ProxyConfig) {
        if policy.protocol == Protocol::Uwsgi {
            let ip = self.peer.remote.map(|addr| addr.ip());
            self.uwsgi = Some(ip.is_none_or(|ip| policy.uwsgi_allow_ips.allows(ip)));
        }
    }

    /// Parses the packet at the start of the read buffer. `Ok(None)`: more bytes are
    /// needed; `Err`: the packet was refused (logged, answered, closing).
    pub(super) fn parse_uwsgi(
        &mut self,
        allowed: bool,
        limits: &Limits,
    ) -> Result<Option<Box<Head>>, Next> {
        if !allowed {
            let ip = self.peer.remote_ip;
            let why = format!(
                "uwsgi: request from '{}' not allowed (--uwsgi-allow-from)",
                ip.as_str()
            );
            return Err(self.reject(&HttpError::Forbidden(why)));
        }
        match uwsgi::parse(self.rbuf.data(), limits) {
            Ok(None) => Ok(None),
            Ok(Some((packet, used))) => {
                self.rbuf.consume(used);
                let mut head = packet.head;
                head.forwarded_https = Some(packet.https);
                if let Some(remote) = packet.remote {
                    self.peer.remote = Some(remote);
                    self.peer.remote_ip = InlineText::display(remote.ip());
                    self.peer.remote_port = InlineText::display(remote.port());
                }
                Ok(Some(Box::new(head)))
            }
            Err(e) => Err(self.reject(&e.to_http())),
        }
    }
}
