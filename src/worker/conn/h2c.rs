//! Cleartext HTTP/2 (h2c) on a plaintext connection, Gunicorn 27's rules: only a peer
//! in `--forwarded-allow-ips` (unix sockets count as trusted) gets it; anyone else is
//! served HTTP/1.x exactly as with `--http2-cleartext off`.
//!
//! - **Prior knowledge** (`prior-knowledge`, `both`): the connection starts in
//!   [`Phase::Preface`]; the bytes read are compared with the preface
//!   ([`h2c::preface_match`]). A match becomes HTTP/2 ([`Next::Http2`]), the bytes read
//!   seeding h2's input. The whole preface has 1 s from its first bytes, checked by the
//!   event loop's once-a-second sweep ([`Conn::preface_overdue`]), never by waiting.
//!   A mismatch or a stall is a 400 with Gunicorn's log line under `prior-knowledge`;
//!   under `both` the bytes go to the HTTP/1 parser unchanged.
//! - **Upgrade** (`upgrade`, `both`): a complete HTTP/1 request that passes
//!   [`h2c::upgrade_settings`] becomes HTTP/2 too; the event loop takes it out with
//!   [`Conn::take_upgrade`] and serves it as stream 1.

use super::{Conn, Next, Phase};
use crate::config::http2::Cleartext;
use crate::http::h2c::{self, Preface};
use crate::http::request::Head;
use crate::http::HttpError;

impl Conn {
    /// h2c for this connection: the server's offer, for a trusted peer only.
    pub(super) fn admit_h2c(&mut self, offer: Cleartext) {
        self.h2c = if self.peer.trusted {
            offer
        } else {
            Cleartext::Off
        };
        if matches!(self.phase, Phase::Head) {
            self.phase = self.head_phase();
        }
    }

    /// Where a fresh connection's first request begins: with the preface sniff when
    /// prior knowledge applies.
    pub(super) fn head_phase(&self) -> Phase {
        if self.h2c.prior_knowledge() && self.served == 0 {
            Phase::Preface { deadline: None }
        } else {
            Phase::Head
        }
    }

    /// Compares what was read with the preface. `None`: go on parsing HTTP/1 (the
    /// phase is then `Head`); `Some`: what the event loop does now.
    pub(super) fn advance_preface(&mut self) -> Option<Next> {
        let data = self.rbuf.data();
        match h2c::preface_match(data) {
            Preface::Match => Some(Next::Http2),
            Preface::Partial if data.is_empty() || !self.read_closed => {
                if let Phase::Preface { deadline } = &mut self.phase {
                    if !data.is_empty() && deadline.is_none() {
                        *deadline = Some(crate::sys::monotonic_millis() + h2c::PREFACE_TIMEOUT_MS);
                    }
                }
                Some(self.wait_or_close())
            }
            // A mismatch, or a partial preface the client stopped sending.
            _ => self.not_a_preface(),
        }
    }

    /// The client did not send the preface: a 400 when prior knowledge is the only
    /// way in (a trusted peer must speak HTTP/2 there), else HTTP/1 from the same bytes.
    fn not_a_preface(&mut self) -> Option<Next> {
        if self.h2c == Cleartext::PriorKnowledge {
            let why = h2c::preface_error(self.rbuf.data());
            return Some(self.refuse(&HttpError::bad(why.clone()), &why));
        }
        self.phase = Phase::Head;
        None
    }

    /// The preface's budget is spent (called by the event loop's sweep).
    pub fn preface_overdue(&self, now_ms: u64) -> bool {
        matches!(self.phase, Phase::Preface { deadline: Some(d) } if now_ms >= d)
    }

    /// What the event loop does with a connection whose preface stalled: the 400, or
    /// (`both`) the bytes so far parsed as HTTP/1.
    pub fn preface_timed_out(&mut self, limits: &crate::http::request::Limits) -> Next {
        match self.not_a_preface() {
            Some(next) => next,
            None => self.advance(limits),
        }
    }

    /// The request that asked for `Upgrade: h2c`, out of the connection, for stream 1;
    /// `None` when the connection became HTTP/2 another way.
    pub fn take_upgrade(&mut self) -> Option<(Box<Head>, crate::http::body::Body)> {
        match &self.phase {
            Phase::Ready { head, .. } if self.h2c.upgrade() && wants_upgrade(head) => {
                self.take_request()
            }
            _ => None,
        }
    }
}

/// A complete request that asks for h2c well enough to be upgraded. Beyond
/// Gunicorn's checks, its target must be origin-form and fit in one HEADERS frame
/// of the smallest size h2 accepts (stream 1 is opened with it; see
/// `worker/h2conn/upgrade.rs`): otherwise it is answered over HTTP/1.1.
pub(super) fn wants_upgrade(head: &Head) -> bool {
    !head.http2
        && head.target().starts_with('/')
        && head.target().len() + head.method().len() < 16_000
        && h2c::upgrade_settings(head).is_some()
}
