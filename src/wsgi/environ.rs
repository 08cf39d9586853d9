//! The PEP 3333 environ for one request.

use std::borrow::Cow;
use std::net::SocketAddr;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::http::forwarded::{forwarder_may_set, url_scheme};
use crate::http::proxy_protocol;
use crate::http::request::Head;
use crate::http::target::{latin1, percent_decode, split_target};

use super::value_memo::{Field, HeaderWarm, Slots, ValueMemo, MAX_REMEMBERED};

mod reuse;
pub use reuse::KeptEnviron;
use reuse::{Reusable, Stored};

/// Where the request came from and which listener took it.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// None for unix-socket clients (REMOTE_ADDR is then empty, as in Gunicorn).
    /// With the PROXY protocol, the client the proxy announced.
    pub remote: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    /// REMOTE_ADDR and REMOTE_PORT as text, formatted once per connection rather
    /// than once per request.
    pub remote_ip: InlineText,
    pub remote_port: InlineText,
    /// The connection is TLS (see [`crate::http::forwarded::url_scheme`]).
    pub secure: bool,
    /// The peer may set secure-scheme and forwarder headers (`--forwarded-allow-ips`,
    /// decided on the socket's own address; unix-socket peers always may).
    pub trusted: bool,
    /// What a PROXY protocol header said, for every request of the connection.
    pub proxy: Option<ProxyOrigin>,
}

/// The PROXY header's facts beyond the client address (Gunicorn's `PROXY_*` keys).
#[derive(Clone, Copy, Debug)]
pub struct ProxyOrigin {
    /// `PROXY_PROTOCOL`: TCP4, TCP6, UNKNOWN, LOCAL or UNSPEC.
    pub protocol: &'static str,
    /// `PROXY_ADDR`/`PROXY_PORT`: the address the client connected to, when given.
    pub destination: Option<SocketAddr>,
}

impl Peer {
    /// A TCP client at `remote`, accepted on a listener bound to `local`.
    pub fn tcp(remote: SocketAddr, local: Option<SocketAddr>) -> Peer {
        Peer {
            remote: Some(remote),
            local,
            remote_ip: InlineText::ip(remote.ip()),
            remote_port: InlineText::decimal(remote.port()),
            secure: false,
            trusted: false,
            proxy: None,
        }
    }

    /// A unix-socket client (no address; trusted, as in Gunicorn).
    pub fn unix() -> Peer {
        Peer {
            remote: None,
            local: None,
            remote_ip: InlineText::default(),
            remote_port: InlineText::default(),
            secure: false,
            trusted: true,
            proxy: None,
        }
    }

    /// Takes the client address from a PROXY header: REMOTE_ADDR and REMOTE_PORT
    /// (and the access log) name the real client for the rest of the connection.
    /// Trust stays what the socket's own address earned.
    pub fn apply_proxy_header(&mut self, header: &proxy_protocol::Header) {
        let destination = header.addresses.map(|(client, proxy)| {
            self.remote = Some(client);
            self.remote_ip = InlineText::display(client.ip());
            self.remote_port = InlineText::display(client.port());
            proxy
        });
        self.proxy = Some(ProxyOrigin {
            protocol: header.protocol,
            destination,
        });
    }
}

/// Short text kept inline (an IPv6 address is at most 45 bytes), so a Peer stays Copy.
#[derive(Clone, Copy, Debug)]
pub struct InlineText {
    buf: [u8; 46],
    len: u8,
}

impl Default for InlineText {
    fn default() -> Self {
        InlineText {
            buf: [0; 46],
            len: 0,
        }
    }
}

impl InlineText {
    pub(crate) fn display(value: impl std::fmt::Display) -> InlineText {
        use std::io::Write;
        let mut text = InlineText::default();
        let mut cursor = std::io::Cursor::new(&mut text.buf[..]);
        if write!(cursor, "{value}").is_ok() {
            text.len = cursor.position() as u8;
        }
        text
    }

    /// An address as `Display` writes it; IPv4 without the formatting machinery, which
    /// was a visible part of a short connection's cost.
    fn ip(addr: std::net::IpAddr) -> InlineText {
        let std::net::IpAddr::V4(v4) = addr else {
            return InlineText::display(addr);
        };
        let mut text = InlineText::default();
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                text.push(b'.');
            }
            text.push_decimal(u16::from(octet));
        }
        text
    }

    fn decimal(n: u16) -> InlineText {
        let mut text = InlineText::default();
        text.push_decimal(n);
        text
    }

    fn push_decimal(&mut self, n: u16) {
        for &d in crate::http::decimal(u64::from(n), &mut [0; 20]) {
            self.push(d);
        }
    }

    /// Callers stay within the buffer: at most 15 bytes for IPv4, 5 for a port.
    fn push(&mut self, byte: u8) {
        self.buf[usize::from(self.len)] = byte;
        self.len += 1;
    }

    /// The text's bytes (ASCII), without the UTF-8 check of [`as_str`](Self::as_str):
    /// the environ takes them for every request.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

