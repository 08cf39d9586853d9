//! `--access-logformat`: rustcorn's access lines are byte-identical to Gunicorn 27's.
//!
//! Gunicorn (from the test venv, `bin/gunicorn`) and rustcorn serve the same fixture app
//! (tests/apps/access_app.py) with the same format; the same requests go to each, one
//! connection per request, in order; then the lines are compared atom by atom.
//!
//! Masked, because they legitimately differ between two servers run one after the
//! other: `t` (the clock second at logging time), `T`, `M`, `D`, `L` (how long each
//! server took), `p` (the worker's pid). Each masked atom is still checked for its
//! shape (a CLF stamp, an integer, `S.UUUUUU`, `<pid>` equal to the booted worker's
//! pid). Nothing else is masked: `h` is 127.0.0.1 for both and no atom shows the
//! client's port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use crate::capture::Captured;
use crate::harness::{
    booted_pids, isolated_command, parse_listening, require_venv, serve, Listener, IO_TIMEOUT,
    STARTUP,
};
use crate::os::kill_group;

/// How an atom's two values are compared.
#[derive(Clone, Copy, Debug)]
enum Check {
    Same,
    /// `[24/Nov/2026:00:02:22 +0000]`
    Stamp,
    /// Whole number (T, M, D).
    Number,
    /// `S.UUUUUU` (L).
    Decimal,
    /// `<pid>` of the server's worker.
    Pid,
}

/// Every Gunicorn atom, plus header, environ, missing-key and formatting cases.
const ATOMS: &[(&str, Check)] = &[
    ("%(h)s", Check::Same),
    ("%(l)s", Check::Same),
    ("%(u)s", Check::Same),
    ("%(t)s", Check::Stamp),
    ("\"%(r)s\"", Check::Same),
    ("%(m)s", Check::Same),
    ("%(U)s", Check::Same),
    ("%(q)s", Check::Same),
    ("%(H)s", Check::Same),
    ("%(s)s", Check::Same),
    ("%(B)s", Check::Same),
    ("%(b)s", Check::Same),
    ("\"%(f)s\"", Check::Same),
    ("\"%(a)s\"", Check::Same),
    ("%(T)s", Check::Number),
    ("%(M)s", Check::Number),
    ("%(D)s", Check::Number),
    ("%(L)s", Check::Decimal),
    ("%(p)s", Check::Pid),
    ("%({x-req}i)s", Check::Same),
    ("%({X-REQ}i)s", Check::Same),
    ("%({content-type}i)s", Check::Same),
    ("%({x-resp}o)s", Check::Same),
    ("%({Content-Type}o)s", Check::Same),
    ("%({content-length}o)s", Check::Same),
    ("%({app.user}e)s", Check::Same),
    ("%({REQUEST_METHOD}e)s", Check::Same),
    ("%({query_string}e)s", Check::Same),
    ("%({wsgi.url_scheme}e)s", Check::Same),
    ("%({wsgi.multiprocess}e)s", Check::Same),
    ("%({nope}e)s", Check::Same),
    ("%({nope}i)s", Check::Same),
    ("%(zz)s", Check::Same),
    ("%(B)06d", Check::Same),
    ("[%(s)-5s]", Check::Same),
    ("%(m).2s", Check::Same),
    ("100%%", Check::Same),
];

/// The requests, in order; every one asks the server to close afterwards.
const REQUESTS: &[&str] = &[
    // GET with a query, referer, quoted user agent, a custom header given twice.
    "GET /hello?name=w%20x&y=1 HTTP/1.1\r\nHost: example.com\r\n\
     User-Agent: probe/1.0 \"quoted\"\r\nReferer: http://ref.example/page\r\n\
     X-Req: first\r\nX-Req: last one\r\nConnection: close\r\n\r\n",
    // POST with a body.
    "POST /post HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n\
     Content-Length: 11\r\nConnection: close\r\n\r\nhello=world",
    "HEAD /hello HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    "GET /missing HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    // Basic auth: alice:secret.
    "GET /hello HTTP/1.1\r\nHost: example.com\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n\
     Connection: close\r\n\r\n",
    // Basic auth that does not decode: the user is `-`.
    "GET /hello HTTP/1.1\r\nHost: example.com\r\nAuthorization: Basic @@@\r\n\
     Connection: close\r\n\r\n",
    // No Content-Length from the app: `{content-length}o` is `-` in Gunicorn.
    "GET /nolength HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    "GET /a%20b/c%2Fd HTTP/1.0\r\nUser-Agent: old/1\r\n\r\n",
    // The app rewrites REMOTE_ADDR, PATH_INFO, REQUEST_METHOD and drops QUERY_STRING
    // in the environ, as proxy middleware does: Gunicorn logs what the environ says.
    "GET /proxied?x=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    // A repeated User-Agent: Gunicorn's environ joins repeats with `,`.
    "GET /hello HTTP/1.1\r\nHost: example.com\r\nUser-Agent: a/1\r\nUser-Agent: b/2\r\n\
     Connection: close\r\n\r\n",
];

/// Gunicorn from the test venv serving tests/apps/access_app.py with one worker,
/// killed (its whole process group) on drop.
pub struct Gunicorn {
    child: Child,
    pub stderr: Captured,
    pub stdout: Captured,
    pub port: u16,
    pub worker: u32,
}

