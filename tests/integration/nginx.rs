//! The real nginx in front of rustcorn, configured by examples/nginx.conf (TCP
//! upstream) and examples/nginx-unix.conf (unix-socket upstream with keep-alive),
//! rendered onto free ports and a scratch directory: only ports and paths change
//! (and `user root`, so nginx's workers may use the scratch files). nginx comes from
//! scripts/setup-nginx.sh; without it these tests fail saying so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{parse_responses, request, Conn, Response};
use crate::harness::{
    app_args, free_port, require_venv, wait_until, Scratch, Server, ServerBuilder, STARTUP,
};
use crate::json::Json;
use crate::wsgi_env::ECHO;

/// Concurrent clients through nginx, and the bound on serving them all.
const CLIENTS: usize = 200;
const CLIENTS_DEADLINE: Duration = Duration::from_secs(120);
const STATIC_TEXT: &str = "served by nginx from disk\n";

/// A running nginx; stopped (TERM, then KILL to its process group) when dropped.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub http: u16,
    pub https: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        crate::harness::signal_quietly(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The workers too, whatever happened to the master.
        crate::os::kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

impl Nginx {
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

fn nginx_binary() -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|bin| bin.is_file());
    found.expect("nginx is not installed: run scripts/setup-test-env.sh (it installs nginx-light)")
}

