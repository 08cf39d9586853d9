//! The environ values that repeat request after request, kept as Python strings so a
//! request whose value is the same as the last one's shares the string instead of
//! decoding a new one.
//!
//! Behind nginx every request of a worker carries the same `Host`, comes from the same
//! `REMOTE_ADDR` (the proxy) and names the same `SERVER_NAME`/`SERVER_PORT`; a kept-alive
//! connection keeps its `REMOTE_PORT`; browsers of one population send a handful of
//! `User-Agent`, `Accept` and `Accept-Encoding` values. Each of those cost a string
//! allocation, a copy and a free per request (about 150 instructions each, measured with
//! `benches/instructions.sh`). One slot per field remembers the last value: a hit is a
//! byte comparison and a reference count; a miss decodes as before and replaces the slot.
//! Python strings are immutable, so sharing one between requests is invisible to apps.
//!
//! Values that are secrets (`Cookie`, `Authorization`) or that differ on nearly every
//! request (the path, the query, `X-Forwarded-For`) get no slot: they are never kept
//! beyond their request.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::environ::{py_latin1, ServerValues};

/// Which remembered field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    ServerName,
    ServerPort,
    RemoteAddr,
    /// A request header, by its position in the environ's table of common headers
    /// (`crate::wsgi::environ`), which says which ones are remembered.
    Header(usize),
}

/// Longer values are decoded afresh each time: a slot holds at most this many bytes, so
/// the memo's size is bounded whatever clients send.
pub const MAX_REMEMBERED: usize = 256;

/// The three server and peer fields, then one per common header.
const SLOTS: usize = 3 + super::environ::COMMON_HEADER_COUNT;

/// REMOTE_PORT strs are kept by port, in this many slots (a port's slot is the port
/// modulo it: a prime, as the kernel hands out ports of one parity to `connect`).
pub const PORT_SLOTS: usize = 127;

/// Each slot: the port and its str.
type PortSlots = [Option<(u16, Py<PyString>)>; PORT_SLOTS];

fn index(field: Field) -> usize {
    match field {
        Field::ServerName => 0,
        Field::ServerPort => 1,
        Field::RemoteAddr => 2,
        Field::Header(i) => 3 + i,
    }
}

/// One worker's slots. A `Mutex` because gthread workers build environs on several
/// threads. Holding the GIL does not make it uncontended: a build can let go of the
/// GIL while it holds the slots (a first `intern!` waits detached; running Python code
/// can switch threads), so another thread may take the GIL and then wait for the
/// slots. See [`ValueMemo::lock`].
#[derive(Default)]
pub struct ValueMemo {
    slots: Mutex<Slots>,
}

#[derive(Default)]
pub struct Slots {
    last: [Option<(Vec<u8>, Py<PyString>)>; SLOTS],
    /// REMOTE_PORT strs by port (see [`Slots::port_str`]); boxed, allocated on first use.
    ports: Option<Box<PortSlots>>,
    /// The environ template with the server values that last repeated.
    warm: Option<Warm>,
    /// `warm` with the leading request headers that last repeated stored too.
    header_warm: Option<HeaderWarm>,
}

/// A copy of the warm template with the first request headers stored too (see
/// `environ::template_for`): the fields (index among the common headers, value) it
/// holds, which a request must begin with, in this order, to use it.
pub struct HeaderWarm {
    pub dict: Py<PyDict>,
    pub fields: Vec<(usize, Vec<u8>)>,
    /// Those fields' lines as the request that made this template sent them
    /// (`Head::leading_fields`): a request whose bytes there are the same begins with
    /// the same fields, which one comparison tells (see `environ::template_for`).
    pub lines: Vec<u8>,
}

/// A copy of the environ template with SERVER_NAME, SERVER_PORT and REMOTE_ADDR
/// stored, and the bytes they were made from (see `environ::template_for`).
struct Warm {
    dict: Py<PyDict>,
    name: Vec<u8>,
    port: Vec<u8>,
    remote_addr: Option<Vec<u8>>,
}

impl Warm {
    fn holds(&self, server: &ServerValues<'_>) -> bool {
        self.name == server.name
            && self.port == server.port
            && self.remote_addr.as_deref() == server.remote_addr
    }
}

