//! `wsgi.input` read every way an app reads it (read(), read(n), readline,
//! readline(n), readlines, iteration), over every request-body framing.
//! App: tests/apps/input_app.py, which echoes each call's result.

use crate::client::{chunked, request, Conn};
use crate::harness::serve;
use crate::json::Json;

const BODY: &[u8] =
    b"first line\nsecond, longer line\n\n\xe9\xff binary \x00 line\nlast line without newline";

/// What each read call returns, per file-object semantics.
fn expected_chunks(mode: &str, n: usize, body: &[u8]) -> Vec<Vec<u8>> {
    let lines = || body.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec);
    match mode {
        "read" | "read_none" | "read_minus1" => vec![body.to_vec()],
        "read_n" => body.chunks(n).map(<[u8]>::to_vec).collect(),
        "readline" | "readlines" | "iter" => lines().collect(),
        "readline_n" => lines()
            .flat_map(|line| line.chunks(n).map(<[u8]>::to_vec).collect::<Vec<_>>())
            .collect(),
        _ => unreachable!("{mode}"),
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// The request framings: Content-Length, chunked in small pieces, chunked
/// with chunk extensions and a trailer.
fn framings(target: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut with_ext = Vec::new();
    for piece in BODY.chunks(10) {
        with_ext.extend(format!("{:X};ext=\"v\"\r\n", piece.len()).bytes());
        with_ext.extend(piece);
        with_ext.extend(b"\r\n");
    }
    with_ext.extend(b"0\r\nX-Trailer: t\r\n\r\n");
    let te = ("Transfer-Encoding", "chunked");
    vec![
        ("Content-Length", request("POST", target, &[], BODY)),
        ("chunked", request("POST", target, &[te], &chunked(BODY, 3))),
        (
            "chunked+extensions+trailer",
            request("POST", target, &[te], &with_ext),
        ),
    ]
}

#[test]
fn wsgi_input_reads_match_file_semantics_for_every_framing() {
    let server = serve("input_app:application", &[]);
    let modes = [
        ("read", 0),
        ("read_none", 0),
        ("read_minus1", 0),
        ("read_n", 1),
        ("read_n", 4),
        ("read_n", 4096),
        ("readline", 0),
        ("readline_n", 4),
        ("readlines", 0),
        ("iter", 0),
    ];
    let mut failures = Vec::new();
    for (mode, n) in modes {
        let target = format!("/{mode}?n={n}");
        let want: Vec<String> = expected_chunks(mode, n, BODY)
            .iter()
            .map(|c| latin1(c))
            .collect();
        for (framing, raw) in framings(&target) {
            // A connection per request: keep-alive is tested elsewhere.
            let r = Conn::open(server.port()).roundtrip(&raw);
            if r.status != 200 {
                failures.push(format!(
                    "{target} {framing}: status {} {}",
                    r.status,
                    r.text()
                ));
                continue;
            }
            let doc = Json::parse(&r.text());
            let got: Vec<&str> = doc
                .at("chunks")
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Json::as_str)
                .collect();
            if doc.str_at("data") != latin1(BODY) || got != want {
                failures.push(format!("{target} {framing}: got {got:?}, want {want:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "wsgi.input mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn wsgi_input_is_empty_without_a_body() {
    let server = serve("input_app:application", &[]);
    for target in ["/read", "/read_n?n=4", "/readline", "/readlines", "/iter"] {
        for method in ["GET", "POST"] {
            let headers: &[(&str, &str)] = if method == "POST" {
                &[("Content-Length", "0")]
            } else {
                &[]
            };
            let r = Conn::open(server.port()).roundtrip(&request(method, target, headers, b""));
            assert_eq!(r.status, 200, "{method} {target}");
            assert_eq!(
                Json::parse(&r.text()).str_at("data"),
                "",
                "{method} {target}"
            );
        }
    }
}
