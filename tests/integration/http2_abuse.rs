//! HTTP/2 abuse, with hand-made frames (tests/integration/http2/client.py `flood`,
//! built with the `hyperframe` and `hpack` packages): PING, SETTINGS and empty-DATA
//! floods, rapid reset (CVE-2023-44487), a CONTINUATION flood, an HPACK bomb and a
//! thousand streams at once. Each flood ends with GOAWAY(ENHANCE_YOUR_CALM) and the
//! socket closed; the one worker then serves a new connection, and its memory stays
//! bounded. Also what stays within one stream: many large uploads at once, and an
//! app's faults (a 500 on the stream, or a reset when the head was already sent), and
//! the app's response headers through the HTTP/1 rules (tests/apps/response_safety.py).

use crate::harness::{self, Server, ServerBuilder};
use crate::json::Json;
use crate::tls::support::Certs;

/// GOAWAY and RST_STREAM codes (RFC 9113 §7).
const PROTOCOL_ERROR: i64 = 0x1;
const REFUSED_STREAM: i64 = 0x7;
const ENHANCE_YOUR_CALM: i64 = 0xb;

/// One gthread worker over TLS with HTTP/2; idle connections close after 1 s.
fn serve(certs: &Certs) -> Server {
    let mut args: Vec<String> = certs.server_args();
    args.extend(
        [
            "-w",
            "1",
            "-k",
            "gthread",
            "--http-protocols",
            "h2",
            "--keep-alive",
            "1",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServerBuilder::new(&harness::app_args("h2_app:application", &args)).start()
}

fn flood(server: &Server, kind: &str, count: usize) -> Json {
    let python = harness::require_venv().join("bin/python");
    let script = harness::repo_root().join("tests/integration/http2/client.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([
            "flood",
            &server.port().to_string(),
            kind,
            &count.to_string(),
        ])
        .output()
        .expect("client runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Json::parse(&String::from_utf8_lossy(&out.stdout))
}

/// The worker's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The same worker answers a new HTTP/2 connection.
fn assert_still_serving(server: &Server) {
    let worker = server.worker_pids[0];
    let out = std::process::Command::new("/usr/bin/curl")
        .args(["-sk", "--http2", "-w", " %{http_version}"])
        .arg(format!("https://127.0.0.1:{}/pid", server.port()))
        .output()
        .expect("curl runs (scripts/setup-test-env.sh installs it)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{worker} 2"));
}

/// `kind` ends with GOAWAY(ENHANCE_YOUR_CALM), the server closes, and a warning says
/// why; the worker serves on, its memory bounded.
fn assert_cut_off(kind: &str, count: usize, warning: &str) {
    let certs = Certs::new();
    let mut server = serve(&certs);
    let before = rss_kib(server.worker_pids[0]);
    let out = flood(&server, kind, count);
    assert_eq!(
        out.at("goaway").as_i64(),
        Some(ENHANCE_YOUR_CALM),
        "{kind}: {out:?}"
    );
    assert_eq!(out.at("closed").as_bool(), Some(true), "{kind}: {out:?}");
    // The worker logs before it sends the GOAWAY, but the log comes through a pipe
    // that the harness reads on its own thread: wait for it.
    server.wait_for_log(warning, std::time::Duration::from_secs(10));
    assert_still_serving(&server);
    let grew = rss_kib(server.worker_pids[0]).saturating_sub(before);
    assert!(grew < 64 * 1024, "{kind}: the worker grew by {grew} KiB");
}

#[test]
fn a_ping_flood_is_cut_off() {
    assert_cut_off("ping", 5000, "more than 1000 PING, SETTINGS");
}

#[test]
fn a_settings_flood_is_cut_off() {
    assert_cut_off("settings", 5000, "more than 1000 PING, SETTINGS");
}

#[test]
fn an_empty_data_flood_is_cut_off() {
    // h2 has its own limit on empty DATA frames besides the tap's (1000 per 10 s);
    // which trips first depends on how many frames one read brings: either ends the
    // connection the same way.
    assert_cut_off("empty-data", 5000, "ended (ENHANCE_YOUR_CALM)");
}

#[test]
fn rapid_reset_is_cut_off() {
    // h2 counts resets of streams not yet accepted (20), the tap every RST_STREAM
    // (200 per 10 s): whichever comes first.
    assert_cut_off("reset", 10_000, "ended (ENHANCE_YOUR_CALM)");
}

#[test]
fn a_continuation_flood_is_cut_off() {
    assert_cut_off("continuation", 10_000, "ended (ENHANCE_YOUR_CALM)");
}

#[test]
fn an_hpack_bomb_is_refused_and_the_connection_serves_on() {
    let certs = Certs::new();
    let server = serve(&certs);
    let before = rss_kib(server.worker_pids[0]);
    // Streams 3 and 5 each name a 4 KiB table entry 16,000 times (64 MB decoded).
    let out = flood(&server, "hpack-bomb", 1);
    let resets = out.at("resets");
    for stream in ["3", "5"] {
        let code = resets.at(stream).as_i64();
        assert!(
            matches!(code, Some(PROTOCOL_ERROR | REFUSED_STREAM)),
            "{out:?}"
        );
    }
    let answered: Vec<i64> = out
        .at("answered")
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j.as_i64().unwrap())
        .collect();
    assert_eq!(answered, [1, 7], "{out:?}");
    assert_still_serving(&server);
    let grew = rss_kib(server.worker_pids[0]).saturating_sub(before);
    assert!(grew < 64 * 1024, "the worker grew by {grew} KiB");
}

