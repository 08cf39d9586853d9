//! `--protocol uwsgi`: the real nginx with `uwsgi_pass` and Debian's uwsgi_params
//! (examples/nginx-uwsgi.conf) in front, over TCP and a unix socket; and raw packets,
//! malformed ones refused with an error-log line while the worker keeps serving.

use crate::client::{request, Conn};
use crate::harness::{app_args, Scratch, Server, ServerBuilder, IO_TIMEOUT};
use crate::json::Json;
use crate::nginx::{concurrent_clients, environ_of, get_over_tls, start_nginx, Nginx};
use crate::wsgi_env::ECHO;

/// A uwsgi packet (modifier1 0) with these vars.
fn packet(vars: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (k, v) in vars {
        block.extend_from_slice(&(k.len() as u16).to_le_bytes());
        block.extend_from_slice(k.as_bytes());
        block.extend_from_slice(&(v.len() as u16).to_le_bytes());
        block.extend_from_slice(v.as_bytes());
    }
    let mut out = vec![0];
    out.extend_from_slice(&(block.len() as u16).to_le_bytes());
    out.push(0);
    out.extend_from_slice(&block);
    out
}

/// What nginx with uwsgi_params must get through: query, form, a 1 MiB body, headers,
/// the client's address, HTTPS from TLS, many clients at once.
fn check_uwsgi_deployment(nginx: &Nginx, server: &Server) {
    let mut conn = Conn::open(nginx.http);
    let headers = [("Host", "app.example"), ("X-Custom-Thing", "yes")];
    let env = environ_of(&conn.roundtrip(&request("GET", "/app/x%20y?q=1&r=2", &headers, b"")));
    let keys = [
        "wsgi.url_scheme",
        "REQUEST_METHOD",
        "PATH_INFO",
        "RAW_URI",
        "QUERY_STRING",
        "SERVER_PROTOCOL",
        "REMOTE_ADDR",
        "HTTP_HOST",
        "HTTP_X_CUSTOM_THING",
    ];
    let got: Vec<&str> = keys.iter().map(|k| env.str_at(k)).collect();
    let want = [
        "http",
        "GET",
        "/app/x y",
        "/app/x%20y?q=1&r=2",
        "q=1&r=2",
        "HTTP/1.1",
        "127.0.0.1",
        "app.example",
        "yes",
    ];
    assert_eq!(got, want, "{keys:?}");

    let form = b"name=rust+corn&n=1";
    let form_headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = Conn::open(nginx.http).roundtrip(&request("POST", "/form", &form_headers, form));
    let doc = Json::parse(&r.text());
    assert_eq!(doc.str_at("body"), "name=rust+corn&n=1");
    let env = doc.at("environ");
    assert_eq!(env.str_at("CONTENT_TYPE"), form_headers[0].1);
    assert_eq!(env.str_at("CONTENT_LENGTH"), "18");

    let big: Vec<u8> = (0..1 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    let r = Conn::open(nginx.http).roundtrip(&request("PUT", "/big", &[], &big));
    assert_eq!(r.status, 200);
    assert!(
        Json::parse(&r.text()).str_at("body").as_bytes() == big,
        "1 MiB echoed"
    );

    // Only nginx's HTTPS var decides the scheme, not a header the client sent.
    let spoofed = [("X-Forwarded-Proto", "https")];
    let env = environ_of(&Conn::open(nginx.http).roundtrip(&request("GET", "/", &spoofed, b"")));
    assert_eq!(env.str_at("wsgi.url_scheme"), "http");

    let env = environ_of(&get_over_tls(nginx.https, "/secure?s=1"));
    assert_eq!(
        (env.str_at("wsgi.url_scheme"), env.str_at("PATH_INFO")),
        ("https", "/secure")
    );

    let failures = concurrent_clients(nginx.http, "127.0.0.1");
    assert!(
        failures.is_empty(),
        "{} wrong: {failures:#?}",
        failures.len()
    );
    assert!(
        server.stdout().wait(0, IO_TIMEOUT, |out| out
            .contains("\"PUT /big HTTP/1.1\" 200")),
        "access log:\n{}",
        server.stdout().text()
    );
}

#[test]
fn nginx_uwsgi_pass_over_tcp() {
    let scratch = Scratch::new("nginx-uwsgi-tcp");
    let server = ServerBuilder::new(&app_args(
        ECHO,
        &[
            "--protocol",
            "uwsgi",
            "--workers=2",
            "--access-logfile",
            "-",
        ],
    ))
    .start();
    let upstream = format!("server 127.0.0.1:{}", server.port());
    let nginx = start_nginx(
        "nginx-uwsgi.conf",
        ("server 127.0.0.1:8000", upstream),
        scratch.path(),
    );
    check_uwsgi_deployment(&nginx, &server);
}

#[test]
fn nginx_uwsgi_pass_over_a_unix_socket_with_gthread() {
    let scratch = Scratch::new("nginx-uwsgi-unix");
    let sock = scratch.path().join("uwsgi.sock");
    let bind = format!("unix:{}", sock.display());
    // A unix-socket peer may send packets whatever --uwsgi-allow-from says.
    let server = Server::start(&[
        "--protocol=uwsgi",
        "--uwsgi-allow-from",
        "10.9.9.9",
        "-b",
        &bind,
        "--threads=4",
        "--access-logfile",
        "-",
        "--chdir",
        "tests/apps",
        ECHO,
    ]);
    let nginx = start_nginx(
        "nginx-uwsgi.conf",
        (
            "server 127.0.0.1:8000",
            format!("server unix:{}", sock.display()),
        ),
        scratch.path(),
    );
    check_uwsgi_deployment(&nginx, &server);
}

/// A streamed response (no Content-Length) reaches nginx's client whole.
#[test]
fn nginx_uwsgi_pass_streams_a_response_without_length() {
    let scratch = Scratch::new("nginx-uwsgi-stream");
    let server =
        ServerBuilder::new(&app_args("stream:application", &["--protocol", "uwsgi"])).start();
    let upstream = format!("server 127.0.0.1:{}", server.port());
    let nginx = start_nginx(
        "nginx-uwsgi.conf",
        ("server 127.0.0.1:8000", upstream),
        scratch.path(),
    );
    let r = Conn::open(nginx.http).roundtrip(&request("GET", "/?n=3", &[], b""));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "chunk 0\nchunk 1\nchunk 2\n")
    );
}

