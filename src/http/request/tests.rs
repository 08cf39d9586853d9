//! Request-head parsing, table-driven: each row is raw bytes and what must come out.

use super::*;

fn parse(raw: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    parse_head(raw, &Limits::default())
}

fn ok(raw: &[u8]) -> Head {
    match parse(raw) {
        Ok(Some((head, used))) => {
            assert_eq!(used, raw.len(), "whole head consumed");
            head
        }
        other => panic!(
            "{:?} did not parse: {other:?}",
            String::from_utf8_lossy(raw)
        ),
    }
}

fn status_of(raw: &[u8]) -> u16 {
    match parse(raw) {
        Err(e) => e.status().0,
        other => panic!(
            "{:?} should fail, got {other:?}",
            String::from_utf8_lossy(raw)
        ),
    }
}

#[test]
fn valid_heads_give_framing_and_keep_alive() {
    let cases: &[(&[u8], BodyFraming, bool, bool)] = &[
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            BodyFraming::None,
            true,
            false,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", BodyFraming::None, false, false),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            BodyFraming::None,
            true,
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
            BodyFraming::None,
            false,
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nConnection: TE, Close\r\n\r\n",
            BodyFraming::None,
            false,
            false,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            BodyFraming::Length(5),
            true,
            false,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            BodyFraming::None,
            true,
            false,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            BodyFraming::Chunked,
            true,
            false,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n",
            BodyFraming::Chunked,
            true,
            false,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
            BodyFraming::Length(3),
            true,
            true,
        ),
    ];
    for (raw, framing, keep_alive, expect) in cases {
        let head = ok(raw);
        assert_eq!(head.body, *framing, "{}", String::from_utf8_lossy(raw));
        assert_eq!(
            head.keep_alive,
            *keep_alive,
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(
            head.expect_continue,
            *expect,
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn partial_heads_need_more_bytes() {
    for raw in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n"[..],
        b"GET / HT",
        b"G",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r",
    ] {
        assert!(
            matches!(parse(raw), Ok(None)),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn invalid_heads_answer_with_their_status() {
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000));
    let many_headers = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(101));
    let big_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "v".repeat(9000));
    let cases: Vec<(&[u8], u16)> = vec![
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: brotli\r\n\r\n", 501),
        (
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\nExpect: something\r\n\r\n", 417),
        (b"GET / HTTP/2.0\r\n\r\n", 400),
        (b"G@T / HTTP/1.1\r\n\r\n", 400),
        (b"GET  HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
        (long_line.as_bytes(), 414),
        (many_headers.as_bytes(), 431),
        (big_header.as_bytes(), 431),
    ];
    for (raw, status) in cases {
        assert_eq!(
            status_of(raw),
            status,
            "{}",
            String::from_utf8_lossy(&raw[..raw.len().min(80)])
        );
    }
}

#[test]
fn an_oversized_partial_head_is_refused_before_it_completes() {
    let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
    while raw.len() < 1_000_000 {
        raw.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert!(parse(&raw).is_err());
}

#[test]
fn refuse_exempts_forwarder_headers_only_for_a_trusted_peer() {
    static FORWARDERS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["SCRIPT_NAME".to_string()]);
    let trusted = Limits {
        header_map: HeaderMap::Refuse,
        forwarder_headers: &FORWARDERS,
        ..Limits::default()
    };
    let raw = b"GET / HTTP/1.1\r\nScript_Name: /app\r\n\r\n";
    let (head, _) = parse_head(raw, &trusted).unwrap().unwrap();
    assert_eq!(head.header("script_name"), Some(&b"/app"[..]));
    let refused = parse_head(raw, &trusted.for_untrusted_peer()).unwrap_err();
    assert_eq!(refused.status().0, 400);
    let other = parse_head(b"GET / HTTP/1.1\r\nX_A: 1\r\n\r\n", &trusted).unwrap_err();
    assert_eq!(other.status().0, 400);
}

#[test]
fn headers_keep_order_and_raw_values() {
    let head =
        ok(b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-A: 2\r\nUser-Agent: t\xe9st\r\n\r\n");
    assert_eq!(head.target(), "/p?q=1");
    assert_eq!(head.protocol(), "HTTP/1.1");
    let names: Vec<&str> = head.fields().map(|(n, _)| n).collect();
    assert_eq!(names, ["Host", "X-A", "X-A", "User-Agent"]);
    assert_eq!(head.header("user-agent"), Some(&b"t\xe9st"[..]));
}

/// What the field pass records (`Head::host`, `Head::name_lengths`) is what a look at
/// the fields themselves gives, on the HTTP/1 parser's heads (fast path and full path)
/// and on HTTP/2's, and a head not made by them looks at its fields.
#[test]
fn the_recorded_host_and_name_lengths_match_the_fields() {
    let heads: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nhOST: b:81\r\nUser-Agent: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nUser-Agent: x\r\nAccept: */*\r\nHost: c\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\nHost:  d \r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e\n\r\n".as_slice(),
        b"GET / HTTP/1.1\r\nA-Very-Long-Header-Name-Beyond-Sixty-Three-Bytes-Of-Name-Text-Here: 1\r\n\r\n",
    ];
    let check = |head: &Head, what: &str| {
        assert_eq!(head.host(), head.header("host"), "{what}");
        let mut lengths = 0;
        for (name, _) in head.fields() {
            lengths |= name_length_bit(name.len());
        }
        assert_eq!(head.name_lengths(), lengths, "{what}");
    };
    for raw in heads {
        let what = String::from_utf8_lossy(raw).to_string();
        match parse(raw) {
            Ok(Some((head, _))) => check(&head, &what),
            // The bare LF one is refused: nothing to check.
            other => assert!(other.is_err(), "{what}: {other:?}"),
        }
    }
    let fields: &[(&[u8], &[u8])] = &[(b"user-agent", b"x"), (b"host", b"h2.example")];
    let h2 = Head::from_fields("GET", "/", fields, &Limits::default()).unwrap();
    check(&h2, "from_fields");
    let made = Head::from_parts("GET", "/", 1, &[("Host", b"parts")]);
    assert_eq!(made.host(), Some(&b"parts"[..]));
    assert_eq!(
        made.name_lengths(),
        u64::MAX,
        "unknown: every length may be there"
    );
}

/// `leading_fields`: the bytes of the first fields' lines through the last value's
/// end, so a longer value or other spacing differs; none for HTTP/2 heads, whose
/// names and values lie back to back.
#[test]
fn leading_fields_are_the_lines_through_the_last_value() {
    let head = ok(b"GET / HTTP/1.1\r\nHost: a\r\nAccept:  */*  \r\nX: 1\r\n\r\n");
    assert_eq!(head.leading_fields(1), Some(&b"Host: a"[..]));
    assert_eq!(
        head.leading_fields(2),
        Some(&b"Host: a\r\nAccept:  */*"[..])
    );
    assert_eq!(head.leading_fields(3).map(<[u8]>::len), Some(29));
    assert_eq!(head.leading_fields(0), None);
    assert_eq!(head.leading_fields(4), None);
    let longer = ok(b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*x\r\n\r\n");
    assert_ne!(longer.leading_fields(2), head.leading_fields(2));
    let fields: &[(&[u8], &[u8])] = &[(b"host", b"a"), (b"accept", b"*/*")];
    let h2 = Head::from_fields("GET", "/", fields, &Limits::default()).unwrap();
    assert_eq!(h2.leading_fields(1), None);
    let made = Head::from_parts("GET", "/x", 1, &[("Host", b"a"), ("Accept", b"*/*")]);
    assert_eq!(made.leading_fields(2), Some(&b"Host: a\r\nAccept: */*"[..]));
    assert_eq!(made.target(), "/x");
}
