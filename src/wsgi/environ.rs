//! The PEP 3333 environ for one request.

use std::net::SocketAddr;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::http::request::Head;

/// Where the request came from and which listener took it.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// None for unix-socket clients (REMOTE_ADDR is then empty, as in Gunicorn).
    pub remote: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
}

/// The per-worker constants that go into every environ.
pub struct EnvironConstants {
    pub script_name: String,
    pub multiprocess: bool,
    pub multithread: bool,
    pub errors: Py<PyAny>,
    pub file_wrapper: Py<PyAny>,
}

/// Bytes to str, one code point per byte (PEP 3333's "native strings").
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// Decodes %XX escapes; a `%` not followed by two hex digits stays as it is.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Splits a request target into (path, query). An absolute-form target
/// (`http://host/path`) contributes only its path; a fragment is dropped.
pub fn split_target(target: &str) -> (&str, &str) {
    let mut rest = target;
    if let Some(scheme_end) = rest.find("://") {
        if rest[..scheme_end].bytes().all(|b| b.is_ascii_alphabetic()) {
            let after = &rest[scheme_end + 3..];
            rest = after.find('/').map_or("/", |i| &after[i..]);
        }
    }
    let rest = rest.split('#').next().unwrap_or("");
    match rest.split_once('?') {
        Some((path, query)) => (path, query),
        None => (rest, ""),
    }
}

/// SERVER_NAME and SERVER_PORT from the Host header, or the listener's address.
fn server_name_port(head: &Head, peer: &Peer) -> (String, String) {
    if let Some(host) = head.header("host").map(latin1).filter(|h| !h.is_empty()) {
        if let Some(v6_end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
            let name = host[..v6_end + 2].to_string();
            let port = host[v6_end + 2..]
                .strip_prefix(':')
                .unwrap_or("80")
                .to_string();
            return (name, port);
        }
        return match host.rsplit_once(':') {
            Some((name, port)) => (name.to_string(), port.to_string()),
            None => (host, "80".to_string()),
        };
    }
    match peer.local {
        Some(addr) => (addr.ip().to_string(), addr.port().to_string()),
        None => ("localhost".to_string(), "80".to_string()),
    }
}

/// Builds the environ dict. `input` becomes `wsgi.input`.
pub fn build<'py>(
    py: Python<'py>,
    consts: &EnvironConstants,
    head: &Head,
    body_len: u64,
    peer: &Peer,
    input: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let env = PyDict::new(py);
    let (raw_path, query) = split_target(&head.target);
    let mut path = latin1(&percent_decode(raw_path.as_bytes()));
    if !consts.script_name.is_empty() && path.starts_with(&consts.script_name) {
        path = path[consts.script_name.len()..].to_string();
    }
    let (server_name, server_port) = server_name_port(head, peer);
    env.set_item(intern!(py, "REQUEST_METHOD"), &head.method)?;
    env.set_item(intern!(py, "SCRIPT_NAME"), &consts.script_name)?;
    env.set_item(intern!(py, "PATH_INFO"), path)?;
    env.set_item(intern!(py, "QUERY_STRING"), query)?;
    env.set_item(intern!(py, "RAW_URI"), &head.target)?;
    env.set_item(intern!(py, "SERVER_NAME"), server_name)?;
    env.set_item(intern!(py, "SERVER_PORT"), server_port)?;
    env.set_item(intern!(py, "SERVER_PROTOCOL"), head.protocol())?;
    env.set_item(
        intern!(py, "SERVER_SOFTWARE"),
        concat!("rustcorn/", env!("CARGO_PKG_VERSION")),
    )?;
    match peer.remote {
        Some(addr) => {
            env.set_item(intern!(py, "REMOTE_ADDR"), addr.ip().to_string())?;
            env.set_item(intern!(py, "REMOTE_PORT"), addr.port().to_string())?;
        }
        None => env.set_item(intern!(py, "REMOTE_ADDR"), "")?,
    }
    add_headers(py, &env, head, body_len)?;
    env.set_item(intern!(py, "wsgi.version"), (1, 0))?;
    env.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "http"))?;
    env.set_item(intern!(py, "wsgi.input"), input)?;
    env.set_item(intern!(py, "wsgi.input_terminated"), true)?;
    env.set_item(intern!(py, "wsgi.errors"), consts.errors.bind(py))?;
    env.set_item(intern!(py, "wsgi.multithread"), consts.multithread)?;
    env.set_item(intern!(py, "wsgi.multiprocess"), consts.multiprocess)?;
    env.set_item(intern!(py, "wsgi.run_once"), false)?;
    env.set_item(
        intern!(py, "wsgi.file_wrapper"),
        consts.file_wrapper.bind(py),
    )?;
    Ok(env)
}

/// CONTENT_TYPE, CONTENT_LENGTH and HTTP_* (repeats joined with ", "). Header names
/// with `_` are dropped: they would be indistinguishable from `-` once in the environ
/// (Gunicorn's default). A chunked body was fully decoded before the call, so its real
/// length is given as CONTENT_LENGTH: frameworks that only trust CONTENT_LENGTH read it.
fn add_headers(
    py: Python<'_>,
    env: &Bound<'_, PyDict>,
    head: &Head,
    body_len: u64,
) -> PyResult<()> {
    let mut content_length_set = false;
    for (name, value) in &head.headers {
        if name.contains('_') {
            continue;
        }
        let value = latin1(value);
        let key: Bound<'_, PyString> = if name.eq_ignore_ascii_case("content-type") {
            intern!(py, "CONTENT_TYPE").clone()
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length_set = true;
            intern!(py, "CONTENT_LENGTH").clone()
        } else {
            let mut key = String::with_capacity(5 + name.len());
            key.push_str("HTTP_");
            key.extend(name.bytes().map(|b| {
                if b == b'-' {
                    '_'
                } else {
                    b.to_ascii_uppercase() as char
                }
            }));
            PyString::new(py, &key)
        };
        match env.get_item(&key)? {
            Some(prev) => {
                env.set_item(&key, format!("{}, {}", prev.extract::<String>()?, value))?
            }
            None => env.set_item(&key, value)?,
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
    fn percent_decoding_keeps_bad_escapes() {
        let cases: &[(&str, &[u8])] = &[
            ("/caf%C3%A9", b"/caf\xc3\xa9"),
            ("/a%20b", b"/a b"),
            ("/100%", b"/100%"),
            ("/%zz", b"/%zz"),
            ("/%4", b"/%4"),
            ("%2F", b"/"),
        ];
        for (input, want) in cases {
            assert_eq!(percent_decode(input.as_bytes()), *want, "{input}");
        }
    }

    #[test]
    fn targets_split_into_path_and_query() {
        assert_eq!(split_target("/a/b?x=1&y=2"), ("/a/b", "x=1&y=2"));
        assert_eq!(split_target("/a#frag"), ("/a", ""));
        assert_eq!(split_target("http://example.com/p?q"), ("/p", "q"));
        assert_eq!(split_target("http://example.com"), ("/", ""));
        assert_eq!(split_target("*"), ("*", ""));
    }

    #[test]
    fn latin1_maps_each_byte_to_one_char() {
        assert_eq!(latin1(b"caf\xc3\xa9"), "caf\u{c3}\u{a9}");
    }
}