/// The per-worker constants that go into every environ: a template dict that each
/// request copies (one C-level copy instead of ten inserts), and the `HTTP_*` keys of
/// common headers built once.
pub struct EnvironConstants {
    pub script_name: String,
    template: Py<PyDict>,
    /// [`COMMON_HEADERS`]' names and keys, the keys made once per worker.
    header_keys: Vec<(&'static str, Py<PyString>)>,
    /// Headers with `_` a trusted peer may pass (`--forwarder-headers`).
    forwarder_headers: Vec<String>,
    /// `--header-map dangerous`: every header with `_` is kept.
    keep_underscore_headers: bool,
    /// The last value of each field that tends to repeat (Host, REMOTE_ADDR, ...).
    memo: ValueMemo,
}

/// Headers common enough to keep their environ key ready: (lowercase name, key, whether
/// the last value is remembered, see [`super::value_memo`]). Secrets (Cookie,
/// Authorization) and per-client values (X-Forwarded-For, Referer...) are not.
const COMMON_HEADERS: [(&str, &str, bool); 20] = [
    ("host", "HTTP_HOST", true),
    ("user-agent", "HTTP_USER_AGENT", true),
    ("accept", "HTTP_ACCEPT", true),
    ("accept-encoding", "HTTP_ACCEPT_ENCODING", true),
    ("accept-language", "HTTP_ACCEPT_LANGUAGE", true),
    ("connection", "HTTP_CONNECTION", true),
    ("content-type", "CONTENT_TYPE", true),
    ("content-length", "CONTENT_LENGTH", false),
    ("cookie", "HTTP_COOKIE", false),
    ("referer", "HTTP_REFERER", false),
    ("origin", "HTTP_ORIGIN", true),
    ("cache-control", "HTTP_CACHE_CONTROL", true),
    ("authorization", "HTTP_AUTHORIZATION", false),
    ("x-forwarded-for", "HTTP_X_FORWARDED_FOR", false),
    ("x-forwarded-proto", "HTTP_X_FORWARDED_PROTO", true),
    ("x-forwarded-host", "HTTP_X_FORWARDED_HOST", true),
    ("x-real-ip", "HTTP_X_REAL_IP", false),
    ("x-requested-with", "HTTP_X_REQUESTED_WITH", true),
    ("if-none-match", "HTTP_IF_NONE_MATCH", false),
    ("if-modified-since", "HTTP_IF_MODIFIED_SINCE", false),
];

/// How many common headers there are (each has a slot in the value memo).
pub const COMMON_HEADER_COUNT: usize = COMMON_HEADERS.len();

/// Where `content-length` is in [`COMMON_HEADERS`].
const CONTENT_LENGTH: usize = 7;

/// An environ key for a request header: its str, and where it is in [`COMMON_HEADERS`].
struct HeaderKey<'py> {
    key: Bound<'py, PyString>,
    common: Option<usize>,
}

impl EnvironConstants {
    /// The constants of one worker: its mount point and concurrency flags.
    pub fn new(
        py: Python<'_>,
        script_name: &str,
        multiprocess: bool,
        multithread: bool,
    ) -> PyResult<EnvironConstants> {
        let script_name = script_name.trim_end_matches('/').to_string();
        let t = PyDict::new(py);
        t.set_item("SCRIPT_NAME", &script_name)?;
        t.set_item(
            "SERVER_SOFTWARE",
            concat!("rustcorn/", env!("CARGO_PKG_VERSION")),
        )?;
        t.set_item("wsgi.version", (1, 0))?;
        t.set_item("wsgi.url_scheme", "http")?;
        t.set_item("wsgi.input_terminated", true)?;
        t.set_item("wsgi.errors", Bound::new(py, super::streams::ErrorStream)?)?;
        t.set_item("wsgi.multithread", multithread)?;
        t.set_item("wsgi.multiprocess", multiprocess)?;
        t.set_item("wsgi.run_once", false)?;
        t.set_item(
            "wsgi.file_wrapper",
            py.get_type::<super::streams::FileWrapper>(),
        )?;
        // What most requests have, so that they cost no store: a GET of HTTP/1.1 with
        // no query. The keys every request sets get a placeholder, so that the request's
        // store replaces a value in the copied table instead of inserting a key.
        t.set_item("REQUEST_METHOD", "GET")?;
        t.set_item("QUERY_STRING", "")?;
        t.set_item("SERVER_PROTOCOL", "HTTP/1.1")?;
        for always_set in [
            "PATH_INFO",
            "RAW_URI",
            "SERVER_NAME",
            "SERVER_PORT",
            "REMOTE_ADDR",
            "wsgi.input",
        ] {
            t.set_item(always_set, py.None())?;
        }
        let header_keys = COMMON_HEADERS
            .iter()
            .map(|&(name, key, _)| (name, PyString::intern(py, key).unbind()))
            .collect();
        let t = with_room_to_grow(&t)?;
        Ok(EnvironConstants {
            script_name,
            template: t.unbind(),
            header_keys,
            forwarder_headers: Vec::new(),
            keep_underscore_headers: false,
            memo: ValueMemo::default(),
        })
    }

