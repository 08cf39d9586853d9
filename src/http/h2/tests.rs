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
fn requests_with_more_fields_than_the_stack_holds_keep_them_all_in_order() {
    for count in [
        FIELDS_ON_STACK - 1,
        FIELDS_ON_STACK,
        FIELDS_ON_STACK + 1,
        60,
    ] {
        let mut build = get("https://a/");
        for i in 0..count {
            build = build.header(format!("x-f{i}"), i.to_string());
        }
        let head = head_from_parts(&parts(build), &Limits::default()).unwrap();
        assert_eq!(head.header("host"), Some(&b"a"[..]));
        for i in 0..count {
            let value = i.to_string();
            assert_eq!(head.header(&format!("x-f{i}")), Some(value.as_bytes()));
        }
        let names: Vec<&str> = head.fields().map(|(n, _)| n).collect();
        let mut want = vec!["host".to_string()];
        want.extend((0..count).map(|i| format!("x-f{i}")));
        assert_eq!(names, want);
    }
}

#[test]
fn a_recycled_head_keeps_nothing_of_the_stream_it_served() {
    let big = parts(
        get("https://a/old?x=1")
            .header("x-old", "1")
            .header("content-length", "5")
            .header("expect", "100-continue"),
    );
    let fresh = |p: &http::request::Parts| {
        let h = head_from_parts(p, &Limits::default()).unwrap();
        let fields: Vec<(String, Vec<u8>)> = h
            .fields()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect();
        (
            h.method().to_string(),
            h.target().to_string(),
            fields,
            h.expect_continue,
        )
    };
    let small = parts(get("https://b/new").header("accept", "*/*"));
    let want = fresh(&small);
    for _ in 0..3 {
        request::recycle(head_from_parts(&big, &Limits::default()).unwrap());
        assert_eq!(fresh(&small), want);
        let two_hosts = parts(get("https://a/").header("host", "b").header("host", "c"));
        assert!(head_from_parts(&two_hosts, &Limits::default()).is_err());
        assert_eq!(fresh(&small), want);
    }
    assert_eq!(
        want.2,
        [
            ("host".to_string(), b"b".to_vec()),
            ("accept".to_string(), b"*/*".to_vec())
        ]
    );
    assert!(!want.3);
}

/// A frame header: length, type, flags, stream 1; then `len` zero bytes.
fn frame(kind: u8, flags: u8, len: usize) -> Vec<u8> {
    let mut f = vec![
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        kind,
        flags,
        0,
        0,
        0,
        1,
    ];
    f.resize(9 + len, 0);
    f
}

fn frames(kind: u8, flags: u8, len: usize, count: usize) -> Vec<u8> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    for _ in 0..count {
        out.extend(frame(kind, flags, len));
    }
    out
}

#[test]
fn the_frame_tap_counts_floods_whatever_the_split() {
    let cases: &[(u8, u8, usize, usize, Option<Flood>)] = &[
        (0x3, 0, 4, MAX_RESETS as usize, None),
        (0x3, 0, 4, MAX_RESETS as usize + 1, Some(Flood::Resets)),
        (0x6, 0, 8, MAX_CONTROL as usize + 1, Some(Flood::Control)),
        (0x4, 0, 0, MAX_CONTROL as usize + 1, Some(Flood::Control)),
        (0x2, 0, 5, MAX_CONTROL as usize + 1, Some(Flood::Control)),
        (0x0, 0, 0, MAX_CONTROL as usize + 1, Some(Flood::Control)),
        // Empty DATA that ends a stream, and DATA with bytes, are requests' own.
        (0x0, 1, 0, 5000, None),
        (0x0, 0, 100, 5000, None),
        // WINDOW_UPDATE is how a small-window client reads: never counted.
        (0x8, 0, 4, 5000, None),
    ];
    for &(kind, flags, len, count, want) in cases {
        let bytes = frames(kind, flags, len, count);
        for step in [1, 7, 9, 4096, bytes.len()] {
            let mut tap = FrameTap::new(0);
            let got = bytes.chunks(step).try_for_each(|c| tap.feed(c, 5));
            assert_eq!(got.err(), want, "type {kind} x{count}, step {step}");
        }
    }
}

