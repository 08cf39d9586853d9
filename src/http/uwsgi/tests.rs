use super::*;
use crate::http::request::BodyFraming;

/// A packet from (key, value) vars, with `modifier1`.
fn packet(modifier1: u8, vars: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (k, v) in vars {
        block.extend_from_slice(&(k.len() as u16).to_le_bytes());
        block.extend_from_slice(k.as_bytes());
        block.extend_from_slice(&(v.len() as u16).to_le_bytes());
        block.extend_from_slice(v.as_bytes());
    }
    let mut out = vec![modifier1];
    out.extend_from_slice(&(block.len() as u16).to_le_bytes());
    out.push(0);
    out.extend_from_slice(&block);
    out
}

const GET: &[(&str, &str)] = &[
    ("REQUEST_METHOD", "GET"),
    ("REQUEST_URI", "/a%20b?x=1"),
    ("PATH_INFO", "/a b"),
    ("QUERY_STRING", "x=1"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("CONTENT_LENGTH", ""),
    ("CONTENT_TYPE", ""),
    ("HTTP_HOST", "example.com"),
    ("HTTP_X_CUSTOM_THING", "yes"),
    ("REMOTE_ADDR", "10.1.2.3"),
    ("REMOTE_PORT", "5555"),
];

fn ok(bytes: &[u8]) -> (Packet, usize) {
    parse(bytes, &Limits::default())
        .expect("valid packet")
        .expect("complete packet")
}

#[test]
fn a_get_becomes_the_http1_head() {
    let bytes = packet(0, GET);
    let (p, used) = ok(&bytes);
    assert_eq!(used, bytes.len());
    assert_eq!(p.head.method(), "GET");
    assert_eq!(p.head.target(), "/a%20b?x=1");
    assert_eq!(p.head.protocol(), "HTTP/1.1");
    assert_eq!(p.head.header("host"), Some(&b"example.com"[..]));
    assert_eq!(p.head.header("X-Custom-Thing"), Some(&b"yes"[..]));
    assert_eq!(p.head.header("content-type"), Some(&b""[..]));
    assert_eq!(p.head.body, BodyFraming::None);
    assert!(!p.https);
    assert_eq!(p.remote, Some("10.1.2.3:5555".parse().unwrap()));
}

#[test]
fn without_request_uri_the_target_is_path_and_query() {
    let (p, _) = ok(&packet(0, &[("PATH_INFO", "/p"), ("QUERY_STRING", "q=2")]));
    assert_eq!((p.head.method(), p.head.target()), ("GET", "/p?q=2"));
    let (p, _) = ok(&packet(0, &[]));
    assert_eq!(p.head.target(), "/");
}

#[test]
fn the_body_is_framed_by_content_length_only() {
    let vars = [
        ("REQUEST_METHOD", "POST"),
        ("CONTENT_LENGTH", "12"),
        ("HTTP_TRANSFER_ENCODING", "chunked"),
        ("HTTP_CONTENT_LENGTH", "99"),
        ("HTTP_EXPECT", "100-continue"),
    ];
    let (p, _) = ok(&packet(0, &vars));
    assert_eq!(p.head.body, BodyFraming::Length(12));
    assert!(!p.head.expect_continue);
    assert_eq!(p.head.header("transfer-encoding"), None);
}

#[test]
fn https_var_says_tls() {
    for (value, https) in [
        ("on", true),
        ("1", true),
        ("ON", true),
        ("off", false),
        ("", false),
    ] {
        let (p, _) = ok(&packet(0, &[("HTTPS", value)]));
        assert_eq!(p.https, https, "HTTPS={value}");
    }
}

#[test]
fn need_more_bytes_is_a_state() {
    let bytes = packet(0, GET);
    for cut in 0..bytes.len() {
        assert!(
            matches!(parse(&bytes[..cut], &Limits::default()), Ok(None)),
            "cut at {cut}"
        );
    }
}

#[test]
fn refusals_name_the_problem() {
    let truncated_value = {
        let mut b = packet(0, &[("A", "bc")]);
        b.pop();
        b[1] -= 1;
        b
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (packet(1, GET), "unsupported modifier1 1"),
        (vec![5], "unsupported modifier1 5"),
        (truncated_value, "truncated value"),
        (vec![0, 1, 0, 0, 7], "truncated key"),
        (vec![0, 3, 0, 0, 1, 0, b'K'], "truncated value"),
        (
            packet(0, &[("HTTP_X", "a\r\nInjected: 1")]),
            "control byte 0x0d",
        ),
        (packet(0, &[("CONTENT_LENGTH", "-5")]), "Content-Length"),
        (
            packet(0, &[("HTTP_HOST", "a"), ("HTTP_HOST", "b")]),
            "more than one HOST",
        ),
        (packet(0, &[("REQUEST_METHOD", "G T")]), "uwsgi:"),
    ];
    for (bytes, want) in cases {
        let err = parse(&bytes, &Limits::default())
            .expect_err(want)
            .to_string();
        assert!(err.contains(want), "{err:?} should mention {want:?}");
    }
}

#[test]
fn oversized_blocks_are_refused_before_reading_them() {
    let limits = Limits {
        fields: 2,
        field_size: 100,
        ..Limits::default()
    };
    let max = max_vars_block(&limits);
    let header = [0, 0xff, 0xff, 0];
    let err = parse(&header, &limits).unwrap_err();
    assert_eq!(err, UwsgiError::TooLarge { size: 65535, max });
    assert_eq!(err.to_http().status().0, 431);
    // Too many header vars is the HTTP limit's 431, as over HTTP/1.
    let many: Vec<(String, String)> = (0..5).map(|i| (format!("HTTP_X{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let err = parse(&packet(0, &many), &limits).unwrap_err();
    assert_eq!(err.to_http().status().0, 431, "{err}");
}

#[test]
fn too_many_vars_are_refused() {
    let mut block = Vec::new();
    for _ in 0..=MAX_VARS {
        block.extend_from_slice(&[0, 0, 0, 0]);
    }
    let err = split_vars(&block).unwrap_err();
    assert!(err.to_string().contains("more than 1000 vars"));
}