    /// The `_` headers trusted peers may pass (upper case, or `*`); none by default.
    pub fn with_forwarder_headers(mut self, names: Vec<String>) -> EnvironConstants {
        self.forwarder_headers = names;
        self
    }

    /// `--header-map`: under `dangerous` headers with `_` all reach the environ.
    pub fn with_header_map(mut self, map: crate::http::request::HeaderMap) -> EnvironConstants {
        self.keep_underscore_headers = map == crate::http::request::HeaderMap::Dangerous;
        self
    }

    /// Where `name` is in [`COMMON_HEADERS`].
    fn common_index(&self, name: &str) -> Option<usize> {
        self.header_keys
            .iter()
            .position(|(known, _)| known.len() == name.len() && known.eq_ignore_ascii_case(name))
    }

    fn header_key<'py>(&self, py: Python<'py>, name: &str) -> HeaderKey<'py> {
        if let Some(i) = self.common_index(name) {
            return HeaderKey {
                key: self.header_keys[i].1.bind(py).clone(),
                common: Some(i),
            };
        }
        let mut key = String::with_capacity(5 + name.len());
        key.push_str("HTTP_");
        key.extend(name.bytes().map(|b| {
            if b == b'-' {
                '_'
            } else {
                b.to_ascii_uppercase() as char
            }
        }));
        HeaderKey {
            key: PyString::new(py, &key),
            common: None,
        }
    }
}

/// Bytes to a Python str, one code point per byte (PEP 3333's "native strings"),
/// decoded by CPython directly from the bytes.
pub fn py_latin1<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: the pointer and length describe a live slice; PyUnicode_DecodeLatin1
    // returns a new reference or NULL with an exception set, which from_owned_ptr_or_err
    // turns into a PyErr.
    unsafe {
        let ptr = pyo3::ffi::PyUnicode_DecodeLatin1(
            bytes.as_ptr().cast(),
            bytes.len() as pyo3::ffi::Py_ssize_t,
            std::ptr::null(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// Stores `value` under `key` unless the dict has that key already, in which case it
/// returns the value there: one probe of the table where `get_item` and then `set_item`
/// took two, for every header of every request.
fn insert_new<'py>(
    dict: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
    value: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let before = dict.len();
    // SAFETY: the three pointers are live objects the caller holds. PyDict_SetDefault
    // returns a borrowed reference to the value now under `key`, or NULL with an
    // exception set; the borrowed reference is turned into an owned one at once, while
    // the dict (which holds it) is alive.
    let now = unsafe {
        let ptr = pyo3::ffi::PyDict_SetDefault(dict.as_ptr(), key.as_ptr(), value.as_ptr());
        Bound::from_borrowed_ptr_or_err(dict.py(), ptr)?
    };
    // The value may be the very string already there (a remembered one), so whether the
    // key was new is told by the size, not by identity.
    Ok((dict.len() == before).then_some(now))
}

/// The method as a str, shared for the common ones (GET is the template's own).
fn method_str<'py>(py: Python<'py>, method: &str) -> Bound<'py, PyString> {
    match method {
        "POST" => intern!(py, "POST").clone(),
        "HEAD" => intern!(py, "HEAD").clone(),
        "PUT" => intern!(py, "PUT").clone(),
        "DELETE" => intern!(py, "DELETE").clone(),
        "PATCH" => intern!(py, "PATCH").clone(),
        "OPTIONS" => intern!(py, "OPTIONS").clone(),
        other => PyString::new(py, other),
    }
}

/// SERVER_NAME and SERVER_PORT from the Host header (its port, or the scheme's), or
/// the listener's address; as bytes, latin-1 decoded by the caller. Borrowed from the
/// Host header: this runs for every request.
fn server_name_port<'a>(
    head: &'a Head,
    peer: &Peer,
    scheme: &str,
) -> (Cow<'a, [u8]>, Cow<'a, [u8]>) {
    let default_port: &[u8] = if scheme == "https" { b"443" } else { b"80" };
    if let Some(host) = head.host().filter(|h| !h.is_empty()) {
        if let Some(v6_end) = host
            .strip_prefix(b"[")
            .and_then(|h| h.iter().position(|&b| b == b']'))
        {
            let (name, rest) = host.split_at(v6_end + 2);
            let port = rest.strip_prefix(b":").unwrap_or(default_port);
            return (name.into(), port.into());
        }
        return match host.iter().rposition(|&b| b == b':') {
            Some(colon) => (host[..colon].into(), host[colon + 1..].into()),
            None => (host.into(), default_port.into()),
        };
    }
    match peer.local {
        Some(addr) => (
            addr.ip().to_string().into_bytes().into(),
            addr.port().to_string().into_bytes().into(),
        ),
        None => (b"localhost".as_slice().into(), default_port.into()),
    }
}

