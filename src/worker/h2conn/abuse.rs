//! Abuse limits of an HTTP/2 connection: a verdict ([`Calm`]) from the frame tap, the
//! waiting-stream cap or h2's own limits ends the connection with
//! GOAWAY(ENHANCE_YOUR_CALM) and one warning, then discards what the client still
//! sends until it closes, so no reset destroys the GOAWAY on its way.

use std::io::{self, Read};

use super::{Calm, H2Conn};
use crate::worker::stream::Stream;

impl H2Conn {
    /// A limit was passed: stop reading, and end the connection with
    /// GOAWAY(ENHANCE_YOUR_CALM) and one warning; the worker serves everyone else.
    pub(super) fn too_much(&mut self, why: &str) {
        if self.calm != Calm::Fine {
            return;
        }
        let ip = self
            .peer
            .remote
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        tracing::warn!("HTTP/2 connection from ip={ip} ended (ENHANCE_YOUR_CALM): {why}");
        self.calm = Calm::Due;
    }

    /// h2 ended the connection. When it sent GOAWAY for the client's fault (a
    /// protocol error, or one of its own limits: resets of unaccepted streams,
    /// CONTINUATION frames, locally reset streams), that is logged like our limits and
    /// the client's further bytes are discarded until it closes; a vanished client is
    /// only a debug line.
    pub(super) fn ended_by_h2(&mut self, e: &h2::Error) {
        if !e.is_go_away() || e.is_remote() {
            tracing::debug!("HTTP/2 connection from {:?}: {e}", self.peer.remote);
            return;
        }
        let reason = e.reason().unwrap_or(h2::Reason::PROTOCOL_ERROR);
        let ip = self
            .peer
            .remote
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        tracing::warn!("HTTP/2 connection from ip={ip} ended ({reason:?}): {e}");
        if self.calm == Calm::Fine {
            self.calm = Calm::Sent;
        }
    }

    /// After a limit was passed: what the client still sends is read and dropped
    /// until the GOAWAY is out and the connection closes (closing with unread bytes
    /// would make the kernel send a reset, which can destroy the GOAWAY in the
    /// client's buffers). Bounded per turn; the client stops once it reads the GOAWAY.
    pub(super) fn discard_input(&mut self, stream: &mut Stream) {
        for _ in 0..64 {
            match stream.read(&mut self.scratch) {
                Ok(0) => {
                    self.read_closed = true;
                    return;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.unread = false;
                    return;
                }
            }
        }
        self.unread = true;
    }
}