impl ValueMemo {
    /// The slots, for the length of one environ's build. A thread that finds them
    /// taken waits without the GIL: the holder may need the GIL back to finish its
    /// build, and waiting with it deadlocked both app threads of a gthread worker (the
    /// first requests, which initialise the interned keys, did so now and then).
    pub fn lock(&self, py: Python<'_>) -> std::sync::MutexGuard<'_, Slots> {
        use pyo3::sync::MutexExt;
        self.slots
            .lock_py_attached(py)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Slots {
    /// The warm template, if it holds these values.
    pub fn warm_for<'py>(
        &self,
        py: Python<'py>,
        server: &ServerValues<'_>,
    ) -> Option<&Bound<'py, PyDict>> {
        let warm = self.warm.as_ref()?;
        warm.holds(server).then(|| warm.dict.bind(py))
    }

    /// Whether these values are the ones the last request had (the slots hold them).
    pub fn repeats(&self, server: &ServerValues<'_>) -> bool {
        self.last_was(Field::ServerName, server.name)
            && self.last_was(Field::ServerPort, server.port)
            && server
                .remote_addr
                .is_none_or(|addr| self.last_was(Field::RemoteAddr, addr))
    }

    /// Makes `dict` (the template with these values stored) the warm template; the
    /// warm template with headers, made from the one before, goes.
    pub fn keep_warm(&mut self, dict: Bound<'_, PyDict>, server: &ServerValues<'_>) {
        self.header_warm = None;
        self.warm = Some(Warm {
            dict: dict.unbind(),
            name: server.name.to_vec(),
            port: server.port.to_vec(),
            remote_addr: server.remote_addr.map(<[u8]>::to_vec),
        });
    }

    /// The warm template with headers, if any (made from the current warm template).
    pub fn header_warm(&self) -> Option<&HeaderWarm> {
        self.header_warm.as_ref()
    }

    /// Makes `warm` the warm template with headers.
    pub fn keep_header_warm(&mut self, warm: HeaderWarm) {
        self.header_warm = Some(warm);
    }

    /// Whether `field`'s last value was `bytes`.
    pub fn last_was(&self, field: Field, bytes: &[u8]) -> bool {
        self.last[index(field)]
            .as_ref()
            .is_some_and(|(seen, _)| seen.as_slice() == bytes)
    }

    /// REMOTE_PORT's str for `port` (`text` its decimal bytes): the one kept for the
    /// port if any. A connection keeps its port, so each kept-alive connection makes
    /// its str once, also with many connections' requests interleaved (one slot, as the
    /// other fields have, missed on every request then: ~300 instructions each).
    pub fn port_str<'py>(
        &mut self,
        py: Python<'py>,
        port: u16,
        text: &[u8],
    ) -> PyResult<Bound<'py, PyString>> {
        let ports = self
            .ports
            .get_or_insert_with(|| Box::new([const { None }; PORT_SLOTS]));
        let slot = &mut ports[usize::from(port) % PORT_SLOTS];
        if let Some((kept, s)) = slot {
            if *kept == port {
                return Ok(s.bind(py).clone());
            }
        }
        let s = py_latin1(py, text)?;
        *slot = Some((port, s.clone().unbind()));
        Ok(s)
    }

    /// `bytes` as a latin-1 str: the remembered one when it holds the same bytes.
    pub fn str<'py>(
        &mut self,
        py: Python<'py>,
        field: Field,
        bytes: &[u8],
    ) -> PyResult<Bound<'py, PyString>> {
        let slot = &mut self.last[index(field)];
        if let Some((seen, text)) = slot.as_ref() {
            if seen.as_slice() == bytes {
                return Ok(text.bind(py).clone());
            }
        }
        let text = py_latin1(py, bytes)?;
        if bytes.len() <= MAX_REMEMBERED {
            match slot {
                Some((seen, kept)) => {
                    seen.clear();
                    seen.extend_from_slice(bytes);
                    *kept = text.clone().unbind();
                }
                None => *slot = Some((bytes.to_vec(), text.clone().unbind())),
            }
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_value_shares_its_string_and_a_new_one_replaces_it() {
        Python::initialize();
        Python::attach(|py| {
            let memo = ValueMemo::default();
            let mut slots = memo.lock(py);
            let a = slots.str(py, Field::ServerName, b"example.com").unwrap();
            let b = slots.str(py, Field::ServerName, b"example.com").unwrap();
            assert!(a.is(&b), "the same bytes give the same string");
            assert_eq!(b.to_str().unwrap(), "example.com");
            let other = slots.str(py, Field::ServerPort, b"example.com").unwrap();
            assert!(!other.is(&a), "each field has its own slot");
            let c = slots.str(py, Field::ServerName, b"example.org").unwrap();
            assert_eq!(c.to_str().unwrap(), "example.org");
            let d = slots.str(py, Field::ServerName, b"example.org").unwrap();
            assert!(c.is(&d));
            let latin = slots.str(py, Field::Header(1), b"caf\xe9").unwrap();
            assert_eq!(latin.to_str().unwrap(), "caf\u{e9}");
        });
    }

    #[test]
    fn long_values_are_never_kept() {
        Python::initialize();
        Python::attach(|py| {
            let memo = ValueMemo::default();
            let mut slots = memo.lock(py);
            let long = vec![b'a'; MAX_REMEMBERED + 1];
            let a = slots.str(py, Field::Header(1), &long).unwrap();
            let b = slots.str(py, Field::Header(1), &long).unwrap();
            assert!(!a.is(&b));
            assert_eq!(b.to_str().unwrap().len(), MAX_REMEMBERED + 1);
        });
    }
}