/// `example` with each (from, to) replaced; every `from` must be in it, so the
/// example and the test cannot drift apart silently.
fn render(example: &str, substitutions: &[(&str, String)]) -> String {
    let path = crate::harness::repo_root().join("examples").join(example);
    let mut text = std::fs::read_to_string(&path).expect("read the example");
    for (from, to) in substitutions {
        assert!(text.contains(from), "{example} no longer contains {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// A self-signed certificate for nginx's `listen 443 ssl`.
fn make_certificate(dir: &Path) {
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl (scripts/setup-test-env.sh installs it)");
    assert!(status.success(), "openssl req failed");
}

/// Starts nginx with `example`, its upstream pointed at `upstream`, in `dir`, and
/// waits until it accepts connections.
pub fn start_nginx(example: &str, upstream: (&str, String), dir: &Path) -> Nginx {
    make_certificate(dir);
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::write(dir.join("static/hello.txt"), STATIC_TEXT).unwrap();
    let (http, https) = (free_port(), free_port());
    let d = dir.display();
    let conf = render(
        example,
        &[
            ("user www-data;", "user root;".to_string()),
            ("/run/nginx.pid", format!("{d}/nginx.pid")),
            ("/var/log/nginx/", format!("{d}/")),
            ("listen 80;", format!("listen 127.0.0.1:{http};")),
            ("listen 443 ssl;", format!("listen 127.0.0.1:{https} ssl;")),
            ("/etc/ssl/certs/example.com.pem", format!("{d}/cert.pem")),
            ("/etc/ssl/private/example.com.key", format!("{d}/key.pem")),
            ("/srv/myapp", d.to_string()),
            upstream,
        ],
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    use std::os::unix::process::CommandExt;
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn nginx");
    let mut nginx = Nginx {
        child,
        dir: dir.to_path_buf(),
        http,
        https,
    };
    let deadline = Instant::now() + STARTUP;
    while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
        if let Ok(Some(status)) = nginx.child.try_wait() {
            panic!(
                "nginx exited ({status}); error log:\n{}",
                nginx.log("error.log")
            );
        }
        assert!(
            Instant::now() < deadline,
            "nginx not listening after {STARTUP:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nginx
}

/// The environ rustcorn's echo app saw for a request through nginx.
pub fn environ_of(r: &Response) -> Json {
    assert_eq!(r.status, 200, "{r:?}");
    Json::parse(&r.text()).at("environ").clone()
}

/// One HTTPS request to nginx (Python's ssl module: the tests have no TLS client).
pub fn get_over_tls(port: u16, target: &str) -> Response {
    let script = format!(
        "import socket, ssl, sys\n\
         ctx = ssl.create_default_context()\n\
         ctx.check_hostname = False\n\
         ctx.verify_mode = ssl.CERT_NONE\n\
         s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port}), timeout=30), server_hostname='localhost')\n\
         s.sendall(b'GET {target} HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n')\n\
         data = b''\n\
         while True:\n    chunk = s.recv(65536)\n    if not chunk: break\n    data += chunk\n\
         sys.stdout.buffer.write(data)\n"
    );
    let out = Command::new(require_venv().join("bin/python"))
        .args(["-c", &script])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_responses(&out.stdout, &[]).expect("parse").remove(0)
}

/// `CLIENTS` clients at once, each with its own path and query; every answer is
/// checked against its own request. Returns how many were wrong (with why).
pub fn concurrent_clients(port: u16, expected_remote_addr: &str) -> Vec<String> {
    let started = Instant::now();
    let barrier = std::sync::Barrier::new(CLIENTS);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let barrier = &barrier;
                scope.spawn(move || -> Result<(), String> {
                    // Every client waits for the others, connected or not.
                    let conn = Conn::try_open(([127, 0, 0, 1], port).into());
                    barrier.wait();
                    let mut conn = conn.map_err(|e| format!("client {i}: connect: {e}"))?;
                    let target = format!("/c/{i}?n={i}");
                    conn.try_send(&request("GET", &target, &[("Connection", "close")], b""))
                        .map_err(|e| format!("client {i}: send: {e}"))?;
                    let r = conn
                        .try_response(false)
                        .map_err(|e| format!("client {i}: read: {e}"))?;
                    if r.status != 200 {
                        return Err(format!("client {i}: {r:?}"));
                    }
                    let env = Json::parse(&r.text()).at("environ").clone();
                    let got = (
                        env.str_at("PATH_INFO").to_string(),
                        env.str_at("QUERY_STRING").to_string(),
                        env.str_at("REMOTE_ADDR").to_string(),
                    );
                    let want = (
                        format!("/c/{i}"),
                        format!("n={i}"),
                        expected_remote_addr.into(),
                    );
                    if got != want {
                        return Err(format!("client {i}: got {got:?}, want {want:?}"));
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("client thread").err())
            .collect()
    });
    assert!(
        started.elapsed() < CLIENTS_DEADLINE,
        "{CLIENTS} clients took {:?}",
        started.elapsed()
    );
    failures
}

/// What both examples must do: static files from nginx, app requests forwarded
/// with the configured headers, https over TLS, many clients at once.
fn check_deployment(nginx: &Nginx, server: &Server, remote_addr: &str) {
    let mut conn = Conn::open(nginx.http);
    let r = conn.roundtrip(&request("GET", "/static/hello.txt", &[], b""));
    assert_eq!((r.status, r.text().as_str()), (200, STATIC_TEXT), "{r:?}");

    let headers = [
        ("Host", "app.example:8080"),
        ("X-Forwarded-For", "198.51.100.9"),
    ];
    let env = environ_of(&conn.roundtrip(&request("GET", "/app/x?y=1", &headers, b"")));
    let keys = [
        "wsgi.url_scheme",
        "REMOTE_ADDR",
        "HTTP_HOST",
        "HTTP_X_REAL_IP",
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_HOST",
        "PATH_INFO",
        "QUERY_STRING",
    ];
    let got: Vec<&str> = keys.iter().map(|k| env.str_at(k)).collect();
    let want = [
        "http",
        remote_addr,
        "app.example",
        "127.0.0.1",
        "198.51.100.9, 127.0.0.1",
        "http",
        "app.example",
        "/app/x",
        "y=1",
    ];
    assert_eq!(got, want, "{keys:?}");

    let env = environ_of(&get_over_tls(nginx.https, "/secure"));
    assert_eq!(
        (
            env.str_at("wsgi.url_scheme"),
            env.str_at("HTTP_X_FORWARDED_PROTO"),
            env.str_at("PATH_INFO")
        ),
        ("https", "https", "/secure")
    );

    let failures = concurrent_clients(nginx.http, remote_addr);
    assert!(
        failures.is_empty(),
        "{} wrong answers: {failures:#?}",
        failures.len()
    );

    // rustcorn logged every app request and never a static one.
    let log = |out: &str| out.contains("GET /secure ") && out.contains("GET /app/x?y=1 ");
    assert!(
        server.stdout().wait(0, crate::harness::IO_TIMEOUT, log),
        "access log:\n{}",
        server.stdout().text()
    );
    wait_until(
        crate::harness::IO_TIMEOUT,
        "every client in the access log",
        || server.stdout().text().matches("GET /c/").count() == CLIENTS,
    );
    assert!(
        !server.stdout().text().contains("/static/"),
        "rustcorn saw a static file"
    );
    assert!(nginx
        .log("access.log")
        .contains("GET /static/hello.txt HTTP/1.1\" 200"));
}

#[test]
fn nginx_over_tcp_serves_static_files_and_forwards_the_rest() {
    let scratch = Scratch::new("nginx-tcp");
    let server =
        ServerBuilder::new(&app_args(ECHO, &["--workers=2", "--access-logfile", "-"])).start();
    let upstream = format!("server 127.0.0.1:{}", server.port());
    let nginx = start_nginx(
        "nginx.conf",
        ("server 127.0.0.1:8080", upstream),
        scratch.path(),
    );
    check_deployment(&nginx, &server, "127.0.0.1");
}

#[test]
fn nginx_over_a_unix_socket_with_upstream_keep_alive() {
    let scratch = Scratch::new("nginx-unix");
    let sock = scratch.path().join("rc.sock");
    let bind = format!("unix:{}", sock.display());
    // Trust by address would refuse nginx's X-Forwarded-Proto; a unix socket is
    // trusted whatever this says.
    let server = Server::start(&[
        "-b",
        &bind,
        "--workers=2",
        "--forwarded-allow-ips",
        "10.9.9.9",
        "--access-logfile",
        "-",
        "--chdir",
        "tests/apps",
        ECHO,
    ]);
    let nginx = start_nginx(
        "nginx-unix.conf",
        (
            "unix:/run/rustcorn/rustcorn.sock",
            format!("unix:{}", sock.display()),
        ),
        scratch.path(),
    );
    check_deployment(&nginx, &server, "");
    // Keep-alive towards rustcorn: HTTP/1.1 without a Connection header.
    let env = environ_of(&Conn::open(nginx.http).roundtrip(&request("GET", "/ka", &[], b"")));
    assert_eq!(env.str_at("SERVER_PROTOCOL"), "HTTP/1.1");
    assert_eq!(env.get("HTTP_CONNECTION"), None);
}

/// The README's nginx section shows the examples' own lines: every indented line of
/// it must be in the example it names, so the documentation cannot drift.
#[test]
fn readme_nginx_section_quotes_the_examples() {
    let root = crate::harness::repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let section = readme
        .split("### nginx in front")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .and_then(|rest| rest.split("\n### ").next())
        .expect("README has a '### nginx in front' section");
    let (tcp, unix) = section
        .split_once("**Over a unix socket")
        .expect("the section shows the unix-socket variant");
    for (part, example) in [(tcp, "nginx.conf"), (unix, "nginx-unix.conf")] {
        let text = std::fs::read_to_string(root.join("examples").join(example)).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let quoted: Vec<&str> = part
            .lines()
            .filter(|l| l.starts_with("    ") && !l.trim().is_empty())
            .map(str::trim)
            .collect();
        assert!(quoted.len() >= 5, "{example}: too little quoted");
        for line in quoted {
            assert!(
                lines.contains(&line),
                "README quotes {line:?}, not in {example}"
            );
        }
    }
}
