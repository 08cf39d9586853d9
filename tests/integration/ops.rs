//! Operating the server under load, as Gunicorn is operated: HUP to deploy new
//! code, TTIN/TTOU, `--max-requests` recycling, crashed workers replaced,
//! process titles, WINCH outside daemon mode. Every test that changes workers
//! does it while a client thread sends requests, and asserts that none failed.
//!
//! The load clients open one connection per request (so a server-side close
//! between requests cannot be mistaken for a failure), except the keep-alive
//! client of the recycling test, which checks that every close it sees was
//! announced (`Connection: close`) or happened before any byte of a new
//! request was answered.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{get, request, try_get, Conn};
use crate::harness::{
    booted_pids, process_alive, serve, signal, wait_until, Scratch, Server, ServerBuilder, STARTUP,
};

/// tests/apps/ops_app.py: /pid, /ids, /argv, /exit?N, /signal?N, /segfault, /log?TEXT.
pub const OPS_APP: &str = "ops_app";

/// A client thread sending `GET path` on a new connection per request until
/// stopped (bounded: 180 s), recording each answer's body or why it failed.
pub struct Load {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Result<String, String>>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(port: u16, path: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answers: Arc<Mutex<Vec<Result<String, String>>>> = Arc::default();
        let (s, a, path) = (stop.clone(), answers.clone(), path.to_string());
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(180);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                let answer = match try_get(port, &path) {
                    Ok(r) if r.status == 200 && r.complete => Ok(r.text()),
                    Ok(r) => Err(format!("{r:?}")),
                    Err(e) => Err(e.to_string()),
                };
                a.lock().unwrap().push(answer);
            }
        });
        Load {
            stop,
            answers,
            thread: Some(thread),
        }
    }

    pub fn count(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    /// Waits until `n` more answers arrived than `since`.
    pub fn wait_for_more(&self, since: usize, n: usize) {
        wait_until(STARTUP, &format!("{n} more answers"), || {
            self.count() >= since + n
        });
    }

    /// Stops the client; returns every answer in order.
    pub fn finish(mut self) -> Vec<Result<String, String>> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("load thread");
        }
        std::mem::take(&mut *self.answers.lock().unwrap())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Asserts no answer failed; returns the bodies.
pub fn all_ok(answers: Vec<Result<String, String>>, server: &Server) -> Vec<String> {
    let failed: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}; log:\n{}",
        failed.len(),
        answers.len(),
        server.log()
    );
    answers.into_iter().map(Result::unwrap).collect()
}

/// The live (not zombie) children of `parent`, from /proc.
pub fn children(parent: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() != Some(&"Z") && fields.get(1) == Some(&parent.to_string().as_str()) {
            out.insert(pid);
        }
    }
    out
}

