//! HTTPS (`--certfile`, `--keyfile`, `--ca-certs`, `--cert-reqs`, `--ciphers`):
//! certificates made at test time with the `openssl` CLI, a rustls client in the
//! test, tests/apps/tls_app.py on the server. Covers the environ's scheme, keep-alive
//! and pipelining, large, chunked and file_wrapper bodies, gthread, client
//! certificates, unix-socket listeners, plain HTTP on the TLS port, and startup
//! errors.

pub(crate) mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::client::{chunked, request, Framing, Response};
use crate::harness::{app_args, serve, ServerBuilder, EXIT_TIMEOUT, IO_TIMEOUT};
use crate::json::Json;
use support::{serve_tls, Certs, TlsConn};

const APP: &str = "tls_app:application";

fn get(path: &str) -> Vec<u8> {
    request("GET", path, &[("Host", "localhost")], b"")
}

/// Byte i of every tls_app body.
fn assert_pattern(body: &[u8], n: usize, what: &str) {
    assert_eq!(body.len(), n, "{what}: length");
    if let Some(i) = (0..n).find(|&i| body[i] != (i % 251) as u8) {
        panic!("{what}: byte {i} is {} (want {})", body[i], i % 251);
    }
}

fn environ_doc(r: &Response) -> Json {
    assert_eq!(r.status, 200, "{r:?}");
    Json::parse(&r.text())
}

fn str_of<'a>(doc: &'a Json, key: &str) -> &'a str {
    match doc.get(key) {
        Some(Json::Str(s)) => s,
        other => panic!("{key} is {other:?} in {doc:?}"),
    }
}

/// GET and POST over HTTPS, several requests on one connection (one pair
/// pipelined), streamed, large and file_wrapper bodies.
fn exercise(port: u16, client: &Arc<ClientConfig>) {
    let mut c = TlsConn::open(port, client).expect("TLS handshake");
    let doc = environ_doc(&c.roundtrip(&get("/environ")));
    assert_eq!(str_of(&doc, "wsgi.url_scheme"), "https");
    assert_eq!(str_of(&doc, "REQUEST_METHOD"), "GET");
    // No port in Host: the https default, as Gunicorn gives it.
    assert_eq!(str_of(&doc, "SERVER_PORT"), "443");

    let post = request(
        "POST",
        "/environ",
        &[("Host", "localhost"), ("Content-Type", "text/plain")],
        b"name=value&x=1",
    );
    let doc = environ_doc(&c.roundtrip(&post));
    assert_eq!(str_of(&doc, "REQUEST_METHOD"), "POST");
    assert_eq!(str_of(&doc, "body"), "name=value&x=1");
    assert_eq!(str_of(&doc, "wsgi.url_scheme"), "https");

    // A body larger than any one read: it arrives over many TLS records.
    let upload = vec![b'u'; (2 << 20) + 3];
    let big_post = request("POST", "/environ", &[("Host", "localhost")], &upload);
    let doc = environ_doc(&c.roundtrip(&big_post));
    assert_eq!(
        doc.get("body_length"),
        Some(&Json::Num(upload.len() as f64))
    );
    // A body that stays in memory (1 MiB at most) is decrypted straight into its
    // buffer, the record boundaries falling anywhere in it.
    for len in [(1 << 20) - 1, 1 << 20] {
        let upload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let echo = request("POST", "/echo", &[("Host", "localhost")], &upload);
        let r = c.roundtrip(&echo);
        assert_eq!(r.status, 200, "{r:?}");
        assert_pattern(&r.body, len, "/echo");
    }
    let chunked_post = request(
        "POST",
        "/environ",
        &[("Host", "localhost"), ("Transfer-Encoding", "chunked")],
        &chunked(&upload, 7000),
    );
    let doc = environ_doc(&c.roundtrip(&chunked_post));
    assert_eq!(
        doc.get("body_length"),
        Some(&Json::Num(upload.len() as f64)),
        "chunked upload"
    );

    // Two requests in one write: both answered, in order, on the same connection.
    let mut pipelined = get("/environ");
    pipelined.extend(post.clone());
    c.send(&pipelined).unwrap();
    assert_eq!(
        str_of(&environ_doc(&c.response().unwrap()), "REQUEST_METHOD"),
        "GET"
    );
    assert_eq!(
        str_of(&environ_doc(&c.response().unwrap()), "REQUEST_METHOD"),
        "POST"
    );

    let n = 3 << 20;
    let r = c.roundtrip(&get(&format!("/big?n={n}")));
    assert_eq!((r.status, r.framing), (200, Framing::Length(n)), "{r:?}");
    assert_pattern(&r.body, n, "/big");

    let n = (1 << 20) + 12345;
    let r = c.roundtrip(&get(&format!("/stream?n={n}")));
    assert_eq!(
        (r.status, r.framing, r.complete),
        (200, Framing::Chunked, true),
        "{r:?}"
    );
    assert_pattern(&r.body, n, "/stream");

    let n = (2 << 20) + 7;
    let r = c.roundtrip(&get(&format!("/file?n={n}")));
    assert_eq!((r.status, r.framing), (200, Framing::Length(n)), "{r:?}");
    assert_pattern(&r.body, n, "/file");

    // Still the same connection after all of that.
    let doc = environ_doc(&c.roundtrip(&get("/environ")));
    assert_eq!(str_of(&doc, "wsgi.url_scheme"), "https");
}

