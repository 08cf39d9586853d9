//! The strictness rules, one row per rule: Gunicorn 27's tests/requests/{valid,invalid}
//! cases and RFC 9112 smuggling shapes, with the flags that change the verdict.

use super::*;

/// A modification of the default limits.
type Tweak = fn(&mut Limits);

fn none(_: &mut Limits) {}
fn folding(l: &mut Limits) {
    l.permit_obsolete_folding = true;
}
fn strip_spaces(l: &mut Limits) {
    l.strip_header_spaces = true;
}
fn any_method(l: &mut Limits) {
    l.permit_unconventional_method = true;
}
fn any_method_casefold(l: &mut Limits) {
    l.permit_unconventional_method = true;
    l.casefold_method = true;
}
fn any_version(l: &mut Limits) {
    l.permit_unconventional_version = true;
}
fn refuse_underscores(l: &mut Limits) {
    l.header_map = HeaderMap::Refuse;
}
fn dangerous_underscores(l: &mut Limits) {
    l.header_map = HeaderMap::Dangerous;
}
fn two_fields(l: &mut Limits) {
    l.fields = 2;
}
fn tiny_fields(l: &mut Limits) {
    l.field_size = 10;
}
fn short_line(l: &mut Limits) {
    l.request_line = Some(10);
}
fn unlimited_line(l: &mut Limits) {
    l.request_line = None;
}
fn body_10(l: &mut Limits) {
    l.body = Some(10);
}
fn many_fields(l: &mut Limits) {
    l.fields = 1000;
}

fn parse_with(raw: &[u8], tweak: Tweak) -> Result<Option<(Head, usize)>, HttpError> {
    let mut limits = Limits::default();
    tweak(&mut limits);
    parse_head(raw, &limits)
}

fn show(raw: &[u8]) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(100)]).into_owned()
}

