//! The WebSocket handshake's answers, as the app decides: the 101 of
//! `websocket.accept`, a 403 for a close before accept, or the HTTP response of a
//! `websocket.http.response` denial.

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::super::cycle::message_headers;
use super::{State, WsCycle};
use crate::http::response;

impl WsCycle {
    pub(super) fn accept_handshake(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let mut head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
            self.accept
        );
        if let Some(sub) = message.get_item(intern!(py, "subprotocol"))? {
            if !sub.is_none() {
                let sub: String = sub.extract()?;
                head.push_str(&format!("Sec-WebSocket-Protocol: {sub}\r\n"));
            }
        }
        for (name, value) in message_headers(message)? {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.status = 101;
        self.state = State::Open;
        self.write(head.as_bytes());
        // Frames the client sent right after its handshake were read with it.
        if let Some(conn) = self.conn.as_mut() {
            self.rbuf.extend_from_slice(&conn.take_unparsed());
        }
        if let Err(e) = self.handle_frames(py) {
            self.fail_after_inbox(e);
        }
        self.on_readable(py);
        Ok(())
    }

    /// An HTTP answer instead of the upgrade (403 for a close before accept).
    pub(super) fn deny(&mut self, status: u16, headers: &[(String, String)], body: &[u8]) {
        let plan = response::Plan {
            framing: response::Framing::Length(body.len() as u64),
            keep_alive: false,
        };
        let mut headers = headers.to_vec();
        headers.retain(|(n, _)| {
            !response::is_hop_by_hop(n) && !n.eq_ignore_ascii_case("content-length")
        });
        headers.push(("Content-Length".into(), body.len().to_string()));
        let mut out = Vec::new();
        let line = format!("{status} {}", response::reason_phrase(status));
        response::write_head(&mut out, 1, &line, &headers, &plan);
        out.extend_from_slice(body);
        self.status = status;
        self.sent = body.len() as u64;
        self.write(&out);
        self.lost(1006);
    }

    /// `websocket.http.response.start`: a denial begins; its body follows.
    pub(super) fn denial_start(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let status: u16 = message
            .get_item(intern!(py, "status"))?
            .ok_or_else(|| PyValueError::new_err("websocket.http.response.start needs a status"))?
            .extract()?;
        self.denial = Some((status, message_headers(message)?, Vec::new()));
        self.state = State::Denying;
        Ok(())
    }

    /// `websocket.http.response.body`: collected until the last, then the denial
    /// is written whole.
    pub(super) fn denial_body(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let body: Vec<u8> = match message.get_item(intern!(py, "body"))? {
            Some(b) => b.extract()?,
            None => Vec::new(),
        };
        let more = match message.get_item(intern!(py, "more_body"))? {
            Some(m) => m.is_truthy()?,
            None => false,
        };
        if let Some(denial) = self.denial.as_mut() {
            denial.2.extend_from_slice(&body);
        }
        if !more {
            let (status, headers, body) = self.denial.take().expect("set at start");
            self.deny(status, &headers, &body);
        }
        Ok(())
    }
}