#[test]
fn sync_worker_serves_https() {
    let certs = Certs::new();
    let server = serve_tls(&certs, &[]);
    exercise(server.port(), &certs.client(false));
}

#[test]
fn gthread_worker_serves_https_to_concurrent_clients() {
    let certs = Certs::new();
    let server = serve_tls(&certs, &["-k", "gthread", "--threads", "4"]);
    let port = server.port();
    let client = certs.client(false);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || exercise(port, &client))
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
}

/// A body delimited by the close ends with close_notify: the client can tell the
/// whole body from a cut connection (rustls reports a close without it as an error).
#[test]
fn a_close_delimited_body_ends_with_close_notify() {
    let certs = Certs::new();
    let server = serve_tls(&certs, &[]);
    let mut c = TlsConn::open(server.port(), &certs.client(false)).expect("TLS handshake");
    let n = 300_000;
    let raw = format!("GET /stream?n={n} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let r = c.roundtrip(raw.as_bytes());
    assert_eq!(
        (r.status, r.framing, r.complete),
        (200, Framing::Close, true),
        "{r:?}"
    );
    assert_pattern(&r.body, n, "/stream over HTTP/1.0");
}

/// What a connection gets from `port` when it speaks without a usable TLS session:
/// `Some` response, or `None` when the server refused it.
fn try_request(port: u16, client: &Arc<ClientConfig>) -> Option<Response> {
    let mut c = TlsConn::open(port, client).ok()?;
    c.send(&get("/pid")).ok()?;
    c.response().ok()
}

#[test]
fn required_client_certificates_are_checked_against_ca_certs() {
    let certs = Certs::new();
    let ca = certs.arg("ca.pem");
    let server = serve_tls(&certs, &["--cert-reqs", "2", "--ca-certs", &ca]);
    let port = server.port();
    let with_cert = certs.client(true);
    let served = try_request(port, &with_cert).expect("a client with a CA-signed certificate");
    assert_eq!(served.status, 200);
    let worker = served.text();

    // TLS 1.3: the server's refusal arrives as an alert after the client's Finished,
    // so it shows on the first read at the latest.
    let refused = try_request(port, &certs.client(false));
    assert!(refused.is_none(), "no certificate, yet served: {refused:?}");

    let again = try_request(port, &with_cert).expect("served after a refusal");
    assert_eq!(again.text(), worker, "the same worker keeps serving");
}

#[test]
fn optional_client_certificates_serve_clients_without_one() {
    let certs = Certs::new();
    let ca = certs.arg("ca.pem");
    let server = serve_tls(&certs, &["--cert-reqs", "1", "--ca-certs", &ca]);
    for with_cert in [true, false] {
        let r = try_request(server.port(), &certs.client(with_cert));
        assert_eq!(
            r.map(|r| r.status),
            Some(200),
            "with certificate: {with_cert}"
        );
    }
}

#[test]
fn plain_http_on_the_tls_port_is_closed_and_the_worker_survives() {
    let certs = Certs::new();
    let server = serve_tls(&certs, &[]);
    let port = server.port();
    let client = certs.client(false);
    let worker = try_request(port, &client).expect("served").text();

    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    plain.write_all(&get("/pid")).unwrap();
    assert_closed_without_http(&mut plain);

    let again = try_request(port, &client).expect("served after the plain client");
    assert_eq!(again.text(), worker);
}

/// The server closed `sock` (EOF or reset, not our read timeout), never answering
/// in HTTP.
fn assert_closed_without_http(sock: &mut TcpStream) {
    let mut answer = Vec::new();
    match sock.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("not closed by the server: {e}"),
    }
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn a_silent_handshake_does_not_hold_up_other_clients() {
    let certs = Certs::new();
    let server = serve_tls(&certs, &["--timeout", "5"]);
    let port = server.port();
    let client = certs.client(false);
    let worker = try_request(port, &client).expect("served").text();
    // Connected, never says hello; and one that stops mid-ClientHello.
    let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut partial = TcpStream::connect(("127.0.0.1", port)).unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    // Served by the same worker: it was not blocked (and then killed by the
    // --timeout watchdog) waiting on either handshake.
    let r = try_request(port, &client).expect("served meanwhile");
    assert_eq!((r.status, r.text()), (200, worker));
    // The request timeout covers the handshake: the stalled one is closed.
    partial
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert_closed_without_http(&mut partial);
}

#[test]
fn an_explicit_cipher_list_is_what_tls12_clients_get() {
    let certs = Certs::new();
    let server = serve_tls(
        &certs,
        &[
            "--ciphers",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "--ssl-version",
            "TLSv1_2",
        ],
    );
    // Ignored, as Gunicorn ignores it, and said so.
    assert!(
        server
            .log()
            .contains("option `ssl_version` (TLSv1_2) is deprecated and it is ignored"),
        "{}",
        server.log()
    );
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(certs.path("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls12_only = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let mut c = TlsConn::open(server.port(), &tls12_only).expect("TLS 1.2 handshake");
    let suite = c.reader.get_ref().conn.negotiated_cipher_suite().unwrap();
    assert_eq!(
        format!("{:?}", suite.suite()),
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    );
    assert_eq!(c.roundtrip(&get("/pid")).status, 200);
}

/// Startup errors: each exits non-zero before any worker starts, with one line
/// naming the file (or flag) at fault.
#[test]
fn bad_tls_settings_stop_the_server_at_startup() {
    let certs = Certs::new();
    std::fs::write(certs.path("garbage.key"), "this is not a key\n").unwrap();
    std::fs::write(
        certs.path("corrupt.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (cert, missing) = (certs.arg("server.pem"), certs.arg("missing.pem"));
    let (garbage, corrupt) = (certs.arg("garbage.key"), certs.arg("corrupt.key"));
    let other = certs.arg("other.key");
    let key = certs.arg("server.key");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--certfile", &missing, "--keyfile", &key], &missing),
        (vec!["--certfile", &cert, "--keyfile", &missing], &missing),
        (vec!["--certfile", &cert, "--keyfile", &garbage], &garbage),
        (vec!["--certfile", &cert, "--keyfile", &corrupt], &corrupt),
        (vec!["--certfile", &cert, "--keyfile", &other], &other),
        // The key is not in the certificate file and none was given.
        (vec!["--certfile", &cert], &cert),
        (vec!["--keyfile", &key], "--certfile"),
        (
            vec!["--certfile", &cert, "--keyfile", &key, "--cert-reqs", "2"],
            "--ca-certs",
        ),
        (
            vec![
                "--certfile",
                &cert,
                "--keyfile",
                &key,
                "--ca-certs",
                &missing,
            ],
            &missing,
        ),
        (
            vec![
                "--certfile",
                &cert,
                "--keyfile",
                &key,
                "--ciphers",
                "AES128-SHA",
            ],
            "AES128-SHA",
        ),
    ];
    for (flags, named) in cases {
        let exited = ServerBuilder::new(&app_args(APP, &flags)).run_to_exit(EXIT_TIMEOUT);
        let lines: Vec<&str> = exited.stderr.lines().collect();
        assert!(!exited.status.success(), "{flags:?} started");
        assert_eq!(lines.len(), 1, "{flags:?}: {}", exited.stderr);
        assert!(lines[0].contains(named), "{flags:?}: {}", exited.stderr);
        assert!(!exited.stderr.contains("Booting worker"), "{flags:?}");
    }
    assert_mismatch_is_explained(&certs);
}

fn assert_mismatch_is_explained(certs: &Certs) {
    let (cert, other) = (certs.arg("server.pem"), certs.arg("other.key"));
    let flags = ["--certfile", cert.as_str(), "--keyfile", other.as_str()];
    let exited = ServerBuilder::new(&app_args(APP, &flags)).run_to_exit(EXIT_TIMEOUT);
    assert!(
        exited.stderr.contains("does not match the certificate"),
        "{}",
        exited.stderr
    );
}

/// A certificate file that holds the key too needs no --keyfile (as in Gunicorn).
#[test]
fn certfile_with_the_key_inside_is_enough() {
    let certs = Certs::new();
    let mut both = std::fs::read(certs.path("server.pem")).unwrap();
    both.extend(std::fs::read(certs.path("server.key")).unwrap());
    let combined: &Path = &certs.path("combined.pem");
    std::fs::write(combined, both).unwrap();
    let server = serve(APP, &["--certfile", &combined.display().to_string()]);
    let r = try_request(server.port(), &certs.client(false)).expect("served");
    assert_eq!(r.status, 200);
}

/// As in Gunicorn, TLS applies to every listener, unix sockets included.
#[test]
fn unix_socket_listeners_speak_tls_too() {
    let certs = Certs::new();
    let sock = certs.path("s.sock");
    let bind = format!("unix:{}", sock.display());
    let _server = serve_tls(&certs, &["-b", &bind]);
    let unix = UnixStream::connect(&sock).expect("connect to the unix listener");
    unix.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(certs.client(false), name).unwrap();
    let mut tls = std::io::BufReader::new(StreamOwned::new(conn, unix));
    tls.get_mut().write_all(&get("/environ")).unwrap();
    let doc = environ_doc(&crate::client::read_response(&mut tls, false).unwrap());
    assert_eq!(str_of(&doc, "wsgi.url_scheme"), "https");
}
