//! Micro benchmarks for the per-request hot path: request-head parsing, chunked body
//! decoding and environ building. `cargo bench --bench micro` prints ns per operation
//! (best of several rounds, so a busy neighbour inflates nothing but the worst rounds).

use std::hint::black_box;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use rustcorn::http::body::{BodyBuffer, Decoder};
use rustcorn::http::request::{parse_head, BodyFraming, Limits};
use rustcorn::wsgi::environ::{self, EnvironConstants, Peer};

const BROWSER_GET: &[u8] = b"GET /articles/2026/11/rustcorn?page=2&sort=new HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Referer: https://www.example.com/\r\n\
Cookie: sessionid=8f14e45fceea167a5a36dedd4bea2543; csrftoken=c81e728d9d4c2f636f067f89cc14862c\r\n\
Connection: keep-alive\r\n\r\n";

const WRK_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n";

/// Runs `op` in rounds of `iters` and returns the best ns per call.
fn bench(name: &str, iters: u32, mut op: impl FnMut()) {
    let mut best = Duration::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        best = best.min(start.elapsed());
    }
    println!(
        "{name:<32} {:>8.0} ns/op",
        best.as_nanos() as f64 / f64::from(iters)
    );
}

fn main() {
    let limits = Limits::default();
    bench("parse_head wrk GET", 200_000, || {
        black_box(parse_head(black_box(WRK_GET), &limits).unwrap());
    });
    bench("parse_head browser GET", 100_000, || {
        black_box(parse_head(black_box(BROWSER_GET), &limits).unwrap());
    });
    let chunked: Vec<u8> = {
        let mut v = Vec::new();
        for _ in 0..16 {
            v.extend_from_slice(b"400\r\n");
            v.extend_from_slice(&[b'x'; 1024]);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"0\r\n\r\n");
        v
    };
    bench("chunked decode 16 KiB", 20_000, || {
        let mut d = Decoder::new(BodyFraming::Chunked);
        let mut out = BodyBuffer::default();
        black_box(d.decode(&chunked, &mut out).unwrap());
    });
    rustcorn::wsgi::PythonEnv::default()
        .initialize()
        .expect("python starts");
    Python::attach(|py| {
        let consts = EnvironConstants::new(py, "", false, false).expect("constants");
        let peer = Peer::tcp(
            "127.0.0.1:50000".parse().unwrap(),
            Some("127.0.0.1:8000".parse().unwrap()),
        );
        for (name, raw) in [
            ("environ wrk GET", WRK_GET),
            ("environ browser GET", BROWSER_GET),
        ] {
            let (head, _) = parse_head(raw, &limits).unwrap().unwrap();
            bench(name, 50_000, || {
                let input = py.None().into_bound(py);
                black_box(environ::build(py, &consts, &head, 0, &peer, input, None).unwrap());
            });
        }
    });
}
