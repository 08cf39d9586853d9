//! The streams of an HTTP/2 connection while their requests arrive: the head through
//! the shared header policy (or a refusal on the stream), the body into a
//! [`BodyBuffer`], and complete requests queued for the app threads.

use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;

use super::{H2Conn, ReadyStream, Receiving};
use crate::config::proxy::ProxyConfig;
use crate::http::body::BodyBuffer;
use crate::http::request::Limits;
use crate::http::{forwarded, h2 as glue, HttpError};

/// What the request bodies of one connection may hold in memory together (each body
/// also spools past [`crate::http::body::MEMORY_LIMIT`] on its own): beyond it, bodies
/// go to temporary files, so many streams cannot multiply a body's memory.
const BODY_MEMORY: usize = 4 * 1024 * 1024;

impl H2Conn {
    /// Body bytes this connection holds in memory: arriving and waiting for a thread.
    fn bodies_in_memory(&self) -> usize {
        let arriving: usize = self.receiving.iter().map(|r| r.buffer.in_memory()).sum();
        let waiting: usize = self
            .ready
            .iter()
            .map(|r| match &r.body {
                crate::http::body::Body::Memory(v) => v.len(),
                crate::http::body::Body::File(..) => 0,
            })
            .sum();
        arriving + waiting
    }

    /// A new stream: its head through the shared header policy, or an error page on
    /// the stream (the connection goes on). True when it queued no frame for h2 to
    /// send (no page, no 100 Continue).
    pub(super) fn accept_stream(
        &mut self,
        request: http::Request<RecvStream>,
        respond: SendResponse<Bytes>,
        limits: &Limits,
        proxy: &ProxyConfig,
    ) -> bool {
        let Some(mut respond) = self.take_stream1(respond) else {
            return false; // An upgraded request's stream 1, served from its HTTP/1 head.
        };
        let (parts, recv) = request.into_parts();
        let for_peer = if self.peer.trusted {
            *limits
        } else {
            limits.for_untrusted_peer()
        };
        let head = glue::head_from_parts(&parts, &for_peer).and_then(|mut head| {
            if self.peer.trusted {
                head.forwarded_https =
                    forwarded::secure_scheme(&head, &proxy.secure_scheme_headers)?;
            }
            Ok(head)
        });
        match head {
            Ok(head) => {
                let continues = head.expect_continue && !recv.is_end_stream();
                if continues {
                    let _ = respond.send_informational(
                        http::Response::builder()
                            .status(100)
                            .body(())
                            .unwrap_or_default(),
                    );
                }
                self.receiving.push(Receiving {
                    head,
                    recv,
                    respond,
                    buffer: BodyBuffer::default(),
                });
                !continues
            }
            Err(e) => {
                self.refuse(respond, !recv.is_end_stream(), &e);
                false
            }
        }
    }

    /// Answers a refused stream with its error page (Gunicorn's log line). A client
    /// still sending its body is then asked to stop (RST_STREAM NO_ERROR, RFC 9113
    /// §8.1) once the page is out: a reset now would drop the queued page.
    pub(super) fn refuse(
        &mut self,
        mut respond: SendResponse<Bytes>,
        body_open: bool,
        err: &HttpError,
    ) {
        let ip = self
            .peer
            .remote
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        tracing::warn!("Invalid request from ip={ip}: {err}");
        let (head, body) = glue::error_response(err);
        if let Ok(mut send) = respond.send_response(head, false) {
            let _ = send.send_data(body, true);
        }
        if body_open {
            self.resets.push(respond);
        }
    }

    /// Streams the client reset while they waited for a thread are dropped (h2 no
    /// longer counts them against the concurrency limit, so a client could otherwise
    /// pile them up: Go's rule); more than 4 × `--http2-max-concurrent-streams` still
    /// waiting ends the connection.
    ///
    /// Only after the client sent RST_STREAM: polling every waiting stream on every
    /// turn took each stream's lock, 3.4% of the worker's CPU under h2load -m 100.
    pub(super) fn check_waiting(&mut self) {
        let resets_seen = self.tap.resets_seen();
        if resets_seen != self.resets_checked {
            self.resets_checked = resets_seen;
            let noop = Waker::noop();
            let mut cx = Context::from_waker(noop);
            self.ready
                .retain_mut(|r| r.respond.poll_reset(&mut cx).is_pending());
        }
        if self.ready.len() > 4 * self.max_running {
            let why = format!("more than {} streams waiting", 4 * self.max_running);
            self.too_much(&why);
        }
    }

    /// Moves arrived DATA into each stream's body buffer (returning the window to the
    /// client as it goes); a stream whose request is complete becomes ready.
    pub(super) fn receive_bodies(&mut self, limits: &Limits) {
        let noop = Waker::noop();
        let mut cx = Context::from_waker(noop);
        let mut i = 0;
        while i < self.receiving.len() {
            match self.receive_one(i, limits, &mut cx) {
                Poll::Pending => i += 1,
                Poll::Ready(Ok(())) => {
                    let Receiving {
                        head,
                        respond,
                        buffer,
                        ..
                    } = self.receiving.swap_remove(i);
                    match buffer.finish() {
                        Ok(body) => self.ready.push_back(ReadyStream {
                            head,
                            body,
                            respond,
                        }),
                        Err(e) => tracing::error!("cannot buffer an HTTP/2 request body: {e}"),
                    }
                }
                Poll::Ready(Err(e)) => {
                    let gone = self.receiving.swap_remove(i);
                    if let Some(e) = e {
                        let body_open = !gone.recv.is_end_stream();
                        self.refuse(gone.respond, body_open, &e);
                    }
                }
            }
        }
    }

    /// `Ready(Ok)`: complete; `Ready(Err(Some))`: refuse with that error;
    /// `Ready(Err(None))`: the client reset the stream.
    pub(super) fn receive_one(
        &mut self,
        i: usize,
        limits: &Limits,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Option<HttpError>>> {
        let mut held = self.bodies_in_memory();
        let r = &mut self.receiving[i];
        loop {
            if r.recv.is_end_stream() {
                return Poll::Ready(Ok(()));
            }
            match r.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let _ = r.recv.flow_control().release_capacity(chunk.len());
                    let total = r.buffer.len() + chunk.len() as u64;
                    if let Some(max) = limits.body.filter(|&max| total > max) {
                        return Poll::Ready(Err(Some(HttpError::PayloadTooLarge(format!(
                            "request body is over the limit of {max} bytes"
                        )))));
                    }
                    held += chunk.len();
                    let pushed = if held > BODY_MEMORY {
                        // Past the connection's share: this body goes to a file.
                        held -= r.buffer.in_memory() + chunk.len();
                        r.buffer.spool().and_then(|()| r.buffer.push(&chunk))
                    } else {
                        r.buffer.push(&chunk)
                    };
                    if let Err(e) = pushed {
                        let why = format!("cannot buffer body: {e}");
                        return Poll::Ready(Err(Some(HttpError::bad(why))));
                    }
                }
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Err(None)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