/// Each bad packet: its error-log line, a closed connection, and the same worker
/// serving the next client.
#[test]
fn malformed_packets_are_refused_and_the_worker_keeps_serving() {
    let mut server = ServerBuilder::new(&app_args(
        ECHO,
        &[
            "--protocol",
            "uwsgi",
            "--limit-request-fields",
            "4",
            "--limit-request-field_size",
            "100",
        ],
    ))
    .start();
    let good = packet(&[("REQUEST_METHOD", "GET"), ("PATH_INFO", "/ok")]);
    let mut bad_modifier = good.clone();
    bad_modifier[0] = 7;
    let mut truncated = packet(&[("PATH_INFO", "/truncated")]);
    truncated.pop();
    truncated[1] -= 1;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (bad_modifier, "uwsgi: unsupported modifier1 7"),
        (truncated, "uwsgi: malformed vars block: truncated value"),
        (
            vec![0, 0xff, 0xff, 0],
            "uwsgi: vars block of 65535 bytes exceeds the limit",
        ),
    ];
    let pid = environ_pid(&mut Conn::open(server.port()), &good);
    for (bytes, line) in cases {
        let mark = server.log_mark();
        let mut conn = Conn::open(server.port());
        conn.send(&bytes);
        let (_, end) = conn.read_until_closed();
        assert!(end.is_ok(), "{line}: connection closed cleanly");
        server.wait_for_log_since(mark, line, IO_TIMEOUT);
        assert_eq!(environ_pid(&mut Conn::open(server.port()), &good), pid);
    }
}

#[test]
fn a_peer_outside_uwsgi_allow_from_is_refused() {
    let mut server = ServerBuilder::new(&app_args(
        ECHO,
        &["--protocol", "uwsgi", "--uwsgi-allow-from", "10.0.0.0/8"],
    ))
    .start();
    let mut conn = Conn::open(server.port());
    conn.send(&packet(&[("PATH_INFO", "/")]));
    let r = conn.response();
    assert_eq!(r.status, 403);
    server.wait_for_log(
        "uwsgi: request from '127.0.0.1' not allowed (--uwsgi-allow-from)",
        IO_TIMEOUT,
    );
}

/// Sends a packet, reads the echo app's answer (keep-alive, as Gunicorn keeps it).
fn environ_pid(conn: &mut Conn, packet: &[u8]) -> i64 {
    conn.send(packet);
    let r = conn.response();
    assert_eq!(r.status, 200, "{r:?}");
    let doc = Json::parse(&r.text());
    assert_eq!(doc.at("environ").str_at("PATH_INFO"), "/ok");
    doc.at("pid").as_i64().expect("pid")
}

/// The README's uwsgi_pass section quotes examples/nginx-uwsgi.conf's own lines.
#[test]
fn readme_uwsgi_section_quotes_the_example() {
    let root = crate::harness::repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let section = readme
        .split("### nginx with uwsgi_pass")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a '### nginx with uwsgi_pass' section");
    let example = std::fs::read_to_string(root.join("examples/nginx-uwsgi.conf")).unwrap();
    let lines: Vec<&str> = example.lines().map(str::trim).collect();
    let quoted: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("    ") && !l.trim().is_empty())
        .map(str::trim)
        .collect();
    assert!(quoted.len() >= 5, "too little quoted");
    for line in quoted {
        assert!(
            lines.contains(&line),
            "README quotes {line:?}, not in the example"
        );
    }
}