impl Gunicorn {
    /// Starts it with `extra` flags and waits until its worker booted.
    pub fn start(extra: &[&str]) -> Gunicorn {
        let venv = require_venv();
        let mut cmd = isolated_command(venv.join("bin/gunicorn"));
        cmd.args([
            "-b",
            "127.0.0.1:0",
            "--chdir",
            "tests/apps",
            "--workers",
            "1",
        ])
        .arg("--no-control-socket")
        .args(extra)
        .arg("access_app:application");
        let mut child = cmd.spawn().expect("spawn gunicorn from the test venv");
        let stderr = Captured::drain(child.stderr.take().unwrap());
        let stdout = Captured::drain(child.stdout.take().unwrap());
        let ready = stderr.wait(0, STARTUP, |log| {
            log.contains("Listening at: ") && !booted_pids(log).is_empty()
        });
        let log = stderr.text();
        let mut g = Gunicorn {
            child,
            stderr,
            stdout,
            port: 0,
            worker: 0,
        };
        assert!(ready, "gunicorn did not start; log:\n{log}");
        g.port = log
            .lines()
            .flat_map(parse_listening)
            .find_map(|l| match l {
                Listener::Tcp(a) => Some(a.port()),
                Listener::Unix(_) => None,
            })
            .expect("gunicorn's Listening at: line");
        g.worker = booted_pids(&log)[0];
        g
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

/// Sends one raw request on its own connection and reads until the server closes.
fn exchange(port: u16, raw: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(raw.as_bytes()).expect("send request");
    let mut sink = Vec::new();
    s.read_to_end(&mut sink).expect("read response to EOF");
    assert!(sink.starts_with(b"HTTP/1."), "{raw:?} got {sink:?}");
}

/// Runs every request against `port` and returns the access lines `stdout` got.
fn run_requests(port: u16, stdout: &Captured, who: &str, log: impl Fn() -> String) -> Vec<String> {
    for raw in REQUESTS {
        exchange(port, raw);
    }
    let done = stdout.wait(0, Duration::from_secs(30), |t| {
        t.lines().count() >= REQUESTS.len()
    });
    assert!(done, "{who} wrote {:?}; log:\n{}", stdout.text(), log());
    stdout.text().lines().map(str::to_string).collect()
}

fn check_shape(check: Check, value: &str, worker: u32) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match check {
        Check::Same => true,
        Check::Number => digits(value),
        Check::Decimal => value
            .split_once('.')
            .is_some_and(|(s, us)| digits(s) && digits(us) && us.len() == 6),
        Check::Pid => value == format!("<{worker}>"),
        Check::Stamp => {
            let b = value.as_bytes();
            value.len() == 28
                && b[0] == b'['
                && b[27] == b']'
                && b[3] == b'/'
                && b[7] == b'/'
                && b[12] == b':'
                && b[21] == b' '
                && (b[22] == b'+' || b[22] == b'-')
        }
    }
}

#[test]
fn every_atom_renders_as_gunicorn_renders_it() {
    let format: Vec<&str> = ATOMS.iter().map(|(a, _)| *a).collect();
    let format = format.join("|");
    let gunicorn = Gunicorn::start(&["--access-logfile", "-", "--access-logformat", &format]);
    let expected = run_requests(gunicorn.port, &gunicorn.stdout, "gunicorn", || {
        gunicorn.stderr.text()
    });
    let rustcorn = serve(
        "access_app",
        &["--access-logfile", "-", "--access-logformat", &format],
    );
    let got = run_requests(rustcorn.port(), rustcorn.stdout(), "rustcorn", || {
        rustcorn.log()
    });
    assert_eq!(
        got.len(),
        expected.len(),
        "got {got:#?}\nexpected {expected:#?}"
    );
    for ((want, have), request) in expected.iter().zip(&got).zip(REQUESTS) {
        let want_fields: Vec<&str> = want.split('|').collect();
        let have_fields: Vec<&str> = have.split('|').collect();
        assert_eq!(want_fields.len(), ATOMS.len(), "gunicorn line {want:?}");
        assert_eq!(have_fields.len(), ATOMS.len(), "rustcorn line {have:?}");
        for (i, (atom, check)) in ATOMS.iter().enumerate() {
            let (w, h) = (want_fields[i], have_fields[i]);
            match check {
                Check::Same => assert_eq!(h, w, "atom {atom} for {request:?}"),
                _ => {
                    assert!(
                        check_shape(*check, w, gunicorn.worker),
                        "gunicorn {atom}: {w:?}"
                    );
                    assert!(
                        check_shape(*check, h, rustcorn.worker_pids[0]),
                        "rustcorn {atom}: {h:?}"
                    );
                }
            }
        }
    }
}

/// The stamp (`[...]`, validated) replaced by `[T]`; everything else as written.
fn mask_stamp(line: &str) -> String {
    let start = line.find('[').expect("a stamp");
    let end = start + line[start..].find(']').expect("stamp end");
    assert!(check_shape(Check::Stamp, &line[start..=end], 0), "{line}");
    format!("{}[T]{}", &line[..start], &line[end + 1..])
}

#[test]
fn default_format_lines_are_gunicorns() {
    let gunicorn = Gunicorn::start(&["--access-logfile", "-"]);
    let expected = run_requests(gunicorn.port, &gunicorn.stdout, "gunicorn", || {
        gunicorn.stderr.text()
    });
    // No --access-logformat: the default must be Gunicorn's.
    let rustcorn = serve("access_app", &["--access-logfile", "-"]);
    let got = run_requests(rustcorn.port(), rustcorn.stdout(), "rustcorn", || {
        rustcorn.log()
    });
    let expected: Vec<String> = expected.iter().map(|l| mask_stamp(l)).collect();
    let got: Vec<String> = got.iter().map(|l| mask_stamp(l)).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_format_python_could_not_render_is_refused_at_start() {
    let exited =
        crate::harness::ServerBuilder::new(&["--access-logformat", "%(s)d %(h)s", "access_app"])
            .run_to_exit(STARTUP);
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("--access-logformat") && exited.stderr.contains("%(s)d"),
        "{}",
        exited.stderr
    );
}