/// Waits until `parent` has exactly `n` live children; returns them.
pub fn wait_for_children(server: &Server, n: usize) -> BTreeSet<u32> {
    let deadline = Instant::now() + STARTUP;
    loop {
        let kids = children(server.pid);
        if kids.len() == n {
            return kids;
        }
        assert!(
            Instant::now() < deadline,
            "want {n} workers in the process table, have {kids:?}; log:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// `/proc/PID/cmdline` as `ps -o args` shows it.
pub fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&raw);
    text.trim_end_matches('\0').replace('\0', " ")
}

/// `/proc/PID/comm`: the 15-byte name `top` and `ps -o comm` show.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// Sends `sig` to the master and waits until its log says it handled it.
pub fn signal_handled(server: &mut Server, sig: &str) {
    let mark = server.log_mark();
    signal(server.pid, sig);
    let handled = format!("Handling signal: {}", sig.to_ascii_lowercase());
    server.wait_for_log_since(mark, &handled, STARTUP);
}

fn write_version_app(dir: &Path, version: &str) {
    let tmp = dir.join("version_app.tmp");
    std::fs::write(
        &tmp,
        format!(
            "def application(environ, start_response):\n    \
             start_response('200 OK', [('Content-Length', '{}')])\n    \
             return [b'{version}']\n",
            version.len()
        ),
    )
    .unwrap();
    std::fs::rename(&tmp, dir.join("version_app.py")).unwrap();
}

#[test]
fn hup_under_load_switches_to_the_rewritten_app_and_no_request_fails() {
    let scratch = Scratch::new("hup");
    write_version_app(scratch.path(), "v1");
    let dir = scratch.path().to_str().unwrap();
    let mut server = ServerBuilder::new(&[
        "-b",
        "127.0.0.1:0",
        "--chdir",
        dir,
        "--workers=2",
        "version_app",
    ])
    .start();
    let started = Instant::now();
    let load = Load::start(server.port(), "/");
    thread::sleep(Duration::from_secs(3));
    load.wait_for_more(0, 5);

    write_version_app(scratch.path(), "v2");
    signal_handled(&mut server, "HUP");
    server.wait_for(STARTUP, "two new workers", |log| {
        booted_pids(log).len() >= 4
    });
    wait_until(STARTUP, "an answer from the new code", || {
        load.answers
            .lock()
            .unwrap()
            .iter()
            .any(|a| a.as_deref() == Ok("v2"))
    });
    // The client keeps going for 10 s in all.
    let rest = Duration::from_secs(10).saturating_sub(started.elapsed());
    thread::sleep(rest);
    let n = load.count();
    load.wait_for_more(n, 5);
    let bodies = all_ok(load.finish(), &server);

    let first_v2 = bodies.iter().position(|b| b == "v2").unwrap();
    assert!(first_v2 > 0, "no answer from the old code: {bodies:?}");
    assert!(
        bodies[..first_v2].iter().all(|b| b == "v1")
            && bodies[first_v2..].iter().all(|b| b == "v2"),
        "answers must switch once from v1 to v2: {bodies:?}"
    );
}

#[test]
fn ttin_and_ttou_change_the_workers_in_the_process_table_and_no_request_fails() {
    let mut server = serve(OPS_APP, &["--workers=2"]);
    wait_for_children(&server, 2);
    let load = Load::start(server.port(), "/pid");
    load.wait_for_more(0, 5);
    // (signal, workers afterwards): TTOU never goes below one.
    let steps = [
        ("TTIN", 3),
        ("TTIN", 4),
        ("TTOU", 3),
        ("TTOU", 2),
        ("TTOU", 1),
        ("TTOU", 1),
        ("TTIN", 2),
    ];
    for (sig, want) in steps {
        signal_handled(&mut server, sig);
        let kids = wait_for_children(&server, want);
        // Every worker in the table serves: the client's answers keep coming
        // and name only live workers.
        let n = load.count();
        load.wait_for_more(n, 5);
        let recent: BTreeSet<u32> = load.answers.lock().unwrap()[n + 1..]
            .iter()
            .filter_map(|a| a.as_ref().ok()?.parse().ok())
            .collect();
        assert!(
            recent.is_subset(&kids),
            "after {sig}: answers from {recent:?}, workers {kids:?}"
        );
    }
    let answers = all_ok(load.finish(), &server);
    assert!(answers.len() >= 35);
}

/// What the keep-alive client of the recycling test saw.
#[derive(Default)]
struct KeepAliveStats {
    answers: BTreeMap<u32, usize>,
    /// Closes announced by `Connection: close` on the last response.
    announced: usize,
    /// Closes seen when sending the next request, before any byte of its
    /// answer: allowed, the client retries on a new connection.
    retried: usize,
    failures: Vec<String>,
}

/// Sends `GET /pid` over kept-alive connections until `stop`.
fn keep_alive_client(port: u16, stop: Arc<AtomicBool>) -> thread::JoinHandle<KeepAliveStats> {
    thread::spawn(move || {
        let mut stats = KeepAliveStats::default();
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut conn: Option<(Conn, usize)> = None;
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            let (c, served) = conn.get_or_insert_with(|| (Conn::open(port), 0));
            let sent = c.try_send(&request("GET", "/pid", &[], b""));
            match sent.and_then(|_| c.try_response(false)) {
                Ok(r) if r.status == 200 && r.complete => {
                    let pid: u32 = r.text().parse().unwrap_or(0);
                    *stats.answers.entry(pid).or_default() += 1;
                    *served += 1;
                    if r.connection_has("close") {
                        stats.announced += 1;
                        conn = None;
                    }
                }
                Err(e) if *served > 0 && nothing_answered(&e) => {
                    stats.retried += 1;
                    conn = None;
                }
                other => {
                    stats.failures.push(format!("{other:?}"));
                    conn = None;
                }
            }
        }
        stats
    })
}

