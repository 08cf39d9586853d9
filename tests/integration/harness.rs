//! Runs the real `rustcorn` binary as a child process and watches its logs.
//!
//! A test starts a server with [`Server::start`] (or [`ServerBuilder`] for
//! env vars and launch options), talks to it over real sockets (see
//! `client.rs`), and lets `Drop` stop it. The harness learns the port from the
//! `Listening at:` line (tests bind port 0) and waits for every worker's
//! `Booting worker with pid:` line before handing the server over, so no test
//! sleeps to "give it time".

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub use crate::capture::Captured;
use crate::os::{alive_in_group, kill_group};
pub use crate::os::{
    free_port, process_alive, signal, signal_quietly, wait_for_file, wait_until, Scratch,
};

/// The binary cargo built for this test crate: the server under test unless
/// `RUSTCORN_TEST_SERVER` names another (see [`server_program`]).
pub const BIN: &str = env!("CARGO_BIN_EXE_rustcorn");

/// The server under test: `$RUSTCORN_TEST_SERVER` when set — the `rustcorn` console
/// script of an installed wheel, which the test command runs the whole suite against a
/// second time — else the binary [`BIN`]. A named program that does not exist fails
/// the test that needs it; it never falls back silently.
pub fn server_program() -> PathBuf {
    match std::env::var_os("RUSTCORN_TEST_SERVER") {
        Some(program) if !program.is_empty() => {
            let program = PathBuf::from(program);
            assert!(
                program.exists(),
                "RUSTCORN_TEST_SERVER names {}, which does not exist",
                program.display()
            );
            program
        }
        _ => PathBuf::from(BIN),
    }
}
/// The deployment guide's command, `-b … --workers=5 wsgi`, on port 0 with the
/// guide's app (examples/hello/wsgi.py).
pub const GUIDE_ARGS: [&str; 6] = [
    "-b",
    "127.0.0.1:0",
    "--workers=5",
    "--chdir",
    "examples/hello",
    "wsgi",
];
/// Bound on start-up (Python init and app import in every worker, on a
/// loaded 2-core machine running a debug build).
pub const STARTUP: Duration = Duration::from_secs(60);
/// Bound on one socket read or write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the master exiting after a signal or an error.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

const LISTENING: &str = "Listening at: ";
const BOOTING: &str = "Booting worker with pid: ";

/// The repository root: servers run with it as their current directory, so
/// `--chdir tests/apps` works as written in the tests.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where `scripts/setup-test-env.sh` puts the Python virtualenv.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("RUSTCORN_TEST_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join(".venv-test"),
    }
}

/// The test venv, or a failure telling how to create it. Tests of apps that
/// need Flask or Django call this: they fail, never skip, without it.
pub fn require_venv() -> PathBuf {
    let venv = venv_dir();
    assert!(
        venv.join("bin/python").exists(),
        "the Python test virtualenv is missing at {}: run scripts/setup-test-env.sh \
         (or point RUSTCORN_TEST_VENV at one with flask and django installed)",
        venv.display()
    );
    venv
}

/// Where a server listens, from its `Listening at:` lines.
#[derive(Clone, Debug, PartialEq)]
pub enum Listener {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// How to launch the server: the arguments, the environment, and how many
/// workers to wait for.
pub struct ServerBuilder {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    workers: usize,
    launcher: Vec<String>,
    program: Option<PathBuf>,
}

impl ServerBuilder {
    /// `args` are rustcorn's arguments; the expected number of workers is
    /// read from `-w N`, `-wN`, `--workers N` or `--workers=N` (default 1).
    pub fn new(args: &[&str]) -> ServerBuilder {
        ServerBuilder {
            args: args.iter().map(|a| a.to_string()).collect(),
            envs: Vec::new(),
            workers: workers_in(args).unwrap_or(1),
            launcher: Vec::new(),
            program: None,
        }
    }