/// A copy of `template` whose hash table has room for as many more keys as CPython
/// will give it, so that the copy each request makes (`dict.copy()` clones the whole
/// table) takes the request's keys without growing: growing rebuilt the table on every
/// request, about 3% of a hello request's instructions.
///
/// CPython offers no public way to size a dict of str keys (`_PyDict_NewPresized`
/// makes a table for any keys, with larger entries), so this grows one: it adds
/// placeholder keys until the table grows, then pops them (`popitem` also shortens
/// the table's entry list, which a copy needs in order to clone the table). Which
/// count leaves the most room differs between Python versions, so each is tried and
/// the copy's room measured, once per worker.
fn with_room_to_grow<'py>(template: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyDict>> {
    let py = template.py();
    let placeholders: Vec<String> = (0..64).map(|i| format!("\0room{i}")).collect();
    let room_of = |d: &Bound<'py, PyDict>| -> PyResult<usize> {
        let copy = d.copy()?;
        let size = |c: &Bound<'py, PyDict>| {
            c.call_method0(intern!(py, "__sizeof__"))?
                .extract::<usize>()
        };
        let start = size(&copy)?;
        for (n, key) in placeholders.iter().enumerate() {
            copy.set_item(key, py.None())?;
            if size(&copy)? != start {
                return Ok(n);
            }
        }
        Ok(placeholders.len())
    };
    let mut best = (room_of(template)?, template.copy()?);
    for count in 1..placeholders.len() {
        let grown = template.copy()?;
        for key in &placeholders[..count] {
            grown.set_item(key, py.None())?;
        }
        for _ in 0..count {
            grown.call_method0(intern!(py, "popitem"))?;
        }
        let room = room_of(&grown)?;
        if room > best.0 {
            best = (room, grown);
        }
    }
    Ok(best.1)
}

/// A request's environ, and whether it may serve the next request (see [`reuse`]).
pub struct Environ<'py> {
    pub dict: Bound<'py, PyDict>,
    reusable: Option<Reusable>,
    /// The values stored beyond the template (when `reusable`), or just the buffers.
    stored: Stored,
}

impl<'py> Environ<'py> {
    /// The dict for the next request, if the server alone holds it and nothing changed
    /// it since it was built (see [`reuse`]); otherwise it goes.
    pub fn keep(self) -> KeptEnviron {
        KeptEnviron::keep(self.dict, self.reusable, self.stored)
    }

