//! Behind a proxy: which peers may set secure-scheme and forwarder headers
//! (`--forwarded-allow-ips`, `$FORWARDED_ALLOW_IPS`, unix sockets), and the PROXY
//! protocol v1/v2 (`--proxy-protocol`, `--proxy-allow-from`). An untrusted peer is a
//! client connecting from 127.0.0.2 to a server on 127.0.0.1, which trusts only
//! 127.0.0.1 and ::1 by default.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

use crate::client::{parse_responses, request, Conn, Response};
use crate::harness::{app_args, Scratch, Server, ServerBuilder, IO_TIMEOUT};
use crate::json::Json;
use crate::wsgi_env::ECHO;

const TRUSTED: [u8; 4] = [127, 0, 0, 1];
const UNTRUSTED: [u8; 4] = [127, 0, 0, 2];

/// A connection to 127.0.0.1:`port` from the source address `from`.
fn open_from(from: [u8; 4], port: u16) -> Conn {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    use std::os::fd::AsRawFd;
    let source = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::from(from), 0));
    bind(fd.as_raw_fd(), &source).expect("bind the client's source address");
    let server = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    connect(fd.as_raw_fd(), &server).expect("connect");
    Conn::from_stream(TcpStream::from(fd)).expect("client socket options")
}

/// One request from `from`; the echoed environ, or the error response.
fn ask(from: [u8; 4], port: u16, target: &str, headers: &[(&str, &str)]) -> Result<Json, Response> {
    let mut conn = open_from(from, port);
    let r = conn.roundtrip(&request("GET", target, headers, b""));
    match r.status {
        200 => Ok(Json::parse(&r.text()).at("environ").clone()),
        _ => Err(r),
    }
}

fn echo_server(extra: &[&str]) -> Server {
    ServerBuilder::new(&app_args(ECHO, extra)).start()
}

/// Each refused request is logged once (`Invalid request from ip=…`), not once by the
/// check that refused it and again by the answer. Call after a later request was
/// served by the same worker, so every refusal's lines are written; they may still be
/// on their way through the log pipe, so this waits for all of them first.
fn assert_refusals_logged_once(server: &Server, refusals: usize) {
    const REFUSAL: &str = "Invalid request from ip=";
    server.stderr().wait(0, IO_TIMEOUT, |log| {
        log.matches(REFUSAL).count() >= refusals
    });
    let log = server.log();
    assert_eq!(log.matches(REFUSAL).count(), refusals, "log:\n{log}");
}

#[test]
fn secure_scheme_headers_count_only_from_trusted_peers() {
    const SECURE_CONF: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/configs/secure_scheme.py"
    );
    const PROTO: &[(&str, &str)] = &[("X-Forwarded-Proto", "https")];
    /// (flags, client source, headers, wsgi.url_scheme)
    type Case<'a> = (&'a [&'a str], [u8; 4], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&[], TRUSTED, PROTO, "https"),
        (&[], TRUSTED, &[], "http"),
        (&[], TRUSTED, &[("X-Forwarded-Proto", "http")], "http"),
        (&[], TRUSTED, &[("X-Forwarded-Ssl", "on")], "https"),
        (&[], TRUSTED, &[("X-Forwarded-Protocol", "ssl")], "https"),
        (&[], TRUSTED, &[("X-Forwarded-Proto", "HTTPS")], "http"),
        (&[], UNTRUSTED, PROTO, "http"),
        (&["--forwarded-allow-ips=*"], UNTRUSTED, PROTO, "https"),
        (
            &["--forwarded-allow-ips", "127.0.0.0/24"],
            UNTRUSTED,
            PROTO,
            "https",
        ),
        (
            &["--forwarded-allow-ips", "127.0.0.2,10.0.0.1"],
            UNTRUSTED,
            PROTO,
            "https",
        ),
        (
            &["--forwarded-allow-ips", "10.0.0.0/8"],
            TRUSTED,
            PROTO,
            "http",
        ),
        // From the config file: the table is replaced, names match in any case.
        (
            &["-c", SECURE_CONF],
            TRUSTED,
            &[("X-Scheme", "yes")],
            "https",
        ),
        (&["-c", SECURE_CONF], TRUSTED, PROTO, "http"),
        (
            &["-c", SECURE_CONF],
            UNTRUSTED,
            &[("X-Scheme", "yes")],
            "http",
        ),
    ];
    let mut servers: Vec<(&[&str], Server)> = Vec::new();
    for (flags, from, headers, want) in cases {
        if !servers.iter().any(|(f, _)| f == flags) {
            servers.push((flags, echo_server(flags)));
        }
        let server = &servers.iter().find(|(f, _)| f == flags).unwrap().1;
        let env = ask(*from, server.port(), "/", headers)
            .unwrap_or_else(|r| panic!("{flags:?} {from:?} {headers:?}: {r:?}"));
        assert_eq!(
            env.str_at("wsgi.url_scheme"),
            *want,
            "{flags:?} from {from:?} with {headers:?}"
        );
    }
}