#[test]
fn streams_beyond_the_limit_are_refused_and_the_rest_served() {
    let certs = Certs::new();
    let server = serve(&certs);
    let out = flood(&server, "streams", 1000);
    assert!(
        matches!(out.at("goaway"), Json::Null | Json::Num(_)),
        "{out:?}"
    );
    let answered = out.at("answered").as_array().unwrap().len();
    let refused = out
        .at("resets")
        .members()
        .iter()
        .filter(|(_, code)| code.as_i64() == Some(REFUSED_STREAM))
        .count();
    // --http2-max-concurrent-streams 100: at least that many are served, and every
    // stream is either answered or refused.
    assert!(answered >= 100, "{answered} answered: {out:?}");
    assert_eq!(answered + refused, 1000, "{out:?}");
    assert_still_serving(&server);
}

#[test]
fn many_large_uploads_on_one_connection_are_all_answered() {
    // 30 × 1 MiB at once: past the connection's 4 MiB share of memory, bodies are
    // spooled to temporary files, and every upload is still echoed whole.
    let certs = Certs::new();
    let server = serve(&certs);
    let scratch = crate::os::Scratch::new("h2-uploads");
    let body = scratch.path().join("body.bin");
    std::fs::write(&body, vec![b'u'; 1024 * 1024]).unwrap();
    let url = format!("https://127.0.0.1:{}/echo", server.port());
    let out = std::process::Command::new("/usr/bin/nghttp")
        .args(["-ns", "-m", "30", "-d"])
        .arg(&body)
        .arg(&url)
        .output()
        .expect("nghttp runs (scripts/setup-test-env.sh installs nghttp2-client)");
    let stats = String::from_utf8_lossy(&out.stdout);
    let whole = stats.lines().filter(|l| l.contains(" 200   1M ")).count();
    assert_eq!(whole, 30, "{stats}");
    assert_still_serving(&server);
}

/// A misbehaving app (tests/apps/faults.py) over HTTP/2: a fault before the head is a
/// 500 on its stream (the head alone for HEAD); one after it resets the stream
/// (INTERNAL_ERROR), so a cut body never looks complete; the connection serves on.
#[test]
fn app_faults_end_only_their_stream() {
    let certs = Certs::new();
    let mut args: Vec<String> = certs.server_args();
    args.extend(["-w", "1", "-k", "gthread", "--http-protocols", "h2"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerBuilder::new(&harness::app_args("faults:application", &args)).start();
    let get = |path: &str| {
        format!(
            r#"[[":method","GET"],[":path","{path}"],[":scheme","https"],[":authority","localhost"]]"#
        )
    };
    let head = get("/raise").replace("GET", "HEAD");
    let requests = format!(
        "[{},{head},{},{},{}]",
        get("/raise"),
        get("/gen_fail_after_first"),
        get("/gen_fail_after_first_cl"),
        get("/ok")
    );
    let python = harness::require_venv().join("bin/python");
    let script = harness::repo_root().join("tests/integration/http2/client.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["raw", &server.port().to_string(), &requests])
        .output()
        .unwrap();
    let out = Json::parse(&String::from_utf8_lossy(&out.stdout));
    let answers = out.at("answers").as_array().unwrap();
    assert_eq!(answers[0].at("status").as_i64(), Some(500), "{out:?}");
    assert!(answers[0].str_at("body").contains("Internal Server Error"));
    assert_eq!(answers[1].at("status").as_i64(), Some(500), "{out:?}");
    assert_eq!(answers[1].str_at("body"), "", "{out:?}");
    for cut in &answers[2..4] {
        assert_eq!(cut.at("reset").as_i64(), Some(0x2), "{out:?}");
    }
    assert_eq!(answers[4].str_at("body"), "ok", "{out:?}");
    assert!(matches!(out.at("goaway"), Json::Null), "{out:?}");
}

/// What start_response passes reaches an HTTP/2 client as over HTTP/1: hop-by-hop
/// fields and the app's Server and Date dropped (the server's own sent), names
/// lowercased, a latin-1 value as its byte. Asked several times on one thread, so the
/// header values the thread remembers (`http::h2::recent_value`) come back unchanged.
#[test]
fn response_headers_over_h2_follow_the_http1_rules() {
    let certs = Certs::new();
    let mut args: Vec<String> = certs.server_args();
    let flags = ["-w", "1", "-k", "gthread", "--threads", "1"];
    args.extend(
        flags
            .into_iter()
            .chain(["--http-protocols", "h2"])
            .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server =
        ServerBuilder::new(&harness::app_args("response_safety:application", &args)).start();
    let port = server.port();
    for _ in 0..3 {
        let (version, out) = crate::http2::curl(port, "/hop", &["--http2", "-i"]);
        assert_eq!(version, "2");
        let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
        for kept in [
            "x-kept: yes",
            "content-type: text/plain",
            "content-length: 2",
        ] {
            assert!(text.contains(kept), "{kept} missing:\n{text}");
        }
        assert!(text.contains("\nserver: rustcorn\r\n"), "{text}");
        for dropped in [
            "keep-alive:",
            "transfer-encoding",
            "upgrade:",
            "proxy-",
            "\nte:",
            "trailer",
            "evil/1.0",
            "1970",
            "connection:",
        ] {
            assert!(!text.contains(dropped), "{dropped} sent:\n{text}");
        }
        let (_, out) = crate::http2::curl(port, "/latin1", &["--http2", "-i"]);
        let found = out.windows(12).any(|w| w == b"x-name: caf\xe9");
        assert!(found, "{}", String::from_utf8_lossy(&out));
    }
    let (_, out) = crate::http2::curl(port, "/bad/cr_value", &["--http2", "-i"]);
    assert!(
        out.starts_with(b"HTTP/2 500"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}