    /// An environ that is never reused (for tests elsewhere).
    #[cfg(test)]
    pub fn not_reusable(dict: Bound<'py, PyDict>) -> Environ<'py> {
        Environ {
            dict,
            reusable: None,
            stored: Stored::default(),
        }
    }
}

/// Builds the environ dict. `input` becomes `wsgi.input`. `kept` is the last plain
/// request's dict, used instead of a copy of the template when this request is plain
/// too (see [`reuse`]) and freed otherwise.
pub fn build<'py>(
    py: Python<'py>,
    consts: &EnvironConstants,
    head: &Head,
    body_len: u64,
    peer: &Peer,
    input: Bound<'py, PyAny>,
    kept: Option<KeptEnviron>,
) -> PyResult<Environ<'py>> {
    let mut memo = consts.memo.lock(py);
    let scheme = url_scheme(peer.secure, head.forwarded_https);
    let (name, port) = server_name_port(head, peer, scheme);
    let server = ServerValues {
        name: &name,
        port: &port,
        remote_addr: peer.remote.map(|_| peer.remote_ip.as_bytes()),
    };
    let (source, server_set, headers_set) = template_for(py, consts, &mut memo, &server, head)?;
    let (raw_path, query, _) = split_target(head.target());
    let forwarded_script = forwarded_script_name(consts, head, peer);
    // What makes the stores below PATH_INFO, RAW_URI, REMOTE_PORT (for a TCP peer, which
    // the warm template's REMOTE_ADDR tells) and `wsgi.input` alone: see [`reuse`].
    let plain = server_set
        && headers_set == head.field_count()
        && head.method() == "GET"
        && query.is_empty()
        && scheme == "http"
        && forwarded_script.is_none()
        && !head.http2
        && head.minor_version == 1
        && peer.proxy.is_none()
        && body_len == 0;
    // A reused dict holds the last plain request's values: `stored` says which.
    let (reused, mut stored) = match kept {
        Some(kept) if plain => kept.take(&source),
        Some(kept) => (None, kept.into_stored()),
        None => (None, Stored::default()),
    };
    let holds = |field: &[u8], bytes: &[u8]| reused.is_some() && field == bytes;
    let env = match &reused {
        Some(env) => env.clone(),
        None => source.copy()?,
    };
    let decoded;
    let mut path: &[u8] = if raw_path.contains('%') {
        decoded = percent_decode(raw_path.as_bytes());
        &decoded
    } else {
        raw_path.as_bytes()
    };
    let script = forwarded_script.unwrap_or(consts.script_name.as_bytes());
    if !script.is_empty() {
        if !path.starts_with(script) {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "Configuration problem: Request path '{}' does not start with SCRIPT_NAME '{}'",
                latin1(path),
                latin1(script)
            )));
        }
        path = &path[script.len()..];
    }
    if let Some(script) = forwarded_script {
        env.set_item(intern!(py, "SCRIPT_NAME"), py_latin1(py, script)?)?;
    }
    if head.method() != "GET" {
        env.set_item(intern!(py, "REQUEST_METHOD"), method_str(py, head.method()))?;
    }
    if !holds(&stored.path, path) {
        env.set_item(intern!(py, "PATH_INFO"), py_latin1(py, path)?)?;
    }
    // PEP 3333: native strings hold the request's bytes as latin-1 (a UTF-8 target
    // reaches the app as one char per byte, as in Gunicorn).
    if !query.is_empty() {
        env.set_item(
            intern!(py, "QUERY_STRING"),
            py_latin1(py, query.as_bytes())?,
        )?;
    }
    let target = head.target().as_bytes();
    if !holds(&stored.target, target) {
        env.set_item(intern!(py, "RAW_URI"), py_latin1(py, target)?)?;
    }
    if scheme != "http" {
        // The template says "http"; only other schemes cost a store.
        env.set_item(intern!(py, "wsgi.url_scheme"), scheme)?;
    }
    if !server_set {
        set_server_values(py, &env, &mut memo, &server)?;
    }
    // The template says HTTP/1.1.
    if head.http2 {
        env.set_item(intern!(py, "SERVER_PROTOCOL"), intern!(py, "HTTP/2.0"))?;
    } else if head.minor_version == 0 {
        env.set_item(intern!(py, "SERVER_PROTOCOL"), intern!(py, "HTTP/1.0"))?;
    }
    let port = peer.remote_port.as_bytes();
    if let Some(remote) = peer.remote {
        if !holds(&stored.port, port) {
            let text = memo.port_str(py, remote.port(), port)?;
            env.set_item(intern!(py, "REMOTE_PORT"), text)?;
        }
    }
    if let Some(origin) = &peer.proxy {
        set_proxy_keys(py, &env, origin)?;
    }
    add_headers(
        py,
        consts,
        &env,
        &mut memo,
        head,
        headers_set,
        peer,
        body_len,
    )?;
    let input_at = input.as_ptr() as usize;
    if reused.is_none() || stored.input != input_at {
        env.set_item(intern!(py, "wsgi.input"), input)?;
    }
    drop(reused);
    let reusable = plain
        .then(|| reuse::version(&env))
        .flatten()
        .map(|version| {
            Stored::set(&mut stored.path, path);
            Stored::set(&mut stored.target, target);
            Stored::set(&mut stored.port, port);
            stored.input = input_at;
            Reusable {
                source: source.unbind(),
                version,
            }
        });
    Ok(Environ {
        dict: env,
        reusable,
        stored,
    })
}

/// A `SCRIPT_NAME` header from a trusted peer allowed by `--forwarder-headers`
/// (the last one wins, as in Gunicorn), without its trailing `/`.
fn forwarded_script_name<'h>(
    consts: &EnvironConstants,
    head: &'h Head,
    peer: &Peer,
) -> Option<&'h [u8]> {
    // The field lengths tell most requests have no SCRIPT_NAME without a pass.
    let length = crate::http::request::name_length_bit("SCRIPT_NAME".len());
    if !peer.trusted || consts.forwarder_headers.is_empty() || head.name_lengths() & length == 0 {
        return None;
    }
    // forwarder_may_set compares names case-insensitively, as `values` finds them.
    if !forwarder_may_set("SCRIPT_NAME", true, &consts.forwarder_headers) {
        return None;
    }
    let value = head.values("SCRIPT_NAME").next_back()?.trim_ascii();
    Some(value.strip_suffix(b"/").unwrap_or(value))
}

/// Gunicorn's PROXY_PROTOCOL, PROXY_ADDR and PROXY_PORT.
fn set_proxy_keys(py: Python<'_>, env: &Bound<'_, PyDict>, origin: &ProxyOrigin) -> PyResult<()> {
    env.set_item(intern!(py, "PROXY_PROTOCOL"), origin.protocol)?;
    if let Some(dest) = origin.destination {
        env.set_item(intern!(py, "PROXY_ADDR"), dest.ip().to_string())?;
        env.set_item(intern!(py, "PROXY_PORT"), dest.port().to_string())?;
    }
    Ok(())
}

/// SERVER_NAME and SERVER_PORT (from the Host header, or the listener's address) and
/// REMOTE_ADDR (`None`: a unix-socket client, whose REMOTE_ADDR is empty): the values
/// that, behind a proxy, are the same for every request a worker serves.
pub(super) struct ServerValues<'a> {
    pub name: &'a [u8],
    pub port: &'a [u8],
    pub remote_addr: Option<&'a [u8]>,
}