    /// Sets an environment variable for the server process.
    pub fn env(mut self, key: &str, value: &str) -> ServerBuilder {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs `launcher... SERVER args...` instead of `SERVER args...`; the launcher
    /// must exec the server (so the child's pid is the master's).
    pub fn launcher(mut self, launcher: &[&str]) -> ServerBuilder {
        self.launcher = launcher.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Runs `program` (the `rustcorn` script of a given venv) instead of
    /// [`server_program`].
    pub fn program(mut self, program: PathBuf) -> ServerBuilder {
        self.program = Some(program);
        self
    }

    fn command(&self) -> Command {
        let server = self.program.clone().unwrap_or_else(server_program);
        let mut cmd = match self.launcher.split_first() {
            Some((program, rest)) => {
                let mut cmd = isolated_command(program);
                cmd.args(rest).arg(server);
                cmd
            }
            None => isolated_command(server),
        };
        cmd.args(&self.args);
        for (key, value) in &self.envs {
            cmd.env(key, value);
        }
        cmd
    }

    /// Starts the server without waiting for anything: for runs whose log
    /// does not reach stderr (`--error-logfile`, `--log-level warning`),
    /// where the test learns readiness from a file or by connecting.
    /// `listeners` and `worker_pids` stay empty.
    pub fn spawn(&self) -> Server {
        let mut child = self.command().spawn().expect("spawn rustcorn");
        let stderr = Captured::drain(child.stderr.take().unwrap());
        let stdout = Captured::drain(child.stdout.take().unwrap());
        Server {
            pid: child.id(),
            child,
            stderr,
            stdout,
            listeners: Vec::new(),
            worker_pids: Vec::new(),
        }
    }

    /// Starts the server and waits until it listens and every worker booted.
    /// Panics, with the server's log, if it exits or times out first.
    pub fn start(self) -> Server {
        let mut server = self.spawn();
        let workers = self.workers;
        server.wait_for(
            STARTUP,
            &format!("listening with {workers} booted worker(s)"),
            |log| log.contains(LISTENING) && log.matches(BOOTING).count() >= workers,
        );
        let log = server.log();
        server.listeners = log.lines().flat_map(parse_listening).collect();
        server.worker_pids = booted_pids(&log);
        server
    }

    /// Runs the binary to completion (for commands that must exit: bad
    /// flags, `--version`, app-loading errors). Panics if it has not exited
    /// within `timeout`.
    pub fn run_to_exit(self, timeout: Duration) -> Exited {
        let mut child = self.command().spawn().expect("spawn rustcorn");
        let stderr = Captured::drain(child.stderr.take().unwrap());
        let stdout = Captured::drain(child.stdout.take().unwrap());
        let pid = child.id();
        let Some(status) = wait_exit(&mut child, timeout) else {
            kill_group(pid);
            let _ = child.wait();
            panic!(
                "rustcorn {:?} still running after {timeout:?}; log:\n{}",
                self.args,
                stderr.text()
            );
        };
        // Leftover workers may hold the pipes; don't wait on them for long.
        stderr.wait_eof(Duration::from_secs(5));
        stdout.wait_eof(Duration::from_secs(5));
        let leftover = booted_pids(&stderr.text())
            .into_iter()
            .any(|w| alive_in_group(w, pid));
        kill_group(pid);
        Exited {
            status,
            stdout: stdout.text(),
            stderr: stderr.text(),
            leftover_workers: leftover,
        }
    }
}

/// What a finished run left behind.
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Whether a worker outlived the master (it should not).
    pub leftover_workers: bool,
}

/// A running server; stopped (SIGTERM, then SIGKILL to its whole process
/// group) when dropped.
pub struct Server {
    child: Child,
    /// The master's pid.
    pub pid: u32,
    stderr: Captured,
    stdout: Captured,
    /// Every `Listening at:` address, in log order.
    pub listeners: Vec<Listener>,
    /// The pids of the workers booted at start-up.
    pub worker_pids: Vec<u32>,
}

impl Server {
    /// Starts `rustcorn args...` (see [`ServerBuilder`] for options).
    pub fn start(args: &[&str]) -> Server {
        ServerBuilder::new(args).start()
    }

    /// The port of the first TCP listener.
    pub fn port(&self) -> u16 {
        self.listeners
            .iter()
            .find_map(|l| match l {
                Listener::Tcp(addr) => Some(addr.port()),
                Listener::Unix(_) => None,
            })
            .unwrap_or_else(|| panic!("no TCP listener; log:\n{}", self.log()))
    }

