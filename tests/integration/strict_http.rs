//! Strict HTTP/1.1 request parsing, as data: each row is raw bytes, how they are
//! delivered (whole, in pieces, byte by byte, then EOF), and what must come back —
//! the environ the app saw (tests/apps/echo_environ.py) or the error status. After
//! every refused request the connection is closed and the same worker (same pid)
//! serves a good request on a new connection.

use std::time::Duration;

use crate::client::{request, Conn, Response};
use crate::harness::{serve, Server};
use crate::json::Json;

const ECHO: &str = "echo_environ:application";

/// How the bytes reach the server.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    Whole,
    /// One write per byte.
    Bytewise,
    /// Writes of this many bytes.
    Pieces(usize),
    /// Whole, then a half-close (the client will send nothing more).
    ThenEof,
}

/// One expected response.
enum Want {
    /// 200 with these environ values ("body" is the request body the app read,
    /// and "!KEY" says KEY is absent).
    Env(Vec<(&'static str, String)>),
    Status(u16),
}

struct Case {
    name: String,
    raw: Vec<u8>,
    delivery: Delivery,
    want: Vec<Want>,
    /// The server closes the connection after the responses.
    closes: bool,
}

fn env(pairs: &[(&'static str, &str)]) -> Want {
    Want::Env(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
}

/// A request answered with the environ.
fn good(name: &str, raw: impl Into<Vec<u8>>, pairs: &[(&'static str, &str)]) -> Case {
    Case {
        name: name.to_string(),
        raw: raw.into(),
        delivery: Delivery::Whole,
        want: vec![env(pairs)],
        closes: false,
    }
}

/// A request refused with `status`, then a closed connection.
fn bad(name: &str, raw: impl Into<Vec<u8>>, status: u16) -> Case {
    Case {
        name: name.to_string(),
        raw: raw.into(),
        delivery: Delivery::Whole,
        want: vec![Want::Status(status)],
        closes: true,
    }
}

impl Case {
    fn by(mut self, delivery: Delivery) -> Case {
        self.delivery = delivery;
        self
    }
    fn then(mut self, want: Want) -> Case {
        self.want.push(want);
        self
    }
    fn closes(mut self) -> Case {
        self.closes = true;
        self
    }
}

/// Sends `raw`; a refused request may be answered and closed before all of it is
/// written, so a failed write just ends the sending.
fn deliver(conn: &mut Conn, raw: &[u8], delivery: Delivery) {
    let piece = match delivery {
        Delivery::Whole | Delivery::ThenEof => raw.len().max(1),
        Delivery::Bytewise => 1,
        Delivery::Pieces(n) => n,
    };
    for part in raw.chunks(piece) {
        if conn.try_send(part).is_err() {
            return;
        }
        if piece < raw.len() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    if let Delivery::ThenEof = delivery {
        conn.shutdown_write();
    }
}

/// The next final response (100 Continue is skipped).
fn next_final(conn: &mut Conn, case: &str) -> Response {
    loop {
        let r = conn
            .try_response(false)
            .unwrap_or_else(|e| panic!("{case}: no response: {e}"));
        if r.status != 100 {
            return r;
        }
    }
}

fn check_env(case: &str, r: &Response, pairs: &[(&'static str, String)]) {
    assert_eq!(r.status, 200, "{case}: {r:?}");
    let doc = Json::parse(&r.text());
    let environ = doc.at("environ");
    for (key, want) in pairs {
        if let Some(absent) = key.strip_prefix('!') {
            assert!(environ.get(absent).is_none(), "{case}: {absent} is set");
            continue;
        }
        let got = match *key {
            "body" => doc.str_at("body"),
            _ => environ
                .get(key)
                .and_then(Json::as_str)
                .unwrap_or_else(|| panic!("{case}: no {key} in {environ:?}")),
        };
        assert_eq!(got, want, "{case}: {key}");
    }
}

/// The pid of the worker that answers a plain GET on a new connection.
fn worker_pid(port: u16) -> i64 {
    let r = Conn::open(port).roundtrip(&request("GET", "/", &[("Connection", "close")], b""));
    assert_eq!(r.status, 200, "{r:?}");
    Json::parse(&r.text()).at("pid").as_i64().expect("pid")
}

/// Runs every case against one server started with `flags`.
fn run(flags: &[&str], cases: Vec<Case>) -> usize {
    let server: Server = serve(ECHO, flags);
    let port = server.port();
    let pid = worker_pid(port);
    for case in &cases {
        let name = format!("{} [{:?}] {flags:?}", case.name, case.delivery);
        let mut conn = Conn::open(port);
        deliver(&mut conn, &case.raw, case.delivery);
        for want in &case.want {
            let r = next_final(&mut conn, &name);
            match want {
                Want::Env(pairs) => check_env(&name, &r, pairs),
                Want::Status(status) => {
                    assert_eq!(r.status, *status, "{name}: {r:?}");
                    assert!(r.connection_has("close"), "{name}: {r:?}");
                }
            }
        }
        if case.closes {
            assert!(
                conn.closed_within(Duration::from_secs(20)),
                "{name}: connection left open"
            );
            assert_eq!(worker_pid(port), pid, "{name}: the worker changed");
        }
    }
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    if cases
        .iter()
        .any(|c| c.closes && matches!(c.want.last(), Some(Want::Status(_))))
    {
        // Gunicorn's warning, with the reason (the log pipe may lag the answer).
        let needle = "[WARNING] Invalid request from ip=127.0.0.1: ";
        assert!(
            server.log_shows_since(0, needle, Duration::from_secs(20)),
            "{}",
            server.log()
        );
    }
    cases.len()
}

const CHUNKED_POST: &str = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

fn chunked_post(body: &str) -> String {
    format!("{CHUNKED_POST}{body}")
}

fn default_cases() -> Vec<Case> {
    let mut cases = valid_cases();
    cases.extend(refused_request_lines());
    cases.extend(refused_fields());
    cases.extend(refused_framing());
    cases
}

#[rustfmt::skip]
fn valid_cases() -> Vec<Case> {
    let long_target = format!("/{}", "a".repeat(4094 - "GET / HTTP/1.1".len()));
    let line_4094 = format!("GET {long_target} HTTP/1.1\r\n\r\n");
    let hundred_fields = format!("GET /f HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(100));
    let big_field = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "v".repeat(8180));
    vec![
        good("simple GET", "GET /p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", &[("REQUEST_METHOD", "GET"), ("PATH_INFO", "/p"), ("QUERY_STRING", "q=1"), ("SERVER_PROTOCOL", "HTTP/1.1"), ("HTTP_HOST", "h")]),
        good("HTTP/1.0", "GET /old HTTP/1.0\r\n\r\n", &[("SERVER_PROTOCOL", "HTTP/1.0"), ("PATH_INFO", "/old")]).closes(),
        good("unusual but conventional method", "-BLARGH /foo HTTP/1.1\r\n\r\n", &[("REQUEST_METHOD", "-BLARGH")]),
        good("OPTIONS *", "OPTIONS * HTTP/1.1\r\n\r\n", &[("REQUEST_METHOD", "OPTIONS"), ("RAW_URI", "*")]),
        good("absolute-form", "GET http://example.com/a?b HTTP/1.1\r\n\r\n", &[("PATH_INFO", "/a"), ("QUERY_STRING", "b")]),
        good("absolute-form IPv6", "GET http://[::1]:8080/x HTTP/1.1\r\n\r\n", &[("PATH_INFO", "/x")]),
        good("CONNECT authority-form", "CONNECT example.com:443 HTTP/1.1\r\n\r\n", &[("REQUEST_METHOD", "CONNECT"), ("RAW_URI", "example.com:443")]),
        good("percent-encoded UTF-8 in the target", "GET /%C3%A0%20k HTTP/1.0\r\n\r\n", &[("RAW_URI", "/%C3%A0%20k"), ("PATH_INFO", "/\u{c3}\u{a0} k")]).closes(),
        good("slashes kept", "GET ///keeping_slashes HTTP/1.1\r\n\r\n", &[("PATH_INFO", "///keeping_slashes")]),
        good("quotes in the target", "GET /with_\"quotes\"?foo=\"bar\" HTTP/1.1\r\n\r\n", &[("QUERY_STRING", "foo=\"bar\"")]),
        good("value whitespace trimmed", "GET / HTTP/1.1\r\nName: \t value \t \r\n\r\n", &[("HTTP_NAME", "value")]),
        good("obs-text value", b"GET / HTTP/1.1\r\nX-Value: caf\xc3\xa9\r\n\r\n".to_vec(), &[("HTTP_X_VALUE", "caf\u{c3}\u{a9}")]),
        good("token specials in a name", "GET / HTTP/1.1\r\nX.CUSTOM|PIPE: ok\r\n\r\n", &[("HTTP_X.CUSTOM|PIPE", "ok")]),
        good("no space after the colon", "GET / HTTP/1.1\r\naaaaaaaaaaaaa:++++++++++\r\n\r\n", &[("HTTP_AAAAAAAAAAAAA", "++++++++++")]),
        good("underscore header dropped", "GET / HTTP/1.1\r\nX_Foo: 1\r\nX-Foo: 2\r\n\r\n", &[("HTTP_X_FOO", "2")]),
        good("Content_Length does not frame", "GET /k HTTP/1.0\r\nTransfer_Encoding: tricked\r\nContent-Length: 7\r\nContent_Length: -1E23\r\n\r\ntricked", &[("body", "tricked"), ("CONTENT_LENGTH", "7"), ("!HTTP_TRANSFER_ENCODING", "")]).closes(),
        good("Content-Length in odd case", "PUT / HTTP/1.0\r\nconTENT-Length: 5\r\n\r\nHELLO", &[("body", "HELLO")]).closes(),
        good("one empty line before the request", "\r\nGET /after HTTP/1.1\r\n\r\n", &[("PATH_INFO", "/after")]),
        good("empty line before the request byte by byte", "\r\nGET /after HTTP/1.1\r\n\r\n", &[("PATH_INFO", "/after")]).by(Delivery::Bytewise),
        good("empty line between pipelined requests", "GET /1 HTTP/1.1\r\n\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", &[("PATH_INFO", "/1")]).then(env(&[("PATH_INFO", "/2")])),
        good("conforming chunk extensions", chunked_post("5 ;\ta = \"q\\\"d\" ; b=c;d\r\nhello\r\n0\r\n\r\n"), &[("body", "hello")]),
        good("chunked body", chunked_post("1e\r\nall your base are belong to us\r\n0\r\n\r\n"), &[("body", "all your base are belong to us"), ("CONTENT_LENGTH", "30")]),
        good("chunk extensions", chunked_post("5; some; parameters=stuff\r\nhello\r\n6; blahblah; blah\r\n world\r\n0\r\n\r\n"), &[("body", "hello world")]),
        good("quoted chunk extension", chunked_post("5;ext=\"a;b\"\r\nhello\r\n0\r\n\r\n"), &[("body", "hello")]),
        good("chunked trailers", chunked_post("5\r\nhello\r\n0\r\nVary: *\r\nX-Trailer: t\r\n\r\n"), &[("body", "hello")]),
        good("leading zeros in chunk sizes", chunked_post("0005\r\nhello\r\n000\r\n\r\n"), &[("body", "hello")]),
        good("uppercase hex chunk size", chunked_post("A\r\n0123456789\r\n0\r\n\r\n"), &[("body", "0123456789")]),
        good("identity then chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", &[("body", "hello")]),
        good("gzip then chunked passes through and closes", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", &[("body", "hello"), ("HTTP_TRANSFER_ENCODING", "gzip,chunked")]).closes(),
        good("Expect: 100-continue", "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", &[("body", "hi")]),
        good("Expect ignored on HTTP/1.0", "POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", &[("body", "hi")]).closes(),
        good("Host with a port", "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", &[("SERVER_NAME", "example.com"), ("SERVER_PORT", "8080")]),
        good("request line of exactly 4094 bytes", line_4094, &[("PATH_INFO", long_target.as_str())]),
        good("100 fields", hundred_fields, &[("PATH_INFO", "/f")]),
        good("a field just under 8190 bytes", big_field, &[("REQUEST_METHOD", "GET")]),
        good("pipelined", "GET /first HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\n\r\n", &[("PATH_INFO", "/first")]).then(env(&[("PATH_INFO", "/second")])),
        good("HTTP/1.0 then more: closed after the first", "GET /first HTTP/1.0\r\n\r\nGET /second HTTP/1.1\r\n\r\n", &[("PATH_INFO", "/first")]).closes(),
        good("a request-looking body", "GET /first HTTP/1.0\r\nContent-Length: 24\r\n\r\nGET /second HTTP/1.1\r\n\r\n", &[("body", "GET /second HTTP/1.1\r\n\r\n")]).closes(),
        good("Connection: Close", "GET /first HTTP/1.1\r\nConnection: Close\r\n\r\nGET /second HTTP/1.1\r\n\r\n", &[("PATH_INFO", "/first")]).closes(),
        good("HTTP/1.0 keep-alive pipelined", "GET /first HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /second HTTP/1.1\r\n\r\n", &[("PATH_INFO", "/first")]).then(env(&[("PATH_INFO", "/second")])),
        good("pipelined chunked POST then GET", format!("{}GET /next HTTP/1.1\r\n\r\n", chunked_post("3\r\nabc\r\n0\r\n\r\n")), &[("body", "abc")]).then(env(&[("PATH_INFO", "/next")])),
        good("byte by byte", "GET /b?x=1 HTTP/1.1\r\nHost: h\r\nX-Y: z\r\n\r\n", &[("QUERY_STRING", "x=1"), ("HTTP_X_Y", "z")]).by(Delivery::Bytewise),
        good("chunked byte by byte", chunked_post("5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\n"), &[("body", "hello")]).by(Delivery::Bytewise),
        good("Content-Length body in pieces", "POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world", &[("body", "hello world")]).by(Delivery::Pieces(3)),
        good("100-continue byte by byte", "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", &[("body", "hi")]).by(Delivery::Bytewise),
        good("pipelined in pieces", "GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGET /3 HTTP/1.1\r\n\r\n", &[("PATH_INFO", "/1")]).then(env(&[("body", "x")])).then(env(&[("PATH_INFO", "/3")])).by(Delivery::Pieces(7)),
    ]
}

#[rustfmt::skip]
fn refused_request_lines() -> Vec<Case> {
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(4094));
    vec![
        bad("no target", "GET HTTP/1.1\r\n\r\n", 400),
        bad("LF-separated request line", "GET\n/\nHTTP/1.1\r\n\r\n", 400),
        bad("method not a token", "bla:rgh /foo HTTP/1.1\r\n\r\n", 400),
        bad("lowercase method", "get /foo HTTP/1.1\r\n\r\n", 400),
        bad("method longer than 20", "ABCDEFGHIJKLMNOPQRSTU /foo HTTP/1.1\r\n\r\n", 400),
        bad("NUL in the method", b"GET\0 /foo HTTP/1.1\r\n\r\n".to_vec(), 400),
        bad("non-ASCII method", b"GET\xc3\x9f /g HTTP/1.1\r\n\r\n".to_vec(), 400),
        bad("FTP/1.1", "GET /foo FTP/1.1\r\n\r\n", 400),
        bad("HTTP/111", "GET /foo HTTP/111\r\n\r\n", 400),
        bad("HTTP/2.0", "GET /foo HTTP/2.0\r\n\r\n", 400),
        bad("HTTP/0.9", "GET /foo HTTP/0.9\r\n\r\n", 400),
        bad("HTTP/1.2", "GET /foo HTTP/1.2\r\n\r\n", 400),
        bad("lowercase version", "GET /foo http/1.1\r\n\r\n", 400),
        bad("space inside the target", "GET /a b HTTP/1.1\r\n\r\n", 400),
        bad("two spaces after the method", "GET  /foo HTTP/1.1\r\n\r\n", 400),
        bad("control byte in the target", b"GET /a\x01b HTTP/1.1\r\n\r\n".to_vec(), 400),
        bad("NUL in the target", b"GET /a\0b HTTP/1.1\r\n\r\n".to_vec(), 400),
        bad("raw UTF-8 in the target", b"GET /\xc3\xa0%20k HTTP/1.0\r\n\r\n".to_vec(), 400),
        bad("DEL in the target", b"GET /a\x7fb HTTP/1.1\r\n\r\n".to_vec(), 400),
        bad("latin-1 byte in the target", b"GET /caf\xe9 HTTP/1.1\r\n\r\n".to_vec(), 400),
        bad("* without OPTIONS", "GET * HTTP/1.1\r\n\r\n", 400),
        bad("authority-form without CONNECT", "GET example.com:443 HTTP/1.1\r\n\r\n", 400),
        bad("relative target", "GET foo/bar HTTP/1.1\r\n\r\n", 400),
        bad("broken absolute-form", "PUT s://]ufd/: HTTP/1.1\r\n\r\n", 400),
        bad("two empty lines before the request", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", 400),
        bad("bare LF before the request", "\nGET / HTTP/1.1\r\n\r\n", 400),
        bad("bare LF after the request line", "GET / HTTP/1.1\nHost: a\n\n", 400),
        bad("request line over 4094", long_line, 414),
        bad("bad line byte by byte", "GET /foo HTTP/1.2\r\n\r\n", 400).by(Delivery::Bytewise),
    ]
}

#[rustfmt::skip]
fn refused_fields() -> Vec<Case> {
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(101));
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "v".repeat(8190));
    vec![
        bad("bare LF in a field", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),
        bad("bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
        bad("NUL in a name", b"GET /foo HTTP/1.1\r\nba\0z: bar\r\n\r\n".to_vec(), 400),
        bad("non-ASCII name", b"GET / HTTP/1.1\r\nContent-Length\xc3\x9f: 3\r\n\r\nabc".to_vec(), 400),
        bad("space before the colon", "GET / HTTP/1.1\r\nContent-Length : 3\r\n\r\nxyz", 400),
        bad("no colon", "GET / HTTP/1.1\r\nNoColonHere\r\n\r\n", 400),
        bad("BEL in a value", "GET / HTTP/1.1\r\nX-Value: plain\x07injected\r\n\r\n", 400),
        bad("DEL in a value", "GET / HTTP/1.1\r\nX-Value: plain\x7finjected\r\n\r\n", 400),
        bad("NUL in a value", b"GET / HTTP/1.1\r\nX-Value: a\0b\r\n\r\n".to_vec(), 400),
        bad("obsolete folding", "GET / HTTP/1.1\r\nLong: one\r\n two\r\nHost: localhost\r\n\r\n", 400),
        bad("duplicate Host", "GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.example.com\r\n\r\n", 400),
        bad("duplicate Content-Type", "GET / HTTP/1.1\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n", 400),
        bad("Expect other than 100-continue", "GET / HTTP/1.1\r\nExpect: something\r\n\r\n", 417),
        bad("101 fields", many, 431),
        bad("a field over 8190 bytes", big, 431),
        bad("duplicate Host byte by byte", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400).by(Delivery::Bytewise),
    ]
}

#[rustfmt::skip]
fn refused_framing() -> Vec<Case> {
    vec![
        bad("Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        bad("Content-Length list form", "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
        bad("two Content-Lengths", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 2\r\n\r\nxyz", 400),
        bad("Content-Length +1", "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", 400),
        bad("Content-Length -1", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        bad("Content-Length not a number", "POST / HTTP/1.1\r\nContent-Length: bla-bla-bla\r\n\r\n", 400),
        bad("Content-Length with a space inside", "POST / HTTP/1.1\r\nContent-Length: 3 1\r\n\r\nxyz", 400),
        bad("chunked on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        bad("chunked not last", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        bad("Transfer-Encoding without chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        bad("gzip alone with Content-Length", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\nWorld", 400),
        bad("identity alone", "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 400),
        bad("identity with Content-Length", "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nWorld", 400),
        bad("empty chunk extension", chunked_post("5;\r\nhello\r\n0\r\n\r\n"), 400),
        bad("chunk extension without a name", chunked_post("5;=v\r\nhello\r\n0\r\n\r\n"), 400),
        bad("chunk extension with a space in the name", chunked_post("5;a b\r\nhello\r\n0\r\n\r\n"), 400),
        bad("unterminated quoted chunk extension", chunked_post("5;a=\"open\r\nhello\r\n0\r\n\r\n"), 400),
        bad("Trailer trailer", chunked_post("5\r\nhello\r\n0\r\nTrailer: X\r\n\r\n"), 400),
        bad("Authorization trailer", chunked_post("5\r\nhello\r\n0\r\nAuthorization: Basic eA==\r\n\r\n"), 400),
        bad("TE trailer", chunked_post("5\r\nhello\r\n0\r\nTE: trailers\r\n\r\n"), 400),
        bad("chunked twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
        bad("unknown transfer coding", "POST / HTTP/1.1\r\nTransfer-Encoding: br, chunked\r\n\r\n", 501),
        bad("chunk size with an underscore", chunked_post("5\r\nhello\r\n6_0\r\n world\r\n0\r\n\r\n"), 400),
        bad("space after a chunk size", chunked_post("5\r\nhello\r\n0 \r\n\r\n"), 400),
        bad("negative chunk size", chunked_post("-5\r\nhello\r\n0\r\n\r\n"), 400),
        bad("bare CR in a chunk extension", chunked_post("5;ext=val\rue\r\nhello\r\n0\r\n\r\n"), 400),
        bad("chunk data without its CRLF", chunked_post("5\r\nhelloXX0\r\n\r\n"), 400),
        bad("chunk size overflowing", chunked_post("fffffffffffffffff\r\nx"), 400),
        bad("Content-Length trailer", chunked_post("5\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n"), 400),
        bad("Host trailer", chunked_post("5\r\nhello\r\n0\r\nHost: evil.example.com\r\n\r\n"), 400),
        bad("Transfer-Encoding trailer", chunked_post("5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400),
        bad("truncated chunked body", chunked_post("5\r\nhel"), 400).by(Delivery::ThenEof),
        bad("missing final CRLF", chunked_post("0\r\n"), 400).by(Delivery::ThenEof),
        bad("truncated Content-Length body", "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 400).by(Delivery::ThenEof),
        bad("CL and TE in pieces", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400).by(Delivery::Pieces(5)),
        bad("bad chunk byte by byte", chunked_post("5\r\nhello\r\nzz\r\n"), 400).by(Delivery::Bytewise),
        good("good then bad, pipelined", "GET /ok HTTP/1.1\r\n\r\nGET /bad HTTP/9.9\r\n\r\n", &[("PATH_INFO", "/ok")]).then(Want::Status(400)).closes(),
    ]
}

#[test]
fn strict_parsing_table_with_default_flags() {
    let n = run(&[], default_cases());
    assert!(n >= 100, "{n} cases");
}

#[test]
#[rustfmt::skip]
fn limit_flags_answer_414_431_and_413() {
    let flags = [
        "--limit-request-line", "40",
        "--limit-request-fields", "3",
        "--limit-request-field_size", "60",
        "--limit-request-body", "10",
    ];
    let line_40 = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(40 - 14));
    let line_41 = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(41 - 14));
    let field_60 = format!("GET / HTTP/1.1\r\nX-F: {}\r\n\r\n", "v".repeat(60 - 7));
    let field_61 = format!("GET / HTTP/1.1\r\nX-F: {}\r\n\r\n", "v".repeat(61 - 7));
    let cases = vec![
        good("line at the limit", line_40, &[("REQUEST_METHOD", "GET")]),
        bad("line over the limit", line_41, 414),
        good("fields at the limit", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &[("HTTP_C", "3")]),
        bad("fields over the limit", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431),
        good("field at the limit", field_60, &[("REQUEST_METHOD", "GET")]),
        bad("field over the limit", field_61, 431),
        good("body at the limit", "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", &[("body", "0123456789")]),
        bad("Content-Length over the limit", "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n0123456789a", 413),
        good("chunked body at the limit", chunked_post("6\r\nhello \r\n4\r\nworl\r\n0\r\n\r\n"), &[("body", "hello worl")]),
        bad("chunked body over the limit", chunked_post("6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"), 413),
        bad("chunked body over the limit byte by byte", chunked_post("6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"), 413).by(Delivery::Bytewise),
    ];
    run(&flags, cases);
}

#[test]
#[rustfmt::skip]
fn permit_flags_accept_what_they_name() {
    let folding = vec![
        good("folded value", "GET / HTTP/1.1\r\nLong: one\r\n two\r\nHost: localhost\r\n\r\n", &[("HTTP_LONG", "one two"), ("HTTP_HOST", "localhost")]),
        good("folded value byte by byte", "GET / HTTP/1.1\r\nLong: one\r\n\ttwo\r\n\r\n", &[("HTTP_LONG", "one two")]).by(Delivery::Bytewise),
        bad("a fold with nothing to continue", "GET / HTTP/1.1\r\n two\r\n\r\n", 400),
    ];
    run(&["--permit-obsolete-folding"], folding);
    let lenient = vec![
        good("lowercase method, casefolded", "-blargh /foo HTTP/1.1\r\n\r\n", &[("REQUEST_METHOD", "-BLARGH")]),
        good("HTTP/1.2 served as 1.1", "GET /v HTTP/1.2\r\n\r\n", &[("SERVER_PROTOCOL", "HTTP/1.1")]),
        good("space before the colon stripped", "GET / HTTP/1.1\r\nContent-Length : 3\r\n\r\nxyz", &[("body", "xyz"), ("CONTENT_LENGTH", "3")]),
    ];
    run(
        &[
            "--permit-unconventional-http-method",
            "--casefold-http-method",
            "--permit-unconventional-http-version",
            "--strip-header-spaces",
        ],
        lenient,
    );
}

#[test]
#[rustfmt::skip]
fn header_map_refuses_or_maps_underscores_when_told() {
    let refuse = vec![
        bad("underscore refused", "GET / HTTP/1.1\r\nX_Foo: 1\r\n\r\n", 400),
        bad("Transfer_Encoding refused", "POST / HTTP/1.1\r\nTransfer_Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        good("no underscore, no problem", "GET / HTTP/1.1\r\nX-Foo: 1\r\n\r\n", &[("HTTP_X_FOO", "1")]),
    ];
    run(&["--header-map", "refuse"], refuse);
    let dangerous = vec![good("underscore mapped like a dash", "GET / HTTP/1.1\r\nX_Foo: 1\r\n\r\n", &[("HTTP_X_FOO", "1")])];
    run(&["--header-map", "dangerous"], dangerous);
}

/// Under `refuse`, a trusted peer (the test client is 127.0.0.1, trusted by default)
/// may still send the `--forwarder-headers` names, as Gunicorn allows; others not.
#[test]
#[rustfmt::skip]
fn header_map_refuse_lets_a_trusted_peer_send_forwarder_headers() {
    let trusted = vec![
        good("forwarder header from a trusted peer", "GET /app/x HTTP/1.1\r\nScript_Name: /app\r\n\r\n", &[("SCRIPT_NAME", "/app"), ("PATH_INFO", "/x")]),
        bad("other underscore names still refused", "GET / HTTP/1.1\r\nX_Foo: 1\r\n\r\n", 400),
    ];
    run(&["--header-map", "refuse", "--forwarder-headers", "SCRIPT_NAME"], trusted);
    let untrusted = vec![
        bad("forwarder header from an untrusted peer", "GET /x HTTP/1.1\r\nScript_Name: /app\r\n\r\n", 400),
    ];
    run(&["--header-map", "refuse", "--forwarder-headers", "SCRIPT_NAME", "--forwarded-allow-ips", "10.9.9.9"], untrusted);
}