#[test]
fn contradictory_secure_headers_are_refused_only_from_trusted_peers() {
    let mut server = echo_server(&[]);
    let port = server.port();
    let conflicts: &[&[(&str, &str)]] = &[
        &[("X-Forwarded-Ssl", "on"), ("X-Forwarded-Proto", "http")],
        &[
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Proto", "http"),
        ],
    ];
    for headers in conflicts {
        let r = ask(TRUSTED, port, "/", headers).expect_err("contradiction refused");
        assert_eq!(r.status, 400, "{headers:?}");
        assert!(r.text().contains("Contradictory scheme headers"), "{r:?}");
        let env = ask(UNTRUSTED, port, "/", headers).expect("ignored from untrusted");
        assert_eq!(env.str_at("wsgi.url_scheme"), "http");
    }
    server.wait_for_log(
        "Invalid request from ip=127.0.0.1: Bad Request: Contradictory scheme headers",
        IO_TIMEOUT,
    );
    // The worker goes on serving.
    let env = ask(TRUSTED, port, "/", &[("X-Forwarded-Proto", "https")]).unwrap();
    assert_eq!(env.str_at("wsgi.url_scheme"), "https");
    assert_refusals_logged_once(&server, conflicts.len());
}

#[test]
fn forwarder_headers_pass_only_from_trusted_peers() {
    let server = echo_server(&["--forwarder-headers", "SCRIPT_NAME,PATH_INFO,REMOTE_USER"]);
    let port = server.port();
    let headers = &[
        ("SCRIPT_NAME", "/app"),
        ("REMOTE_USER", "alice"),
        ("X_Forwarded_For", "6.6.6.6"),
    ];
    let env = ask(TRUSTED, port, "/app/page", headers).unwrap();
    let seen = |env: &Json, key: &str| env.get(key).and_then(Json::as_str).map(str::to_string);
    assert_eq!(
        (env.str_at("SCRIPT_NAME"), env.str_at("PATH_INFO")),
        ("/app", "/page")
    );
    assert_eq!(seen(&env, "HTTP_SCRIPT_NAME").as_deref(), Some("/app"));
    assert_eq!(seen(&env, "HTTP_REMOTE_USER").as_deref(), Some("alice"));
    assert_eq!(
        seen(&env, "HTTP_X_FORWARDED_FOR"),
        None,
        "not listed: dropped"
    );

    let env = ask(UNTRUSTED, port, "/app/page", headers).unwrap();
    assert_eq!(
        (env.str_at("SCRIPT_NAME"), env.str_at("PATH_INFO")),
        ("", "/app/page")
    );
    for key in [
        "HTTP_SCRIPT_NAME",
        "HTTP_REMOTE_USER",
        "HTTP_X_FORWARDED_FOR",
    ] {
        assert_eq!(seen(&env, key), None, "{key} from an untrusted peer");
    }

    // A mount point the path is not under is a configuration problem (500), as in
    // Gunicorn; the worker keeps serving.
    let r = ask(TRUSTED, port, "/other", &[("SCRIPT_NAME", "/app")]).unwrap_err();
    assert_eq!(r.status, 500);
    let env = ask(TRUSTED, port, "/other", &[]).unwrap();
    assert_eq!(env.str_at("PATH_INFO"), "/other");
}