/// The environ template a request copies, whether it holds the request's
/// [`ServerValues`] already, and how many of its first header fields it holds. Behind a
/// proxy the server values repeat request after request, so once two requests in a row
/// agree, a second template with them in it is made (see `value_memo::Warm`) and copied
/// instead: three dict stores fewer per request, about 5% of a hello request's
/// instructions. Requests that differ copy the plain template and store them as before.
///
/// The first header fields repeat too (a client's or a proxy's Host, User-Agent,
/// Accept...): once two requests in a row with those server values begin with the same
/// remembered headers ([`remembered_lead`]), a third template holds them as well, and
/// a request beginning with them copies it: one dict store and its key and value
/// look-ups fewer per header. A request whose first fields differ copies the second.
/// A template is never changed once it is returned here (see [`reuse`]).
fn template_for<'py>(
    py: Python<'py>,
    consts: &EnvironConstants,
    memo: &mut Slots,
    server: &ServerValues<'_>,
    head: &Head,
) -> PyResult<(Bound<'py, PyDict>, bool, usize)> {
    let warm = match memo.warm_for(py, server) {
        Some(warm) => warm.clone(),
        None if !memo.repeats(server) => {
            return Ok((consts.template.bind(py).clone(), false, 0));
        }
        None => {
            let warm = consts.template.bind(py).copy()?;
            set_server_values(py, &warm, memo, server)?;
            memo.keep_warm(warm.clone(), server);
            warm
        }
    };
    if let Some(hw) = memo.header_warm() {
        // The same bytes are the same fields: one comparison instead of one per field,
        // whose case-insensitive name comparison was ~350 instructions for a request
        // with Host, User-Agent and Accept. Other spacing or case still matches by field.
        if head.leading_fields(hw.fields.len()) == Some(hw.lines.as_slice())
            || leads(&hw.fields, head)
        {
            return Ok((hw.dict.bind(py).clone(), true, hw.fields.len()));
        }
    }
    let lead = remembered_lead(consts, head);
    if lead.is_empty()
        || !lead
            .iter()
            .all(|&(i, value)| memo.last_was(Field::Header(i), value))
    {
        return Ok((warm, true, 0));
    }
    let hw = warm.copy()?;
    for &(i, value) in &lead {
        let key = consts.header_keys[i].1.bind(py);
        hw.set_item(key, memo.str(py, Field::Header(i), value)?)?;
    }
    memo.keep_header_warm(HeaderWarm {
        dict: hw.clone().unbind(),
        fields: lead.iter().map(|&(i, v)| (i, v.to_vec())).collect(),
        lines: head
            .leading_fields(lead.len())
            .map_or_else(Vec::new, <[u8]>::to_vec),
    });
    Ok((hw, true, lead.len()))
}

/// At most this many leading header fields go into a warm template.
const WARM_HEADERS: usize = 8;

/// The header fields a request begins with that are remembered common headers (see
/// [`COMMON_HEADERS`]), each name once and each value short enough to be remembered:
/// (index among the common headers, value), at most [`WARM_HEADERS`].
fn remembered_lead<'h>(consts: &EnvironConstants, head: &'h Head) -> Vec<(usize, &'h [u8])> {
    let mut lead: Vec<(usize, &[u8])> = Vec::new();
    for (name, value) in head.fields().take(WARM_HEADERS) {
        match consts.common_index(name) {
            Some(i)
                if COMMON_HEADERS[i].2
                    && value.len() <= MAX_REMEMBERED
                    && lead.iter().all(|&(j, _)| j != i) =>
            {
                lead.push((i, value));
            }
            _ => break,
        }
    }
    lead
}

/// Whether the head's first fields are `fields` (names compared case-insensitively).
fn leads(fields: &[(usize, Vec<u8>)], head: &Head) -> bool {
    let mut sent = head.fields();
    fields.iter().all(|(i, value)| {
        sent.next().is_some_and(|(name, sent_value)| {
            let known = COMMON_HEADERS[*i].0;
            known.len() == name.len()
                && sent_value == value.as_slice()
                && known.eq_ignore_ascii_case(name)
        })
    })
}

/// Stores SERVER_NAME, SERVER_PORT and REMOTE_ADDR (strings shared through the memo).
fn set_server_values(
    py: Python<'_>,
    env: &Bound<'_, PyDict>,
    memo: &mut Slots,
    server: &ServerValues<'_>,
) -> PyResult<()> {
    env.set_item(
        intern!(py, "SERVER_NAME"),
        memo.str(py, Field::ServerName, server.name)?,
    )?;
    env.set_item(
        intern!(py, "SERVER_PORT"),
        memo.str(py, Field::ServerPort, server.port)?,
    )?;
    match server.remote_addr {
        Some(addr) => env.set_item(
            intern!(py, "REMOTE_ADDR"),
            memo.str(py, Field::RemoteAddr, addr)?,
        ),
        None => env.set_item(intern!(py, "REMOTE_ADDR"), intern!(py, "")),
    }
}

