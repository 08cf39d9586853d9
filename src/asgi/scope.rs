//! The `http` scope of one request, built from the parsed head and the connection's
//! peer with the same target splitter, proxy trust and scheme rules as the WSGI
//! environ (`wsgi::environ`), in Gunicorn 27's shape.

use std::net::SocketAddr;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::http::forwarded::url_scheme;
use crate::http::request::Head;
use crate::http::target::{percent_decode, split_target};
use crate::wsgi::environ::Peer;

/// The keys of an `http` scope, in the order they are filled.
const HTTP_KEYS: [&str; 14] = [
    "type",
    "scheme",
    "asgi",
    "http_version",
    "path",
    "raw_path",
    "query_string",
    "root_path",
    "headers",
    "server",
    "client",
    "state",
    "method",
    "extensions",
];

/// What every scope of a worker shares.
pub struct ScopeConstants {
    /// `--root-path`, without a trailing `/`.
    pub root_path: Py<PyString>,
    /// `{"version": "3.0", "spec_version": "2.4"}`, copied into each scope.
    asgi: Py<PyDict>,
    /// The extensions an `http` scope offers: `http.response.pathsend`.
    extensions: Py<PyDict>,
    /// Over HTTP/2 also `http.response.trailers`.
    extensions_h2: Py<PyDict>,
    /// `server` tuples by listening address (a worker has a few): formatted once.
    servers: std::cell::RefCell<Vec<(SocketAddr, Py<PyAny>)>>,
    /// `client` tuples by peer address, in a small direct-mapped table: a kept-alive
    /// connection's requests share one tuple instead of a new tuple, str and int each.
    clients: std::cell::RefCell<Vec<Option<Known>>>,
    /// An `http` scope's keys, None but for the two that never change (`type`,
    /// `root_path`): a scope starts as a copy of it, which is sized once and fills in
    /// place, where a new dict would grow twice.
    http_keys: Py<PyDict>,
    /// The scheme strings (`http`, `https`, `ws`, `wss`), made once.
    schemes: [Py<PyString>; 4],
    /// The usual methods as str, made once; others are made per request.
    methods: Vec<Py<PyString>>,
    /// The usual request header names, lowercase, as the `bytes` a scope's headers
    /// carry: shared instead of a new object per header per request.
    names: Vec<Py<PyBytes>>,
}

/// Methods with a `str` made once per worker.
const METHODS: [&str; 7] = ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Request header names with a lowercase `bytes` made once per worker: what browsers,
/// proxies and HTTP clients send on nearly every request.
const NAMES: [&str; 24] = [
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "connection",
    "content-type",
    "content-length",
    "cookie",
    "referer",
    "origin",
    "authorization",
    "cache-control",
    "pragma",
    "if-none-match",
    "if-modified-since",
    "upgrade-insecure-requests",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-real-ip",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "priority",
];

impl ScopeConstants {
    pub fn new(py: Python<'_>, root_path: &str) -> PyResult<ScopeConstants> {
        let asgi = PyDict::new(py);
        asgi.set_item("version", "3.0")?;
        asgi.set_item("spec_version", "2.4")?;
        let extensions = PyDict::new(py);
        extensions.set_item("http.response.pathsend", PyDict::new(py))?;
        let extensions_h2 = extensions.copy()?;
        extensions_h2.set_item("http.response.trailers", PyDict::new(py))?;
        let root_path = PyString::new(py, root_path);
        let http_keys = PyDict::new(py);
        for key in HTTP_KEYS {
            let value = match key {
                "type" => PyString::new(py, "http").into_any(),
                "root_path" => root_path.clone().into_any(),
                _ => py.None().into_bound(py),
            };
            http_keys.set_item(PyString::intern(py, key), value)?;
        }
        let text = |s: &str| PyString::new(py, s).unbind();
        Ok(ScopeConstants {
            schemes: [text("http"), text("https"), text("ws"), text("wss")],
            methods: METHODS.iter().map(|m| text(m)).collect(),
            names: NAMES
                .iter()
                .map(|n| PyBytes::new(py, n.as_bytes()).unbind())
                .collect(),
            root_path: root_path.unbind(),
            asgi: asgi.unbind(),
            extensions: extensions.unbind(),
            extensions_h2: extensions_h2.unbind(),
            servers: Default::default(),
            clients: std::cell::RefCell::new((0..CLIENT_SLOTS).map(|_| None).collect()),
            http_keys: http_keys.unbind(),
        })
    }
}

impl ScopeConstants {
    /// The method as a str: a shared one for the usual methods.
    fn method<'py>(&self, py: Python<'py>, method: &str) -> Bound<'py, PyString> {
        match METHODS.iter().position(|&m| m == method) {
            Some(i) => self.methods[i].bind(py).clone(),
            None => PyString::new(py, method),
        }
    }

    /// A request header's name, lowercase, as bytes: a shared one for the usual names.
    fn header_name<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        if let Some(i) = NAMES
            .iter()
            .position(|known| known.eq_ignore_ascii_case(name))
        {
            return Ok(self.names[i].bind(py).clone());
        }
        PyBytes::new_with(py, name.len(), |out| {
            out.copy_from_slice(name.as_bytes());
            out.make_ascii_lowercase();
            Ok(())
        })
    }

    /// `(host, port)` as a scope's `server`, or None (unix sockets); the tuple is
    /// immutable, so one per listening address serves every request.
    fn server<'py>(
        &self,
        py: Python<'py>,
        addr: Option<SocketAddr>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(a) = addr else {
            return Ok(py.None().into_bound(py));
        };
        let mut servers = self.servers.borrow_mut();
        if let Some((_, tuple)) = servers.iter().find(|(known, _)| *known == a) {
            return Ok(tuple.bind(py).clone());
        }
        let tuple = (a.ip().to_string(), a.port()).into_pyobject(py)?.into_any();
        if servers.len() < 16 {
            servers.push((a, tuple.clone().unbind()));
        }
        Ok(tuple)
    }
}