#[test]
fn default_forwarder_headers_drop_other_underscore_names() {
    let server = echo_server(&[]);
    let env = ask(
        TRUSTED,
        server.port(),
        "/p/x",
        &[("SCRIPT_NAME", "/p/"), ("REMOTE_USER", "mallory")],
    )
    .unwrap();
    assert_eq!(
        (env.str_at("SCRIPT_NAME"), env.str_at("PATH_INFO")),
        ("/p", "/x")
    );
    assert_eq!(env.get("HTTP_REMOTE_USER"), None);
}

#[test]
fn forwarded_allow_ips_defaults_from_the_environment() {
    let server = ServerBuilder::new(&app_args(ECHO, &[]))
        .env("FORWARDED_ALLOW_IPS", "127.0.0.2")
        .start();
    let proto = &[("X-Forwarded-Proto", "https")];
    let from_env = ask(UNTRUSTED, server.port(), "/", proto).unwrap();
    let not_listed = ask(TRUSTED, server.port(), "/", proto).unwrap();
    assert_eq!(
        (
            from_env.str_at("wsgi.url_scheme"),
            not_listed.str_at("wsgi.url_scheme")
        ),
        ("https", "http")
    );
}

/// Writes `bytes` over a unix socket and reads until the server closes.
fn unix_exchange(path: &Path, bytes: &[u8]) -> Vec<Response> {
    let mut stream = UnixStream::connect(path).expect("connect unix socket");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("read until close");
    parse_responses(&out, &[]).expect("parse")
}

#[test]
fn unix_socket_peers_are_trusted_and_may_send_proxy_headers() {
    let scratch = Scratch::new("pxunix");
    let sock = scratch.path().join("rc.sock");
    let bind = format!("unix:{}", sock.display());
    let _server = Server::start(&[
        "-b",
        &bind,
        "--forwarded-allow-ips",
        "10.9.9.9",
        "--proxy-allow-from",
        "10.9.9.9",
        "--proxy-protocol",
        "--chdir",
        "tests/apps",
        ECHO,
    ]);
    let mut bytes = b"PROXY TCP4 192.0.2.44 10.0.0.1 5555 80\r\n".to_vec();
    bytes.extend(request(
        "GET",
        "/",
        &[("X-Forwarded-Proto", "https"), ("Connection", "close")],
        b"",
    ));
    let r = unix_exchange(&sock, &bytes).remove(0);
    assert_eq!(r.status, 200, "{r:?}");
    let env = Json::parse(&r.text()).at("environ").clone();
    assert_eq!(
        (
            env.str_at("wsgi.url_scheme"),
            env.str_at("REMOTE_ADDR"),
            env.str_at("REMOTE_PORT")
        ),
        ("https", "192.0.2.44", "5555")
    );
}

fn v2_header(client: ([u8; 4], u16), proxy: ([u8; 4], u16)) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    out.extend_from_slice(&client.0);
    out.extend_from_slice(&proxy.0);
    out.extend_from_slice(&client.1.to_be_bytes());
    out.extend_from_slice(&proxy.1.to_be_bytes());
    out
}

fn v2_header_ipv6() -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24".to_vec();
    let client: std::net::Ipv6Addr = "2001:db8::7".parse().unwrap();
    out.extend_from_slice(&client.octets());
    out.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    out.extend_from_slice(&40000u16.to_be_bytes());
    out.extend_from_slice(&8443u16.to_be_bytes());
    out
}

/// The environ keys the PROXY header sets.
fn proxy_keys(env: &Json) -> [String; 5] {
    [
        "PROXY_PROTOCOL",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "PROXY_ADDR",
        "PROXY_PORT",
    ]
    .map(|k| env.get(k).and_then(Json::as_str).unwrap_or("-").to_string())
}