/// CONTENT_TYPE, CONTENT_LENGTH and HTTP_* (repeats joined with ",", as Gunicorn joins them). Header names
/// with `_` are left out (Gunicorn's `--header-map drop`, the default): they would be
/// indistinguishable from `-` once in the environ — unless a trusted peer sends one
/// `--forwarder-headers` names, or `--header-map dangerous` keeps them all (`refuse`
/// never lets them this far). A chunked body was fully decoded before the call, so its
/// real length is given as CONTENT_LENGTH: frameworks that only trust CONTENT_LENGTH
/// read it. The first `copied` fields are in `env` already (from a warm template; never
/// Content-Length).
#[allow(clippy::too_many_arguments)]
fn add_headers(
    py: Python<'_>,
    consts: &EnvironConstants,
    env: &Bound<'_, PyDict>,
    memo: &mut Slots,
    head: &Head,
    copied: usize,
    peer: &Peer,
    body_len: u64,
) -> PyResult<()> {
    let mut content_length_set = false;
    for (name, value) in head.fields().skip(copied) {
        if name.contains('_')
            && !consts.keep_underscore_headers
            && !forwarder_may_set(name, peer.trusted, &consts.forwarder_headers)
        {
            continue;
        }
        let HeaderKey { key, common } = consts.header_key(py, name);
        content_length_set |= common == Some(CONTENT_LENGTH);
        let value = match common {
            Some(i) if COMMON_HEADERS[i].2 => memo.str(py, Field::Header(i), value)?,
            _ => py_latin1(py, value)?,
        };
        if let Some(prev) = insert_new(env, &key, &value)? {
            // Gunicorn joins repeats with a bare comma.
            let joined = format!("{},{}", prev.extract::<String>()?, value.to_str()?);
            env.set_item(&key, joined)?;
        }
    }
    if !content_length_set && body_len > 0 {
        env.set_item(intern!(py, "CONTENT_LENGTH"), body_len.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_length_index_names_content_length() {
        assert_eq!(COMMON_HEADERS[CONTENT_LENGTH].0, "content-length");
        assert_eq!(COMMON_HEADERS[CONTENT_LENGTH].1, "CONTENT_LENGTH");
        for (name, key, _) in COMMON_HEADERS {
            assert_eq!(name, name.to_ascii_lowercase(), "names are lowercase");
            assert!(
                key.starts_with("HTTP_") || key.starts_with("CONTENT_"),
                "{key}"
            );
        }
    }

    #[test]
    fn inline_text_writes_addresses_and_ports_as_display_does() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "::1",
            "fe80::1:2",
        ] {
            let addr: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(InlineText::ip(addr).as_str(), ip);
        }
        for port in [0u16, 7, 80, 8080, 65535] {
            assert_eq!(InlineText::decimal(port).as_str(), port.to_string());
        }
    }

    /// Regression guard for the warm template (`template_for`): whatever the order of
    /// requests, each environ names its own server and peer, and an app's changes to
    /// one environ never reach the next.
    #[test]
    fn server_values_follow_each_request_through_the_warm_template() {
        Python::initialize();
        Python::attach(|py| {
            let consts = EnvironConstants::new(py, "", false, false).unwrap();
            let peer_a = Peer::tcp("10.0.0.1:4000".parse().unwrap(), None);
            let peer_b = Peer::tcp("10.0.0.2:4001".parse().unwrap(), None);
            let unix = Peer::unix();
            let cases: [(&str, &Peer, &str, &str); 9] = [
                ("a.example:8000", &peer_a, "a.example", "10.0.0.1"),
                ("a.example:8000", &peer_a, "a.example", "10.0.0.1"),
                ("a.example:8000", &peer_a, "a.example", "10.0.0.1"),
                ("a.example:8000", &peer_b, "a.example", "10.0.0.2"),
                ("b.example", &peer_b, "b.example", "10.0.0.2"),
                ("b.example", &peer_b, "b.example", "10.0.0.2"),
                ("a.example:8000", &peer_a, "a.example", "10.0.0.1"),
                ("b.example", &unix, "b.example", ""),
                ("b.example", &unix, "b.example", ""),
            ];
            for (i, (host, peer, name, addr)) in cases.into_iter().enumerate() {
                let head = Head::from_parts("GET", "/", 1, &[("Host", host.as_bytes())]);
                let input = py.None().into_bound(py);
                let env = build(py, &consts, &head, 0, peer, input, None)
                    .unwrap()
                    .dict;
                let get = |key: &str| -> String {
                    env.get_item(key).unwrap().unwrap().extract().unwrap()
                };
                assert_eq!(get("SERVER_NAME"), name, "request {i}");
                let port = if host.contains(':') { "8000" } else { "80" };
                assert_eq!(get("SERVER_PORT"), port, "request {i}");
                assert_eq!(get("REMOTE_ADDR"), addr, "request {i}");
                assert_eq!(get("HTTP_HOST"), host, "request {i}");
                assert!(env.get_item("x.app").unwrap().is_none(), "request {i}");
                // An app that writes into its environ (as middleware does).
                env.set_item("SERVER_NAME", "changed").unwrap();
                env.set_item("x.app", 1).unwrap();
                env.del_item("REMOTE_ADDR").unwrap();
            }
        });
    }

    /// The warm template with headers (`template_for`): whatever the order of
    /// requests and their first fields, each environ holds exactly what one built from
    /// a plain template holds (repeats joined as before, an app's writes gone).
    #[test]
    fn leading_headers_follow_each_request_through_the_warm_template() {
        Python::initialize();
        for map in [
            crate::http::request::HeaderMap::Drop,
            crate::http::request::HeaderMap::Dangerous,
        ] {
            leading_headers_under(map);
        }
    }

    fn leading_headers_under(map: crate::http::request::HeaderMap) {
        let consts_of = |py: Python<'_>| {
            EnvironConstants::new(py, "", false, false)
                .unwrap()
                .with_header_map(map)
        };
        Python::attach(|py| {
            let consts = consts_of(py);
            let peer = Peer::tcp("10.0.0.1:4000".parse().unwrap(), None);
            let ua = ("User-Agent", &b"ua/1"[..]);
            let host = ("Host", &b"a.example"[..]);
            let accept = ("accept", &b"*/*"[..]);
            let requests: Vec<Vec<(&str, &[u8])>> = vec![
                vec![host, ua, accept],
                vec![host, ua, accept],
                vec![host, ua, accept],
                vec![host, ua, accept, ("Accept", b"text/html")],
                // The remembered lines with more after the last value, then back.
                vec![host, ua, ("accept", b"*/*x")],
                vec![host, ua, ("accept", b"*/")],
                vec![host, ua, accept],
                vec![host, ua],
                vec![host, ua, ("X-Other", b"1"), accept],
                vec![host, ("User-Agent", b"ua/2"), accept],
                vec![host, ("User-Agent", b"ua/2"), accept],
                vec![("HOST", b"a.example"), ua, accept],
                vec![host, ua, accept, ("Cookie", b"s=1"), ("x_under", b"no")],
                vec![host, ("user_agent", b"u"), ua],
                vec![ua, host],
                vec![host, ua, accept],
                vec![],
                vec![host, ua, accept],
            ];
            let plain = |head: &Head| {
                build(
                    py,
                    &consts_of(py),
                    head,
                    0,
                    &peer,
                    py.None().into_bound(py),
                    None,
                )
                .unwrap()
                .dict
            };
            let strs = |env: &Bound<'_, PyDict>| -> Vec<(String, String)> {
                let mut items: Vec<(String, String)> = env
                    .iter()
                    .filter_map(|(k, v)| Some((k.extract().ok()?, v.extract().ok()?)))
                    .collect();
                items.sort();
                items
            };
            for (i, fields) in requests.iter().enumerate() {
                let head = Head::from_parts("GET", "/", 1, fields);
                let env = build(py, &consts, &head, 0, &peer, py.None().into_bound(py), None)
                    .unwrap()
                    .dict;
                let want = plain(&head);
                assert_eq!(env.len(), want.len(), "request {i}");
                assert_eq!(strs(&env), strs(&want), "request {i}");
                assert!(env.get_item("x.app").unwrap().is_none(), "request {i}");
                if i == 2 {
                    let warm = consts.memo.lock(py).header_warm().map(|w| w.fields.len());
                    assert_eq!(warm, Some(3), "the third request copies the headers");
                }
                env.set_item("HTTP_HOST", "changed").unwrap();
                env.set_item("x.app", 1).unwrap();
                let _ = env.del_item("HTTP_USER_AGENT");
            }
        });
    }

    /// Each connection's REMOTE_PORT str is made once and shared by its next requests,
    /// with requests of several connections interleaved; every environ holds its own
    /// port, also when two ports share a slot of the memo's table.
    #[test]
    fn interleaved_connections_share_their_remote_port_strs() {
        Python::initialize();
        Python::attach(|py| {
            let consts = EnvironConstants::new(py, "", false, false).unwrap();
            let head = Head::from_parts("GET", "/", 1, &[("Host", b"a")]);
            let port_of = |port: u16| {
                let peer = Peer::tcp(std::net::SocketAddr::from(([10, 0, 0, 1], port)), None);
                let env = build(py, &consts, &head, 0, &peer, py.None().into_bound(py), None)
                    .unwrap()
                    .dict;
                env.get_item("REMOTE_PORT").unwrap().unwrap()
            };
            let ports = [
                40000u16,
                40002,
                40004,
                40000 + super::super::value_memo::PORT_SLOTS as u16,
            ];
            let first: Vec<_> = ports.iter().map(|&p| port_of(p)).collect();
            for _ in 0..2 {
                for (i, &p) in ports.iter().enumerate() {
                    let again = port_of(p);
                    assert_eq!(again.extract::<String>().unwrap(), p.to_string());
                    // The first shares its slot with the last, which took it.
                    if i == 1 || i == 2 {
                        assert!(again.is(&first[i]), "port {p}: the same str");
                    }
                }
            }
        });
    }
}
