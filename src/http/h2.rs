//! HTTP/2 glue: a request the `h2` crate decoded (pseudo-headers already checked
//! against RFC 9113 §8.3: none missing or repeated, none after a regular field, no
//! connection-specific fields, `te` only `trailers`) becomes a [`Head`] through the
//! same policy as an HTTP/1 head ([`Head::from_fields`]); and a response head becomes
//! the `http` value h2 sends. No I/O here: the connection is driven in
//! [`crate::worker::h2conn`].

use super::request::{Head, Limits};
use super::response::{self, SERVER};
use super::HttpError;

/// The head of an HTTP/2 request. `:authority` stands in for `Host` (Gunicorn's rule),
/// replacing one Host field; two Host fields are kept, so the singleton rule refuses
/// them as it does over HTTP/1. `:path` is the target (the authority for CONNECT).
pub fn head_from_parts(parts: &http::request::Parts, limits: &Limits) -> Result<Head, HttpError> {
    let target = if parts.method == http::Method::CONNECT {
        parts.uri.authority().map_or("", |a| a.as_str())
    } else {
        parts.uri.path_and_query().map_or("", |p| p.as_str())
    };
    let hosts = parts.headers.get_all(http::header::HOST).iter().count();
    let authority = parts.uri.authority().map(|a| a.as_str().as_bytes());
    let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(parts.headers.len() + 1);
    if let (Some(authority), 0 | 1) = (authority, hosts) {
        fields.push((b"host", authority));
    }
    for (name, value) in &parts.headers {
        if name == http::header::HOST && authority.is_some() && hosts == 1 {
            continue;
        }
        fields.push((name.as_str().as_bytes(), value.as_bytes()));
    }
    Head::from_fields(parts.method.as_str(), target, &fields, limits)
}

/// The response head h2 sends: names lowercased (HTTP/2 requires it), `server` and
/// `date` added as HTTP/1 adds them. The app's hop-by-hop fields were dropped by
/// `start_response` already; a name or value h2's `http` types refuse is an error.
pub fn response_head(
    status: u16,
    headers: &[(String, String)],
) -> Result<http::Response<()>, HttpError> {
    let mut builder = http::Response::builder()
        .status(status)
        .header("server", SERVER)
        .header(
            "date",
            crate::log::time::http_date(crate::log::time::unix_now()),
        );
    for (name, value) in headers {
        if response::is_hop_by_hop(name) {
            continue;
        }
        let value = latin1(value);
        builder = builder.header(name.to_ascii_lowercase(), value);
    }
    builder
        .body(())
        .map_err(|e| HttpError::bad(format!("response head cannot go over HTTP/2: {e}")))
}

/// A header value as PEP 3333 has it: latin-1 code points, one byte each.
fn latin1(text: &str) -> http::HeaderValue {
    let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    http::HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| http::HeaderValue::from_static(""))
}

/// The server's own error page for a refused stream: its head and HTML body.
pub fn error_response(err: &HttpError) -> (http::Response<()>, bytes::Bytes) {
    let (code, reason) = err.status();
    let body = response::error_body(reason, &err.to_string());
    let headers = [
        ("content-type".to_string(), "text/html".to_string()),
        ("content-length".to_string(), body.len().to_string()),
    ];
    let head = response_head(code, &headers).unwrap_or_else(|_| http::Response::new(()));
    (head, bytes::Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::HeaderMap;

    fn parts(build: http::request::Builder) -> http::request::Parts {
        build.body(()).unwrap().into_parts().0
    }

    fn get(uri: &str) -> http::request::Builder {
        http::Request::builder().method("GET").uri(uri)
    }

    #[test]
    fn authority_becomes_host_and_path_the_target() {
        let p = parts(get("https://example.com:8443/a?b=1").header("accept", "*/*"));
        let head = head_from_parts(&p, &Limits::default()).unwrap();
        assert_eq!((head.method(), head.target()), ("GET", "/a?b=1"));
        assert_eq!(head.header("host"), Some(&b"example.com:8443"[..]));
        assert_eq!(head.header("accept"), Some(&b"*/*"[..]));
        assert!(head.http2 && head.keep_alive && !head.client_closes);
        assert_eq!(head.protocol(), "HTTP/2.0");
    }

    #[test]
    fn the_http1_policy_applies() {
        let two_hosts = parts(get("https://a/").header("host", "b").header("host", "c"));
        let err = head_from_parts(&two_hosts, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("more than one host"), "{err}");
        let one_host = parts(get("https://a/").header("host", "b"));
        let head = head_from_parts(&one_host, &Limits::default()).unwrap();
        assert_eq!(head.values("host").collect::<Vec<_>>(), [&b"a"[..]]);
        let underscore = parts(get("https://a/").header("x_forwarded_for", "1.2.3.4"));
        let refuse = Limits {
            header_map: HeaderMap::Refuse,
            ..Limits::default()
        };
        assert!(head_from_parts(&underscore, &refuse).is_err());
        assert!(head_from_parts(&underscore, &Limits::default()).is_ok());
        let long = parts(get(&format!("https://a/{}", "x".repeat(5000))));
        assert_eq!(
            head_from_parts(&long, &Limits::default())
                .unwrap_err()
                .status()
                .0,
            414
        );
        let big = parts(get("https://a/").header("x-big", "v".repeat(8189)));
        assert_eq!(
            head_from_parts(&big, &Limits::default())
                .unwrap_err()
                .status()
                .0,
            431
        );
        let body = parts(
            http::Request::builder()
                .method("POST")
                .uri("https://a/")
                .header("content-length", "11"),
        );
        let small = Limits {
            body: Some(10),
            ..Limits::default()
        };
        assert_eq!(head_from_parts(&body, &small).unwrap_err().status().0, 413);
    }

    #[test]
    fn response_heads_are_lowercase_with_server_and_date() {
        let headers = [
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("Connection".to_string(), "close".to_string()),
        ];
        let head = response_head(201, &headers).unwrap();
        assert_eq!(head.status(), 201);
        assert_eq!(head.headers()["content-type"], "text/plain");
        assert_eq!(head.headers()["server"], SERVER);
        assert!(head.headers().contains_key("date"));
        assert!(!head.headers().contains_key("connection"));
        let (head, body) = error_response(&HttpError::bad("nope"));
        assert_eq!(head.status(), 400);
        assert!(body.starts_with(b"<html>"));
    }
}