    /// The error log (stderr) so far.
    pub fn log(&self) -> String {
        self.stderr.text()
    }

    /// A mark in the error log, for [`Self::wait_for_log_since`].
    pub fn log_mark(&self) -> usize {
        self.stderr.mark()
    }

    /// What the server wrote to stdout (the access log with `--access-logfile -`).
    pub fn stdout(&self) -> &Captured {
        &self.stdout
    }

    /// The error log's stream (stderr) itself, for tests of who holds it open.
    pub fn stderr(&self) -> &Captured {
        &self.stderr
    }

    /// Waits until the error log contains `needle`; returns the whole log.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_for_log_since(0, needle, timeout)
    }

    /// Waits until the log written after `mark` contains `needle`.
    pub fn wait_for_log_since(&mut self, mark: usize, needle: &str, timeout: Duration) -> String {
        self.wait_since(mark, timeout, &format!("{needle:?} in the log"), |log| {
            log.contains(needle)
        });
        self.log()
    }

    /// Whether the log written after `mark` comes to contain `needle` within
    /// `timeout` (for tests that collect failures instead of stopping).
    pub fn log_shows_since(&self, mark: usize, needle: &str, timeout: Duration) -> bool {
        self.stderr.wait(mark, timeout, |log| log.contains(needle))
    }

    /// Waits until `ready` holds for the whole error log; panics with the log
    /// (and says if the master died) otherwise.
    pub fn wait_for(&mut self, timeout: Duration, what: &str, ready: impl Fn(&str) -> bool) {
        self.wait_since(0, timeout, what, ready)
    }

    fn wait_since(
        &mut self,
        mark: usize,
        timeout: Duration,
        what: &str,
        ready: impl Fn(&str) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            // Short slices so a master that dies is noticed promptly.
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(250));
            if self.stderr.wait(mark, slice, &ready) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                if self.stderr.wait(mark, Duration::from_secs(2), &ready) {
                    return;
                }
                panic!(
                    "rustcorn exited ({status}) while waiting for {what}; log:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; log:\n{}",
                    self.log()
                );
            }
        }
    }

    /// The pids in every `Booting worker with pid:` line so far.
    pub fn booted_pids(&self) -> Vec<u32> {
        booted_pids(&self.log())
    }

    /// Sends `sig` to the master and waits (bounded) for it to exit.
    pub fn stop_with(&mut self, sig: &str) -> ExitStatus {
        signal(self.pid, sig);
        self.wait_exit(EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "master still running {EXIT_TIMEOUT:?} after SIG{sig}; log:\n{}",
                self.log()
            )
        })
    }

    /// Waits up to `timeout` for the master to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }

    /// Whether any worker this master ever booted is still running.
    pub fn workers_left(&self) -> Vec<u32> {
        self.booted_pids()
            .into_iter()
            .filter(|&w| alive_in_group(w, self.pid))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal_quietly(self.pid, "TERM");
            if self.wait_exit(Duration::from_secs(20)).is_none() {
                kill_group(self.pid);
                let _ = self.child.wait();
            }
        }
        // Workers that outlived their master (a bug the tests report
        // elsewhere) must not outlive the test.
        if !self.workers_left().is_empty() {
            kill_group(self.pid);
        }
    }
}

/// Polls a child for exit (std has no blocking wait with a timeout).
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The worker count an argument list asks for, if it says.
fn workers_in(args: &[&str]) -> Option<usize> {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = if *arg == "-w" || *arg == "--workers" {
            it.next().copied()
        } else {
            arg.strip_prefix("--workers=")
                .or_else(|| arg.strip_prefix("-w").filter(|v| !v.is_empty()))
        };
        if let Some(n) = value.and_then(|v| v.parse().ok()) {
            return Some(n);
        }
    }
    None
}

/// `[...] [PID] [INFO] Listening at: http://127.0.0.1:8000 (PID)` → the
/// address. Several binds may share one line, comma-separated (Gunicorn's
/// `http://127.0.0.1:8000,unix:/run/app.sock`).
pub fn parse_listening(line: &str) -> Vec<Listener> {
    let Some(at) = line.find(LISTENING) else {
        return Vec::new();
    };
    let rest = &line[at + LISTENING.len()..];
    let addrs = rest.rsplit_once(" (").map_or(rest, |(addrs, _)| addrs);
    addrs
        .split(',')
        .filter_map(|addr| parse_listener(addr.trim()))
        .collect()
}