#[test]
fn refused_heads_answer_with_gunicorns_status() {
    let cases: &[(&[u8], Tweak, u16)] = &[
        // request line
        (b"GET HTTP/1.1\r\n\r\n", none, 400),
        (b"GET\n/\nHTTP/1.1\r\n\r\n", none, 400),
        (b"bla:rgh /foo HTTP/1.1\r\n\r\n", none, 400),
        (b"-bl /foo HTTP/1.1\r\n\r\n", none, 400),
        (b"get /foo HTTP/1.1\r\n\r\n", none, 400),
        (b"GE#T /foo HTTP/1.1\r\n\r\n", none, 400),
        (b"ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\n\r\n", none, 400),
        (b"GET\0 /foo HTTP/1.1\r\n\r\n", none, 400),
        (b"GET\xc3\x9f /g HTTP/1.1\r\n\r\n", none, 400),
        (b"GET /foo FTP/1.1\r\n\r\n", none, 400),
        (b"GET /test HTTP/111\r\n\r\n", none, 400),
        (b"GET /foo HTTP/0.99\r\n\r\n", none, 400),
        (b"GET /foo HTTP/2.0\r\n\r\n", none, 400),
        (b"GET /foo HTTP/1.2\r\n\r\n", none, 400),
        (b"GET /foo http/1.1\r\n\r\n", none, 400),
        (b"GET /foo HTTP/1.1 \r\n\r\n", none, 400),
        (b"GET  /foo HTTP/1.1\r\n\r\n", none, 400),
        (b"PUT s://]ufd/: HTTP/1.1\r\n\r\n", none, 400),
        (b"GET * HTTP/1.1\r\n\r\n", none, 400),
        (b"GET example.com:443 HTTP/1.1\r\n\r\n", none, 400),
        (b"GET foo/bar HTTP/1.1\r\n\r\n", none, 400),
        (b"GET /a\x01b HTTP/1.1\r\n\r\n", none, 400),
        (b"GET /a\x7fb HTTP/1.1\r\n\r\n", none, 400),
        (b"GET /caf\xe9 HTTP/1.1\r\n\r\n", none, 400),
        (b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", none, 400),
        // Gunicorn 27: raw non-ASCII bytes in the target, UTF-8 too, are refused.
        (b"GET /\xc3\xa0%20k HTTP/1.0\r\n\r\n", none, 400),
        (b"GET /caf\xe9 HTTP/1.1\r\n\r\n", none, 400),
        (b"GET /\x7f HTTP/1.1\r\n\r\n", none, 400),
        (b"\n\nGET / HTTP/1.1\r\n\r\n", none, 400),
        (b"\nGET / HTTP/1.1\r\n\r\n", none, 400),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n",
            none,
            400,
        ),
        (b"GET /0123456789 HTTP/1.1\r\n\r\n", short_line, 414),
        // line endings
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\nHost: a\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\n", none, 400),
        (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", none, 400),
        // field names and values
        (b"GET /foo HTTP/1.1\r\nba\0z: bar\r\n\r\n", none, 400),
        (
            b"GET / HTTP/1.1\r\nContent-Length : 3\r\n\r\nxyz",
            none,
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length\t: 3\r\n\r\nxyz",
            none,
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length\xc3\x9f: 3\r\n\r\n",
            none,
            400,
        ),
        (b"GET / HTTP/1.1\r\n: empty\r\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\nNo colon\r\n\r\n", none, 400),
        (
            b"GET / HTTP/1.1\r\nX-Value: plain\x07injected\r\n\r\n",
            none,
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nX-Value: plain\x7finjected\r\n\r\n",
            none,
            400,
        ),
        (b"GET / HTTP/1.1\r\nX-Value: a\0b\r\n\r\n", none, 400),
        (
            b"GET / HTTP/1.1\r\nLong: one\r\n two\r\nHost: a\r\n\r\n",
            none,
            400,
        ),
        (b"GET / HTTP/1.1\r\nLong: one\r\n\ttwo\r\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\n folded-first: x\r\n\r\n", folding, 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", none, 400),
        (
            b"GET / HTTP/1.1\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n",
            none,
            400,
        ),
        (
            b"GET /x HTTP/1.0\r\nTransfer_Encoding: t\r\n\r\n",
            refuse_underscores,
            400,
        ),
        (b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", tiny_fields, 431),
        (
            b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
            two_fields,
            431,
        ),
        // body framing
        (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\nContent-Length: -0\r\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 0_1\r\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", none, 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 3 1\r\n\r\n", none, 400),
        (
            b"GET / HTTP/1.1\r\nContent-Length: bla-bla\r\n\r\n",
            none,
            400,
        ),
        (b"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", none, 400),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            none,
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n",
            body_10,
            413,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 12\r\nTransfer-Encoding: \tchunked\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: identity, chunked, identity, chunked\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            none,
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: br, chunked\r\n\r\n",
            none,
            501,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            none,
            501,
        ),
        // Expect
        (b"GET / HTTP/1.1\r\nExpect: something\r\n\r\n", none, 417),
        (
            b"GET / HTTP/1.0\r\nExpect: 100-continue, x\r\n\r\n",
            none,
            417,
        ),
    ];
    for (raw, tweak, status) in cases {
        match parse_with(raw, *tweak) {
            Err(e) => assert_eq!(e.status().0, *status, "{} → {e}", show(raw)),
            other => panic!("{} should be refused, got {other:?}", show(raw)),
        }
    }
}

/// (raw, flags, method, target, minor version, headers after the rules, framing)
type Accepted = (
    &'static [u8],
    Tweak,
    &'static str,
    &'static str,
    u8,
    &'static [(&'static str, &'static [u8])],
    BodyFraming,
);

#[test]
fn accepted_heads_parse_to_what_gunicorn_sees() {
    let cases: &[Accepted] = &[
        (b"-BLARGH /foo HTTP/1.1\r\n\r\n", none, "-BLARGH", "/foo", 1, &[], BodyFraming::None),
        (b"-blargh /foo HTTP/1.1\r\n\r\n", any_method, "-blargh", "/foo", 1, &[], BodyFraming::None),
        (b"-blargh /foo HTTP/1.1\r\n\r\n", any_method_casefold, "-BLARGH", "/foo", 1, &[], BodyFraming::None),
        (b"GET /foo HTTP/1.2\r\n\r\n", any_version, "GET", "/foo", 1, &[], BodyFraming::None),
        (b"GET /foo HTTP/0.9\r\n\r\n", any_version, "GET", "/foo", 0, &[], BodyFraming::None),
        (b"OPTIONS * HTTP/1.1\r\n\r\n", none, "OPTIONS", "*", 1, &[], BodyFraming::None),
        (b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", none, "CONNECT", "example.com:443", 1, &[], BodyFraming::None),
        (b"GET http://[::1]:8080/x?y HTTP/1.1\r\n\r\n", none, "GET", "http://[::1]:8080/x?y", 1, &[], BodyFraming::None),
        (b"GET https://u:p@h/ HTTP/1.1\r\n\r\n", none, "GET", "https://u:p@h/", 1, &[], BodyFraming::None),
        (b"GET /%C3%A0%20k HTTP/1.0\r\n\r\n", none, "GET", "/%C3%A0%20k", 0, &[], BodyFraming::None),
        (b"GET ///keeping_slashes HTTP/1.1\r\n\r\n", none, "GET", "///keeping_slashes", 1, &[], BodyFraming::None),
        (b"GET /with_\"quotes\"?foo=\"bar\" HTTP/1.1\r\n\r\n", none, "GET", "/with_\"quotes\"?foo=\"bar\"", 1, &[], BodyFraming::None),
        (b"GET / HTTP/1.1\r\nName: \t value \t \r\n\r\n", none, "GET", "/", 1, &[("Name", b"value")], BodyFraming::None),
        (b"GET / HTTP/1.1\r\nX-Value: caf\xc3\xa9\r\n\r\n", none, "GET", "/", 1, &[("X-Value", b"caf\xc3\xa9")], BodyFraming::None),
        (b"GET / HTTP/1.1\r\nX.CUSTOM|PIPE: ok\r\n\r\n", none, "GET", "/", 1, &[("X.CUSTOM|PIPE", b"ok")], BodyFraming::None),
        (b"GET / HTTP/1.1\r\naaaaaaaaaaaaa:++++++++++\r\n\r\n", none, "GET", "/", 1, &[("aaaaaaaaaaaaa", b"++++++++++")], BodyFraming::None),
        (b"GET / HTTP/1.1\r\nLong: one\r\n two\r\nHost: a\r\n\r\n", folding, "GET", "/", 1, &[("Long", b"one two"), ("Host", b"a")], BodyFraming::None),
        (b"GET / HTTP/1.1\r\nX: a\r\n\t b \r\n  c\r\n\r\n", folding, "GET", "/", 1, &[("X", b"a b c")], BodyFraming::None),
        (b"GET / HTTP/1.1\r\nContent-Length : 3\r\n\r\n", strip_spaces, "GET", "/", 1, &[("Content-Length", b"3")], BodyFraming::Length(3)),
        // Under `drop` the `_` names stay in the head, out of the framing rules; the environ
        // leaves them out (it alone knows whether a trusted forwarder sent them).
        (b"GET /x HTTP/1.0\r\nTransfer_Encoding: t\r\nContent-Length: 7\r\nContent_Length: -1E23\r\n\r\n", none, "GET", "/x", 0, &[("Transfer_Encoding", b"t"), ("Content-Length", b"7"), ("Content_Length", b"-1E23")], BodyFraming::Length(7)),
        (b"GET /x HTTP/1.0\r\nX_A: t\r\n\r\n", dangerous_underscores, "GET", "/x", 0, &[("X_A", b"t")], BodyFraming::None),
        (b"PUT / HTTP/1.0\r\nconTENT-Length: 5\r\n\r\n", none, "PUT", "/", 0, &[("conTENT-Length", b"5")], BodyFraming::Length(5)),
        (b"\r\nGET /after-empty-line HTTP/1.1\r\n\r\n", none, "GET", "/after-empty-line", 1, &[], BodyFraming::None),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: identity, chunked\r\n\r\n", none, "POST", "/", 1, &[("Transfer-Encoding", b"identity, chunked")], BodyFraming::Chunked),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", none, "POST", "/", 1, &[("Transfer-Encoding", b"gzip"), ("Transfer-Encoding", b"chunked")], BodyFraming::Chunked),
        (b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n", body_10, "POST", "/", 1, &[("Content-Length", b"10")], BodyFraming::Length(10)),
        (b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n", unlimited_line, "GET", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1, &[], BodyFraming::None),
    ];
    for (raw, tweak, method, target, minor, headers, framing) in cases {
        let (head, used) = match parse_with(raw, *tweak) {
            Ok(Some(done)) => done,
            other => panic!("{} should parse, got {other:?}", show(raw)),
        };
        assert_eq!(used, raw.len(), "{}", show(raw));
        assert_eq!((head.method(), head.target()), (*method, *target));
        assert_eq!(head.minor_version, *minor, "{}", show(raw));
        let got: Vec<(&str, &[u8])> = head.fields().collect();
        assert_eq!(got, *headers, "{}", show(raw));
        assert_eq!(head.body, *framing, "{}", show(raw));
    }
}

#[test]
fn coded_chunked_bodies_close_the_connection_afterwards() {
    let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    let (head, _) = parse_with(raw, none).unwrap().unwrap();
    assert_eq!((head.body, head.keep_alive), (BodyFraming::Chunked, false));
}

#[test]
fn a_fold_waits_for_the_rest_of_the_head_when_permitted() {
    let raw = b"GET / HTTP/1.1\r\nLong: one\r\n two\r\n";
    assert!(matches!(parse_with(raw, folding), Ok(None)));
    assert!(parse_with(raw, none).is_err());
}

#[test]
fn more_fields_than_the_stack_slots_parse_when_the_limit_allows() {
    let raw = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(300));
    let (head, _) = parse_with(raw.as_bytes(), many_fields).unwrap().unwrap();
    assert_eq!(head.fields().count(), 300);
    let too_many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(1001));
    let err = parse_with(too_many.as_bytes(), many_fields).unwrap_err();
    assert_eq!(err.status().0, 431);
}

#[test]
fn a_long_request_line_is_refused_before_it_ends() {
    let partial = format!("GET /{}", "a".repeat(5000));
    let err = parse_with(partial.as_bytes(), none).unwrap_err();
    assert_eq!(err.status().0, 414);
    assert!(matches!(
        parse_with(partial.as_bytes(), unlimited_line),
        Ok(None)
    ));
}

#[test]
fn every_prefix_of_a_good_head_needs_more_bytes() {
    let raw = b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nX: y\r\n\r\n";
    for n in 0..raw.len() {
        assert!(
            matches!(parse_with(&raw[..n], none), Ok(None)),
            "{}",
            show(&raw[..n])
        );
    }
}

#[test]
fn every_prefix_of_a_permitted_fold_or_spaced_name_needs_more_bytes() {
    let cases: &[(&[u8], Tweak)] = &[
        (
            b"GET / HTTP/1.1\r\nLong: one\r\n\t two\r\nHost: a\r\n\r\n",
            folding,
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length  : 3\r\nHost: a\r\n\r\n",
            strip_spaces,
        ),
    ];
    for (raw, tweak) in cases {
        for n in 0..raw.len() {
            assert!(
                matches!(parse_with(&raw[..n], *tweak), Ok(None)),
                "{}",
                show(&raw[..n])
            );
        }
        assert!(matches!(parse_with(raw, *tweak), Ok(Some(_))));
    }
}

#[test]
fn an_unpermitted_fold_is_named_even_before_the_head_ends() {
    let err = parse_with(b"GET / HTTP/1.1\r\nLong: one\r\n tw", none).unwrap_err();
    assert!(err.to_string().contains("folding"), "{err}");
}

fn permissive_small(l: &mut Limits) {
    l.permit_obsolete_folding = true;
    l.strip_header_spaces = true;
    l.permit_unconventional_version = true;
    l.request_line = Some(48);
    l.fields = 4;
    l.field_size = 64;
}

/// Regression (fuzz/request_stream): a refusal at some prefix must hold for the whole
/// head, or the verdict would depend on how the client's bytes were split.
#[test]
fn a_verdict_never_changes_as_more_bytes_arrive() {
    let cases: &[(&[u8], Tweak)] = &[
        (b"GET / HTTP/1.1\r\nTP/1.1\r\nA: b\r\nA: b\r\n c\r\xf2\xf2\xf2", folding),
        (b"$1GEGET / HTTP/1.1\r\nA\xeb\xeb\xeb\xeb\0\0\0T\0\x0e1H T.A\r0\n1\xeb", permissive_small),
        (b"GET / HTTP/1.1\r\nA:          x\r\nB:                                                  y\r\n\r\n", permissive_small),
        (b"GET / HTTP/1.1\r\nX : 1\r\nY: a\x01b", strip_spaces),
    ];
    for (raw, tweak) in cases {
        let whole = parse_with(raw, *tweak).map(|h| h.map(|(_, n)| n));
        for n in 0..raw.len() {
            match parse_with(&raw[..n], *tweak) {
                Err(_) => assert!(
                    whole.is_err(),
                    "{} errs, {} does not",
                    show(&raw[..n]),
                    show(raw)
                ),
                Ok(Some((_, used))) => assert_eq!(whole, Ok(Some(used)), "{}", show(raw)),
                Ok(None) => {}
            }
        }
    }
}

/// Gunicorn's corpus invalid/013: a folded field is measured with its folds, as sent
/// ("Accept:\r\n */*\r\n" is 15 bytes), not as unfolded.
#[test]
fn a_folded_field_counts_its_folds_against_the_field_size() {
    let mut l = Limits {
        permit_obsolete_folding: true,
        field_size: 14,
        ..Default::default()
    };
    let head = b"GET /test HTTP/1.1\r\nAccept:\r\n */*\r\n\r\n";
    assert!(matches!(
        parse_head(head, &l),
        Err(HttpError::HeadersTooLarge(_))
    ));
    l.field_size = 15;
    assert!(parse_head(head, &l).unwrap().is_some());
}
