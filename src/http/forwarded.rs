//! What a trusted front end (nginx, a load balancer) may tell the server about a
//! request, Gunicorn's rules: the scheme the client used (`secure_scheme_headers`),
//! and headers with `_` in their name it may pass into the environ
//! (`forwarder_headers`). Whether the peer is trusted (`--forwarded-allow-ips`) is
//! decided once per connection; from an untrusted peer these headers mean nothing.

use super::request::Head;
use super::HttpError;

/// `wsgi.url_scheme` of one request — the one place the scheme is decided.
/// `tls` is whether the connection itself is encrypted; `forwarded` is what a
/// trusted proxy's secure-scheme headers said (`Some(true)` for https), which
/// wins either way, as in Gunicorn.
pub fn url_scheme(tls: bool, forwarded: Option<bool>) -> &'static str {
    if forwarded.unwrap_or(tls) {
        "https"
    } else {
        "http"
    }
}

/// What the request's secure-scheme headers say: `Some(true)` when one matches its
/// configured value (https), `Some(false)` when present but not matching (http),
/// `None` when none is present. Headers that disagree are an error (400), as in
/// Gunicorn: a proxy that says both is misconfigured or being fooled.
///
/// `secure` holds (header name, value meaning https); names compare
/// case-insensitively, values exactly (after trimming blanks).
pub fn secure_scheme(head: &Head, secure: &[(String, String)]) -> Result<Option<bool>, HttpError> {
    let mut said: Option<bool> = None;
    // The lengths of the names looked for, one bit each (63: that long or longer): a
    // trusted proxy's every request comes here, and most of its fields are none of
    // these, which one test of the name's length then tells.
    let bit = |len: usize| 1u64 << len.min(63);
    let lengths = secure.iter().fold(0u64, |bits, (n, _)| bits | bit(n.len()));
    for (name, value) in head.fields() {
        if lengths & bit(name.len()) == 0 {
            continue;
        }
        let Some((_, https_value)) = secure
            .iter()
            .find(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
        else {
            continue;
        };
        let https = value.trim_ascii() == https_value.as_bytes();
        match said {
            Some(before) if before != https => {
                return Err(HttpError::bad("Contradictory scheme headers"))
            }
            _ => said = Some(https),
        }
    }
    Ok(said)
}

/// Whether a header whose name contains `_` may reach the environ: only from a
/// trusted peer, and only when named in `forwarder_headers` (or that list holds
/// `*`). Others are dropped — `X_Forwarded_For` must not pass for `X-Forwarded-For`.
pub fn forwarder_may_set(name: &str, trusted: bool, forwarder_headers: &[String]) -> bool {
    trusted
        && forwarder_headers
            .iter()
            .any(|h| h == "*" || h.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{parse_head, Limits};

    fn head(headers: &[(&str, &str)]) -> Head {
        let mut raw = String::from("GET / HTTP/1.1\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        parse_head(raw.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap()
            .0
    }

    fn gunicorn_defaults() -> Vec<(String, String)> {
        [
            ("X-FORWARDED-PROTOCOL", "ssl"),
            ("X-FORWARDED-PROTO", "https"),
            ("X-FORWARDED-SSL", "on"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn secure_scheme_headers_follow_gunicorns_table() {
        /// (request headers, what they say: `Err` for a contradiction)
        type Case<'a> = (&'a [(&'a str, &'a str)], Result<Option<bool>, ()>);
        let cases: &[Case] = &[
            (&[], Ok(None)),
            (&[("Host", "x")], Ok(None)),
            (&[("X-Forwarded-Proto", "https")], Ok(Some(true))),
            (&[("x-forwarded-proto", " https ")], Ok(Some(true))),
            (&[("X-Forwarded-Proto", "http")], Ok(Some(false))),
            (&[("X-Forwarded-Proto", "HTTPS")], Ok(Some(false))),
            (&[("X-Forwarded-Ssl", "on")], Ok(Some(true))),
            (&[("X-Forwarded-Protocol", "ssl")], Ok(Some(true))),
            (
                &[("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "on")],
                Ok(Some(true)),
            ),
            (
                &[("X-Forwarded-Proto", "http"), ("X-Forwarded-Ssl", "off")],
                Ok(Some(false)),
            ),
            (
                &[("X-Forwarded-Ssl", "on"), ("X-Forwarded-Proto", "http")],
                Err(()),
            ),
            (
                &[
                    ("X-Forwarded-Proto", "https"),
                    ("X-Forwarded-Proto", "http"),
                ],
                Err(()),
            ),
            (&[("X_Forwarded_Proto", "https")], Ok(None)),
        ];
        for (headers, want) in cases {
            let got = secure_scheme(&head(headers), &gunicorn_defaults());
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{headers:?}"),
                (Err(()), Err(e)) => assert_eq!(e.status().0, 400, "{headers:?}"),
                _ => panic!("{headers:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn forwarded_scheme_wins_over_the_connection() {
        let cases = [
            (false, None, "http"),
            (true, None, "https"),
            (false, Some(true), "https"),
            (true, Some(false), "http"),
            (true, Some(true), "https"),
        ];
        for (tls, forwarded, want) in cases {
            assert_eq!(url_scheme(tls, forwarded), want, "{tls} {forwarded:?}");
        }
    }

    #[test]
    fn only_trusted_peers_pass_listed_underscore_headers() {
        let listed = vec!["SCRIPT_NAME".to_string(), "PATH_INFO".to_string()];
        let any = vec!["*".to_string()];
        let cases = [
            ("SCRIPT_NAME", true, &listed, true),
            ("script_name", true, &listed, true),
            ("SCRIPT_NAME", false, &listed, false),
            ("REMOTE_USER", true, &listed, false),
            ("REMOTE_USER", true, &any, true),
            ("REMOTE_USER", false, &any, false),
        ];
        for (name, trusted, list, want) in cases {
            assert_eq!(
                forwarder_may_set(name, trusted, list),
                want,
                "{name} {trusted} {list:?}"
            );
        }
    }
}