fn parse_listener(addr: &str) -> Option<Listener> {
    if let Some(path) = addr.strip_prefix("unix:") {
        return Some(Listener::Unix(PathBuf::from(path)));
    }
    addr.strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))?
        .parse()
        .ok()
        .map(Listener::Tcp)
}

/// The pids of every `Booting worker with pid: N` line.
pub fn booted_pids(log: &str) -> Vec<u32> {
    log.lines()
        .filter_map(|line| line.split(BOOTING).nth(1))
        .filter_map(|rest| rest.trim().parse().ok())
        .collect()
}

/// Starts `app` (an APP_MODULE from tests/apps) on 127.0.0.1, port 0, with
/// `extra` flags before it.
pub fn serve(app: &str, extra: &[&str]) -> Server {
    ServerBuilder::new(&app_args(app, extra)).start()
}

/// The arguments [`serve`] uses, for tests that need a [`ServerBuilder`].
pub fn app_args<'a>(app: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-b", "127.0.0.1:0", "--chdir", "tests/apps"];
    args.extend_from_slice(extra);
    args.push(app);
    args
}

/// A server process as the tests run one (rustcorn, or Gunicorn beside it): from the
/// repository root, stdin closed, stdout and stderr piped, in its own process group
/// (the harness can sweep up every worker), with the environment settings a server
/// reads taken from the test alone and the test venv active.
pub fn isolated_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for key in [
        "GUNICORN_CMD_ARGS",
        "WEB_CONCURRENCY",
        "PORT",
        "SCRIPT_NAME",
        "VIRTUAL_ENV",
        "FORWARDED_ALLOW_IPS",
    ] {
        cmd.env_remove(key);
    }
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    let venv = venv_dir();
    if venv.join("bin/python").exists() {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("VIRTUAL_ENV", &venv);
        cmd.env("PATH", format!("{}:{path}", venv.join("bin").display()));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_parses_listening_lines() {
        let tcp = |a: &str| Listener::Tcp(a.parse().unwrap());
        let cases: Vec<(&str, Vec<Listener>)> = vec![
            ("[2026-11-23 21:09:48 +0000] [7] [INFO] Listening at: http://127.0.0.1:8000 (7)", vec![tcp("127.0.0.1:8000")]),
            ("[2026-11-23 21:09:48 +0000] [7] [INFO] Listening at: http://[::1]:9 (7)", vec![tcp("[::1]:9")]),
            ("[2026-11-23 21:09:48 +0000] [7] [INFO] Listening at: https://127.0.0.1:8443 (7)", vec![tcp("127.0.0.1:8443")]),
            (
                "[2026-11-23 21:09:48 +0000] [7] [INFO] Listening at: unix:/tmp/s.sock (7)",
                vec![Listener::Unix(PathBuf::from("/tmp/s.sock"))],
            ),
            (
                "[2026-11-23 21:09:48 +0000] [7] [INFO] Listening at: http://0.0.0.0:1,unix:/tmp/a b.sock (7)",
                vec![tcp("0.0.0.0:1"), Listener::Unix(PathBuf::from("/tmp/a b.sock"))],
            ),
            ("[2026-11-23 21:09:48 +0000] [7] [INFO] Using worker: sync", vec![]),
        ];
        for (line, want) in &cases {
            assert_eq!(&parse_listening(line), want, "{line}");
        }
    }

    #[test]
    fn harness_reads_worker_counts_from_args() {
        let cases: &[(&[&str], Option<usize>)] = &[
            (&["--workers=5", "app"], Some(5)),
            (&["--workers", "5", "app"], Some(5)),
            (&["-w", "3", "app"], Some(3)),
            (&["-w4", "app"], Some(4)),
            (&["-b", "127.0.0.1:0", "app"], None),
        ];
        for (args, want) in cases {
            assert_eq!(workers_in(args), *want, "{args:?}");
        }
    }
}
