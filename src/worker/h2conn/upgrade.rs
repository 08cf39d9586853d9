//! h2c Upgrade (RFC 7540 §3.2): an HTTP/1.1 request with `Upgrade: h2c` is answered
//! `101 Switching Protocols`, and then, over HTTP/2, as stream 1.
//!
//! The `h2` crate has no upgrade API (hyperium/h2#220), so stream 1 is opened the
//! way a client would: after the client's preface and its first frame (the SETTINGS
//! h2 must read first), a HEADERS frame for stream 1 with END_STREAM is spliced into
//! h2's input ([`h2c::stream1_headers`]). Its header block holds only the pseudo
//! headers, as HPACK literals *without indexing*, so h2's decoder table stays as the
//! client's encoder (which never saw the frame) assumes. That gives stream 1 its
//! `SendResponse`; the request itself is the HTTP/1 one already parsed, put through
//! [`Head::from_fields`] (the same policy as any HTTP/2 stream, minus the
//! connection-specific fields), with its body (at most 64 KiB) read over HTTP/1.
//!
//! The client's `HTTP2-Settings` are checked ([`h2c::upgrade_settings`]) but not
//! given to h2: it cannot take them, and RFC 7540 §3.5 has the client send its
//! SETTINGS frame right after the preface anyway (curl and nghttp send the same
//! values there), which h2 applies. Until that frame is in, h2 is not polled, so the
//! server's SETTINGS follow the 101 as soon as the client's preface arrives.

use super::{lock, H2Conn, ReadyStream};
use crate::config::http2::Http2Config;
use crate::http::body::Body;
use crate::http::h2c;
use crate::http::request::{Head, Limits};
use crate::http::{forwarded, HttpError};

/// An upgraded request on its way to stream 1.
pub(super) struct Upgrade {
    /// Stream 1's HEADERS, until spliced into h2's input.
    headers: Option<Vec<u8>>,
    /// The request (or why it is refused), until h2 opens stream 1.
    request: Option<Result<(Box<Head>, Body), HttpError>>,
}

/// Fields of the HTTP/1 request that belong to its connection, not to stream 1.
const CONNECTION_FIELDS: [&str; 5] = [
    "connection",
    "upgrade",
    "http2-settings",
    "keep-alive",
    "transfer-encoding",
];

impl H2Conn {
    /// Serves `head` (an `Upgrade: h2c` request, already vetted by
    /// `worker/conn/h2c.rs`) as stream 1: the 101 goes out first, then h2's SETTINGS.
    pub fn upgrade(
        &mut self,
        head: Head,
        body: Body,
        limits: &Limits,
        proxy: &crate::config::proxy::ProxyConfig,
        settings: &Http2Config,
    ) {
        let pseudo = [
            (":method", head.method()),
            (":scheme", "http"),
            (":path", head.target()),
        ];
        let headers = h2c::stream1_headers(&pseudo, settings.max_frame_size);
        lock(&self.bufs)
            .outbound
            .extend_from_slice(h2c::UPGRADE_101);
        let request = stream1_head(&head, limits, proxy).map(|h| (Box::new(h), body));
        self.upgrading = Some(Box::new(Upgrade {
            headers,
            request: Some(request),
        }));
    }

    /// Splices stream 1's HEADERS into h2's input once the client's preface and
    /// first frame are in. False while h2 must wait for them.
    pub(super) fn splice_upgrade(&mut self) -> bool {
        let Some(upgrade) = self.upgrading.as_mut() else {
            return true;
        };
        let Some(headers) = upgrade.headers.as_ref() else {
            return true;
        };
        let mut bufs = lock(&self.bufs);
        let inbound = &mut bufs.inbound;
        let at = match h2c::after_first_frame(inbound) {
            Some(at) => at,
            // Not a SETTINGS frame first, or an oversized one: h2 refuses it itself.
            None if inbound.len() >= h2c::PREFACE.len() + 9
                && (inbound[h2c::PREFACE.len() + 3] != 0x4
                    || inbound.len() >= super::IN_HIGH_WATER) =>
            {
                drop(bufs);
                upgrade.headers = None;
                return true;
            }
            None => return false,
        };
        let rest = inbound.split_off(at);
        inbound.extend_from_slice(headers);
        inbound.unsplit(rest);
        upgrade.headers = None;
        drop(bufs);
        // Its stream comes out of h2 like a client's: count its block as one.
        self.tap.add_block();
        true
    }

    /// Stream 1's request when `respond` is stream 1 of an upgraded connection; it
    /// is then queued for a thread (or refused) here.
    pub(super) fn take_stream1(
        &mut self,
        respond: h2::server::SendResponse<bytes::Bytes>,
    ) -> Option<h2::server::SendResponse<bytes::Bytes>> {
        if u32::from(respond.stream_id()) != 1 {
            return Some(respond);
        }
        let Some(request) = self.upgrading.take().and_then(|mut u| u.request.take()) else {
            return Some(respond);
        };
        match request {
            Ok((head, body)) => self.ready.push_back(ReadyStream {
                head,
                body,
                respond,
            }),
            Err(e) => self.refuse(respond, false, &e),
        }
        None
    }
}

/// The HTTP/1 head as an HTTP/2 stream's, through [`Head::from_fields`], with the
/// secure-scheme headers of the (trusted) peer applied as for any stream.
fn stream1_head(
    head: &Head,
    limits: &Limits,
    proxy: &crate::config::proxy::ProxyConfig,
) -> Result<Head, HttpError> {
    let fields: Vec<(&[u8], &[u8])> = head
        .fields()
        .filter(|(name, _)| {
            !CONNECTION_FIELDS
                .iter()
                .any(|c| name.eq_ignore_ascii_case(c))
        })
        .map(|(name, value)| (name.as_bytes(), value))
        .collect();
    let mut stream = Head::from_fields(head.method(), head.target(), &fields, limits)?;
    stream.forwarded_https = forwarded::secure_scheme(&stream, &proxy.secure_scheme_headers)?;
    Ok(stream)
}