/// A peer address and the `client` tuple made for it.
type Known = (SocketAddr, Py<PyAny>);

/// Entries of [`ScopeConstants`]' `client` table (a power of two).
const CLIENT_SLOTS: usize = 256;

impl ScopeConstants {
    /// The scope's `client`: the peer's address as the connection formatted it once
    /// (the text REMOTE_ADDR uses, which follows `peer.remote` wherever that is set),
    /// or None (unix sockets). The tuple is immutable, so the one made for an address
    /// serves every request from it until another address takes its table entry.
    fn client<'py>(&self, py: Python<'py>, peer: &Peer) -> PyResult<Bound<'py, PyAny>> {
        let Some(a) = peer.remote else {
            return Ok(py.None().into_bound(py));
        };
        let slot = (usize::from(a.port()) ^ ip_bits(&a)) & (CLIENT_SLOTS - 1);
        let mut clients = self.clients.borrow_mut();
        if let Some((known, tuple)) = &clients[slot] {
            if *known == a {
                return Ok(tuple.bind(py).clone());
            }
        }
        let tuple = (peer.remote_ip.as_str(), a.port())
            .into_pyobject(py)?
            .into_any();
        clients[slot] = Some((a, tuple.clone().unbind()));
        Ok(tuple)
    }
}

/// A few low bits of the address, to spread clients that share a port.
fn ip_bits(a: &SocketAddr) -> usize {
    match a.ip() {
        std::net::IpAddr::V4(v4) => usize::from(v4.octets()[3]),
        std::net::IpAddr::V6(v6) => usize::from(v6.octets()[15]),
    }
}

/// The scope of an HTTP request; `state` is the lifespan state, copied (shallowly)
/// for each request as the spec asks.
pub fn http<'py>(
    py: Python<'py>,
    consts: &ScopeConstants,
    head: &Head,
    peer: &Peer,
    state: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    // `type` and `root_path` come with the copy.
    let scope = consts.http_keys.bind(py).copy()?;
    common(&scope, consts, head, peer, state, 0)?;
    scope.set_item(intern!(py, "method"), consts.method(py, head.method()))?;
    let extensions = if head.http2 {
        &consts.extensions_h2
    } else {
        &consts.extensions
    };
    scope.set_item(intern!(py, "extensions"), extensions.bind(py).copy()?)?;
    Ok(scope)
}

/// The scope of a WebSocket handshake: `ws`/`wss`, and the subprotocols the client
/// offers (`Sec-WebSocket-Protocol`, in order).
pub fn websocket<'py>(
    py: Python<'py>,
    consts: &ScopeConstants,
    head: &Head,
    peer: &Peer,
    state: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let scope = PyDict::new(py);
    scope.set_item(intern!(py, "type"), "websocket")?;
    common(&scope, consts, head, peer, state, 2)?;
    scope.set_item(intern!(py, "root_path"), consts.root_path.bind(py))?;
    let offered = PyList::empty(py);
    for value in head.values("sec-websocket-protocol") {
        for name in value.split(|&b| b == b',') {
            let name = name.trim_ascii();
            if !name.is_empty() {
                offered.append(PyString::new(py, &String::from_utf8_lossy(name)))?;
            }
        }
    }
    scope.set_item(intern!(py, "subprotocols"), offered)?;
    Ok(scope)
}

/// What both scopes carry but `type` and `root_path` (which the `http` scope's
/// template holds); `schemes` is the index of the plain one of the scope's two
/// schemes in [`ScopeConstants::schemes`], the secure one following it.
fn common<'py>(
    scope: &Bound<'py, PyDict>,
    consts: &ScopeConstants,
    head: &Head,
    peer: &Peer,
    state: &Bound<'py, PyDict>,
    schemes: usize,
) -> PyResult<()> {
    let py = scope.py();
    let https = url_scheme(peer.secure, head.forwarded_https) == "https";
    let scheme = &consts.schemes[schemes + usize::from(https)];
    scope.set_item(intern!(py, "scheme"), scheme.bind(py))?;
    let (raw_path, query, _) = split_target(head.target());
    let path = if raw_path.contains('%') {
        String::from_utf8_lossy(&percent_decode(raw_path.as_bytes())).into_owned()
    } else {
        raw_path.to_string()
    };
    scope.set_item(intern!(py, "asgi"), consts.asgi.bind(py).copy()?)?;
    let version = if head.http2 {
        intern!(py, "2")
    } else if head.minor_version == 0 {
        intern!(py, "1.0")
    } else {
        intern!(py, "1.1")
    };
    scope.set_item(intern!(py, "http_version"), version)?;
    scope.set_item(intern!(py, "path"), path)?;
    scope.set_item(
        intern!(py, "raw_path"),
        PyBytes::new(py, raw_path.as_bytes()),
    )?;
    scope.set_item(
        intern!(py, "query_string"),
        PyBytes::new(py, query.as_bytes()),
    )?;
    let headers = PyList::empty(py);
    for (name, value) in head.fields() {
        let name = consts.header_name(py, name)?;
        headers.append(PyTuple::new(py, [name, PyBytes::new(py, value)])?)?;
    }
    scope.set_item(intern!(py, "headers"), headers)?;
    scope.set_item(intern!(py, "server"), consts.server(py, peer.local)?)?;
    scope.set_item(intern!(py, "client"), consts.client(py, peer)?)?;
    scope.set_item(intern!(py, "state"), state.copy()?)?;
    Ok(())
}