#[test]
fn proxy_headers_set_the_client_address_for_every_keep_alive_request() {
    let server = echo_server(&["--proxy-protocol", "--access-logfile", "-"]);
    let port = server.port();
    let cases: Vec<(&str, Vec<u8>, [&str; 5])> = vec![
        (
            "v1 TCP4",
            b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n".to_vec(),
            ["TCP4", "192.0.2.1", "56324", "198.51.100.7", "443"],
        ),
        (
            "v1 TCP6",
            b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 80\r\n".to_vec(),
            ["TCP6", "2001:db8::1", "1000", "2001:db8::2", "80"],
        ),
        (
            "v2 IPv4",
            v2_header(([203, 0, 113, 5], 61000), ([10, 1, 2, 3], 8000)),
            ["TCP4", "203.0.113.5", "61000", "10.1.2.3", "8000"],
        ),
        (
            "v2 IPv6",
            v2_header_ipv6(),
            ["TCP6", "2001:db8::7", "40000", "::1", "8443"],
        ),
        (
            "v2 LOCAL (health check): the socket's address stands",
            b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00".to_vec(),
            ["LOCAL", "127.0.0.1", "*", "-", "-"],
        ),
        (
            "v1 UNKNOWN: the socket's address stands",
            b"PROXY UNKNOWN\r\n".to_vec(),
            ["UNKNOWN", "127.0.0.1", "*", "-", "-"],
        ),
        (
            "no header: plain HTTP still served",
            Vec::new(),
            ["-", "127.0.0.1", "*", "-", "-"],
        ),
    ];
    for (name, header, want) in &cases {
        let mut conn = Conn::open(port);
        let local_port = conn.local_addr().port().to_string();
        let want = want.map(|w| if w == "*" { local_port.as_str() } else { w });
        // The header in two writes (split across reads when the server is quick),
        // then three requests on the same connection.
        let cut = header.len() / 2;
        conn.send(&header[..cut]);
        std::thread::sleep(Duration::from_millis(20));
        let mut rest = header[cut..].to_vec();
        rest.extend(request("GET", "/first", &[], b""));
        conn.send(&rest);
        for (i, target) in ["/first", "/second", "/third"].iter().enumerate() {
            if i > 0 {
                conn.send(&request("GET", target, &[], b""));
            }
            let r = conn.response();
            assert_eq!(r.status, 200, "{name} {target}: {r:?}");
            let env = Json::parse(&r.text()).at("environ").clone();
            assert_eq!(env.str_at("PATH_INFO"), *target, "{name}");
            assert_eq!(proxy_keys(&env), want.map(String::from), "{name} {target}");
        }
    }
    // The access log names the client the proxy announced.
    assert!(
        server
            .stdout()
            .wait(0, IO_TIMEOUT, |out| out.contains("192.0.2.1 - - [")
                && out.contains("203.0.113.5 - - [")),
        "access log:\n{}",
        server.stdout().text()
    );
}