#[test]
fn the_frame_tap_counts_header_blocks_once_whole_whatever_the_split() {
    /// A frame's type, flags and payload length.
    type Frame = (u8, u8, usize);
    // (frames, blocks): END_HEADERS is 0x4; CONTINUATION is 0x9.
    let cases: &[(&[Frame], u64)] = &[
        (&[(0x1, 0x4 | 0x1, 30)], 1),
        (&[(0x1, 0x4, 0)], 1),
        (&[(0x1, 0x4, 30), (0x0, 0x1, 5), (0x1, 0x5, 12)], 2),
        // A block in three frames is one block, whole with its last.
        (&[(0x1, 0x1, 20), (0x9, 0, 20), (0x9, 0x4, 20)], 1),
        (&[(0x1, 0x1, 20), (0x9, 0, 20)], 0),
        (&[(0x3, 0, 4), (0x4, 0x4, 0), (0x8, 0, 4), (0x0, 0x4, 8)], 0),
    ];
    for &(list, want) in cases {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        for &(kind, flags, len) in list {
            bytes.extend(frame(kind, flags, len));
        }
        for step in [1, 7, 9, 10, bytes.len()] {
            let mut tap = FrameTap::new(0);
            for chunk in bytes.chunks(step) {
                tap.feed(chunk, 0).unwrap();
            }
            assert_eq!(tap.header_blocks(), want, "{list:?}, step {step}");
        }
        // Not counted before the last byte of its payload.
        let mut tap = FrameTap::new(0);
        tap.feed(&bytes[..bytes.len() - 1], 0).unwrap();
        let last_ends = list
            .last()
            .is_some_and(|&(k, f, _)| matches!(k, 0x1 | 0x9) && f & 0x4 != 0);
        assert_eq!(tap.header_blocks() + u64::from(last_ends), want, "{list:?}");
    }
    let mut tap = FrameTap::new(0);
    tap.add_block();
    assert_eq!(tap.header_blocks(), 1);
}

#[test]
fn the_frame_tap_forgets_after_its_window() {
    let mut tap = FrameTap::new(0);
    let batch = frames(0x6, 0, 8, 900);
    tap.feed(&batch, 0).unwrap();
    let more: Vec<u8> = (0..900).flat_map(|_| frame(0x6, 0, 8)).collect();
    tap.feed(&more, FLOOD_WINDOW_MS).unwrap();
    assert_eq!(tap.feed(&more, FLOOD_WINDOW_MS + 1), Err(Flood::Control));
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

#[test]
fn heads_from_start_response_lines_match_heads_from_pairs() {
    let pairs = [
        ("Content-Type", "text/plain"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-Latin", "caf\u{e9}"),
        ("Connection", "close"),
    ];
    let mut lines = Vec::new();
    for (name, value) in pairs {
        response::push_header_line(&mut lines, name, value);
    }
    let from_lines = response_head_from_lines(200, &lines, Some(5)).unwrap();
    let mut owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    owned.push(("Content-Length".into(), "5".into()));
    let from_pairs = response_head(200, &owned).unwrap();
    assert_eq!(from_lines.headers(), from_pairs.headers());
    let cookies: Vec<_> = from_lines.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(from_lines.headers()["x-latin"].as_bytes(), b"caf\xe9");
    assert_eq!(from_lines.headers()["content-length"], "5");
    assert!(!from_lines.headers().contains_key("connection"));
    let bad = response_head_from_lines(200, b"Bad Name: x\r\n", None);
    assert!(bad.is_err());
}

#[test]
fn repeated_lines_give_the_same_fields_and_other_lengths_their_own() {
    let without_date = |head: http::Response<()>| {
        let mut fields = head.headers().clone();
        assert!(fields.remove("date").is_some());
        fields
    };
    let lines = b"Content-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n";
    let first = without_date(response_head_from_lines(200, lines, Some(5)).unwrap());
    assert_eq!(first["content-length"], "5");
    for status in [200, 201, 200] {
        let again = response_head_from_lines(status, lines, Some(5)).unwrap();
        assert_eq!(again.status(), status);
        assert_eq!(without_date(again), first);
    }
    let longer = without_date(response_head_from_lines(200, lines, Some(7)).unwrap());
    assert_eq!(longer["content-length"], "7");
    let none = without_date(response_head_from_lines(200, lines, None).unwrap());
    assert!(!none.contains_key("content-length"));
    let other = without_date(response_head_from_lines(200, b"X-A: 1\r\n", Some(5)).unwrap());
    assert_eq!(other["x-a"], "1");
    assert!(!other.contains_key("content-type"));
    for _ in 0..3 {
        assert!(response_head_from_lines(200, b"Bad Name: x\r\n", None).is_err());
    }
}

#[test]
fn remembered_values_keep_their_bytes_past_the_cache_size() {
    let texts: Vec<String> = (0..3 * RECENT_VALUES).map(|i| format!("v{i}")).collect();
    for _ in 0..2 {
        for text in &texts {
            assert_eq!(recent_value(text.as_bytes()).as_bytes(), text.as_bytes());
        }
    }
    let long = "x".repeat(RECENT_VALUE_MAX + 1);
    assert_eq!(recent_value(long.as_bytes()).as_bytes(), long.as_bytes());
    assert_eq!(recent_value(b"bad\nvalue").as_bytes(), b"");
}