/// The server closed the connection before answering any byte.
fn nothing_answered(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

#[test]
fn max_requests_recycles_workers_under_load_and_no_request_fails() {
    for worker_class in [&["-k", "sync"][..], &["-k", "gthread", "--threads", "4"]] {
        recycles_under_load(worker_class);
    }
}

/// `--max-requests 50 --max-requests-jitter 10` with a per-connection client
/// and a keep-alive client running until four workers were recycled.
fn recycles_under_load(worker_class: &[&str]) {
    let mut flags = vec![
        "--workers=2",
        "--max-requests",
        "50",
        "--max-requests-jitter",
        "10",
        "--keep-alive=30",
    ];
    flags.extend_from_slice(worker_class);
    let server = serve(OPS_APP, &flags);
    let first: BTreeSet<u32> = server.worker_pids.iter().copied().collect();
    let load = Load::start(server.port(), "/pid");
    let stop = Arc::new(AtomicBool::new(false));
    let kept = keep_alive_client(server.port(), stop.clone());
    // At least four recycles (2 + 4 workers booted), both first workers among them.
    wait_until(Duration::from_secs(120), "four recycled workers", || {
        booted_pids(&server.log()).len() >= 6 && first.iter().all(|p| !process_alive(*p))
    });
    stop.store(true, Ordering::SeqCst);
    let stats = kept.join().expect("keep-alive client");
    let answers = all_ok(load.finish(), &server);
    let log = server.log();

    assert!(
        stats.failures.is_empty(),
        "{worker_class:?}: keep-alive requests failed: {:?}; log:\n{log}",
        stats.failures
    );
    let recycles = log
        .matches("Autorestarting worker after current request.")
        .count();
    assert!(recycles >= 4, "{worker_class:?}: log:\n{log}");
    assert!(
        stats.retried <= recycles,
        "{worker_class:?}: {} unannounced closes for {recycles} recycles; log:\n{log}",
        stats.retried
    );
    assert!(
        stats.announced >= 1,
        "no Connection: close seen by the keep-alive client"
    );
    // No worker answered more than max_requests + jitter, plus the one
    // request the other (sequential) client may have had in flight with it
    // when it took its last: that one is still answered, with close.
    let mut per_pid = stats.answers.clone();
    for pid in answers.iter().filter_map(|a| a.parse::<u32>().ok()) {
        *per_pid.entry(pid).or_default() += 1;
    }
    assert!(
        per_pid.values().all(|&n| n <= 61),
        "{worker_class:?}: a worker served past its limit: {per_pid:?}"
    );
    // Recycled workers exit cleanly and new pids serve.
    assert!(
        !log.contains("exited with code"),
        "{worker_class:?}: log:\n{log}"
    );
    assert!(per_pid.keys().any(|p| !first.contains(p)), "{per_pid:?}");
    for pid in &first {
        assert!(!process_alive(*pid), "recycled worker {pid} still running");
    }
}

#[test]
fn a_worker_that_crashes_is_logged_with_its_cause_and_replaced() {
    let mut server = serve(OPS_APP, &["--workers=2"]);
    let port = server.port();
    // (request that kills the serving worker, or None for an outside SIGKILL;
    //  the line logged, after "Worker (pid:N) ")
    let cases: [(Option<&str>, &str); 4] = [
        (Some("/exit?7"), "exited with code 7"),
        (Some("/signal?11"), "was sent SIGSEGV!"),
        (Some("/segfault"), "was sent SIGSEGV!"),
        (None, "was sent SIGKILL! Perhaps out of memory?"),
    ];
    for (path, cause) in cases {
        let booted = server.booted_pids().len();
        let live = children(server.pid);
        let victim = match path {
            Some(path) => {
                let mark = server.log_mark();
                let r = try_get(port, path);
                assert!(r.is_err(), "{path}: the dying worker answered {r:?}");
                let log = server.wait_for_log_since(mark, cause, STARTUP);
                let line = log[mark..].lines().find(|l| l.contains(cause)).unwrap();
                let pid = line.split("(pid:").nth(1).and_then(|r| r.split(')').next());
                pid.and_then(|p| p.parse().ok()).expect("pid in the line")
            }
            None => {
                let victim = *live.iter().next().unwrap();
                signal(victim, "KILL");
                server.wait_for_log(&format!("Worker (pid:{victim}) {cause}"), STARTUP);
                victim
            }
        };
        assert!(
            live.contains(&victim),
            "{victim} was not a worker: {live:?}"
        );
        assert!(
            server
                .log()
                .contains(&format!("Worker (pid:{victim}) {cause}")),
            "log:\n{}",
            server.log()
        );
        server.wait_for(STARTUP, "a replacement worker", |log| {
            booted_pids(log).len() > booted
        });
        let now = wait_for_children(&server, 2);
        assert!(!now.contains(&victim));
        // Both workers serve again.
        for _ in 0..6 {
            assert_eq!(get(port, "/pid").status, 200);
        }
    }
}

#[test]
fn process_titles_show_the_role_and_the_name_in_ps() {
    // (flags, the NAME in the titles): Gunicorn's proc_name defaults to the app.
    let cases: [(&[&str], &str); 2] = [(&[], OPS_APP), (&["-n", "my-site"], "my-site")];
    for (flags, name) in cases {
        let mut extra = vec!["--workers=2"];
        extra.extend_from_slice(flags);
        let server = serve(OPS_APP, &extra);
        assert_eq!(cmdline(server.pid), format!("rustcorn: master [{name}]"));
        // top and `ps -o comm` show the first 15 bytes, as with setproctitle.
        assert_eq!(comm(server.pid), "rustcorn: maste");
        for pid in &server.worker_pids {
            assert_eq!(cmdline(*pid), format!("rustcorn: worker [{name}]"));
            assert_eq!(comm(*pid), "rustcorn: worke");
        }
        // The app still sees the real command line in sys.argv, not the title.
        let argv = get(server.port(), "/argv").text();
        let argv: Vec<&str> = argv.lines().collect();
        assert!(argv[0].ends_with("rustcorn"), "{argv:?}");
        assert_eq!(
            argv[1..],
            crate::harness::app_args(OPS_APP, &extra)[..],
            "{argv:?}"
        );
    }
}

#[test]
fn winch_is_ignored_when_not_daemonized() {
    let mut server = serve(OPS_APP, &["--workers=2", "--log-level=debug"]);
    let workers = children(server.pid);
    signal_handled(&mut server, "WINCH");
    server.wait_for_log("SIGWINCH ignored. Not daemonized", STARTUP);
    signal_handled(&mut server, "TTIN");
    wait_for_children(&server, 3);
    assert!(workers.is_subset(&children(server.pid)));
    assert_eq!(get(server.port(), "/pid").status, 200);
}

#[test]
fn hup_and_term_back_to_back_stop_the_new_generation_promptly() {
    // HUP and TERM sent back to back reach the master together: it forks a
    // new generation and sends it TERM right away, possibly before those
    // workers installed their handlers (signals are blocked across fork so
    // such a TERM waits for them). The stop must not wait for
    // --graceful-timeout. The race is narrow: on an idle machine the new
    // workers usually win it anyway.
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for round in 0..3 {
        let mut server = serve(OPS_APP, &["--workers=2", "--graceful-timeout=60"]);
        let master = Pid::from_raw(server.pid as i32);
        kill(master, Signal::SIGHUP).unwrap();
        kill(master, Signal::SIGTERM).unwrap();
        let status = server.wait_exit(Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.code() == Some(0)),
            "round {round}: master not stopped 20 s after TERM ({status:?}); log:\n{}",
            server.log()
        );
        assert!(server.workers_left().is_empty());
    }
}