#[test]
fn malformed_proxy_headers_answer_400_and_the_worker_keeps_serving() {
    let mut server = echo_server(&["--proxy-protocol=auto"]);
    let port = server.port();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "v1 missing port",
            b"PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n".to_vec(),
        ),
        (
            "v1 bad address",
            b"PROXY TCP4 192.0.2.300 198.51.100.7 1 2\r\n".to_vec(),
        ),
        (
            "v1 mixed families",
            b"PROXY TCP4 ::1 198.51.100.7 1 2\r\n".to_vec(),
        ),
        (
            "v1 port too big",
            b"PROXY TCP4 192.0.2.1 198.51.100.7 1 65536\r\n".to_vec(),
        ),
        (
            "v1 UDP",
            b"PROXY UDP4 192.0.2.1 198.51.100.7 1 2\r\n".to_vec(),
        ),
        (
            "v1 no CRLF in 107 bytes",
            [&b"PROXY TCP4 "[..], &[b'1'; 120]].concat(),
        ),
        (
            "v2 version 3",
            b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c"
                .iter()
                .chain(&[0u8; 12])
                .copied()
                .collect(),
        ),
        (
            "v2 UDP",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x12\x00\x0c"
                .iter()
                .chain(&[0u8; 12])
                .copied()
                .collect(),
        ),
        (
            "v2 short IPv4 block",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x04\0\0\0\0".to_vec(),
        ),
    ];
    for (name, header) in &cases {
        let mut conn = Conn::open(port);
        let mut bytes = header.clone();
        bytes.extend(request("GET", "/", &[], b""));
        conn.send(&bytes);
        let r = conn.response();
        assert_eq!(r.status, 400, "{name}: {r:?}");
        assert!(r.text().contains("Invalid PROXY"), "{name}: {}", r.text());
        assert!(
            conn.closed_within(IO_TIMEOUT),
            "{name}: connection left open"
        );
    }
    server.wait_for_log(
        "Invalid request from ip=127.0.0.1: Invalid PROXY line",
        IO_TIMEOUT,
    );
    server.wait_for_log(
        "Invalid request from ip=127.0.0.1: Invalid PROXY header",
        IO_TIMEOUT,
    );
    let env = ask(TRUSTED, port, "/after", &[]).expect("still serving");
    assert_eq!(env.str_at("PATH_INFO"), "/after");
    assert_refusals_logged_once(&server, cases.len());
}

#[test]
fn proxy_headers_from_peers_not_allowed_answer_403() {
    let mut server = echo_server(&["--proxy-protocol", "v1"]);
    let port = server.port();
    let mut conn = open_from(UNTRUSTED, port);
    let mut bytes = b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n".to_vec();
    bytes.extend(request("GET", "/", &[], b""));
    conn.send(&bytes);
    let r = conn.response();
    assert_eq!((r.status, r.reason.as_str()), (403, "Forbidden"), "{r:?}");
    assert!(conn.closed_within(IO_TIMEOUT));
    server.wait_for_log(
        "Invalid request from ip=127.0.0.2: Proxy request from '127.0.0.2' not allowed",
        IO_TIMEOUT,
    );
    // The same peer without a PROXY header is an ordinary client, as in Gunicorn.
    let env = ask(UNTRUSTED, port, "/", &[]).unwrap();
    assert_eq!(env.str_at("REMOTE_ADDR"), "127.0.0.2");
    assert_refusals_logged_once(&server, 1);

    let open = echo_server(&["--proxy-protocol", "v1", "--proxy-allow-from", "*"]);
    let mut conn = open_from(UNTRUSTED, open.port());
    conn.send(&bytes);
    let r = conn.response();
    assert_eq!(r.status, 200, "{r:?}");
    let env = Json::parse(&r.text()).at("environ").clone();
    assert_eq!(env.str_at("REMOTE_ADDR"), "192.0.2.1");
}

#[test]
fn proxy_protocol_versions_are_accepted_only_as_configured() {
    let v1 = b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n".to_vec();
    let v2 = v2_header(([192, 0, 2, 1], 56324), ([198, 51, 100, 7], 443));
    // (flags, header, status): a header of another version is not recognised and
    // fails as an HTTP request.
    let cases: &[(&[&str], &[u8], u16)] = &[
        (&["--proxy-protocol", "v1"], &v1, 200),
        (&["--proxy-protocol", "v1"], &v2, 400),
        (&["--proxy-protocol", "v2"], &v2, 200),
        (&["--proxy-protocol", "v2"], &v1, 400),
        (&[], &v1, 400),
    ];
    for (flags, header, status) in cases {
        let server = echo_server(flags);
        let mut conn = Conn::open(server.port());
        let mut bytes = header.to_vec();
        bytes.extend(request("GET", "/", &[], b""));
        conn.send(&bytes);
        let r = conn.response();
        assert_eq!(
            r.status,
            *status,
            "{flags:?} {:?}",
            String::from_utf8_lossy(header)
        );
        if r.status == 200 {
            let env = Json::parse(&r.text()).at("environ").clone();
            assert_eq!(env.str_at("REMOTE_ADDR"), "192.0.2.1");
        }
    }
}
