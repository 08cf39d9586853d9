//! The master: binds the listeners once, forks workers, reaps and respawns them, and
//! acts on signals. Signal handlers only enqueue (see [`crate::sys::install_signal_pipe`]);
//! every action happens in [`Arbiter::run`]'s loop, in one `match`.

mod control;
mod control_cmds;
mod daemon;
mod hooks;
mod inherit;
pub mod pidfile;
mod ready;
mod reap;
mod reexec;

pub use reexec::{record_start, record_start_as};

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::config::Config;
use crate::python::PythonEnv;
use crate::scoreboard;
use crate::sock::Listener;
use crate::sys::{self, Forked};
use crate::worker;

const MASTER_SIGNALS: [Signal; 10] = [
    Signal::SIGHUP,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

/// Where the master is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// Workers were told to stop; they are killed at `deadline`.
    Stopping {
        deadline: Instant,
    },
}

/// One live worker.
struct WorkerSlot {
    /// Spawn order, so TTOU and reloads retire the oldest first.
    age: u64,
    /// Its index in the heartbeat table.
    heartbeat: usize,
    /// SIGABRT was sent for a timeout; the next check sends SIGKILL.
    aborted: bool,
    duty: Duty,
}

/// What the master expects of a worker. A retiring one (TTOU, HUP, fewer workers after
/// a reload) was sent TERM and finishes what it holds; it no longer counts towards
/// `--workers`, but stays in the table — under `--timeout`, and until it is reaped —
/// so a call stuck in it is still aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Duty {
    Serving,
    Retiring,
}

pub struct Arbiter {
    config: Config,
    env: PythonEnv,
    listeners: Vec<Listener>,
    signals: UnixStream,
    workers: BTreeMap<Pid, WorkerSlot>,
    heartbeats: scoreboard::HeartbeatTable,
    num_workers: u32,
    next_age: u64,
    phase: Phase,
    pid: Pid,
    /// Set when the master must exit with this status (a boot failure).
    exit_code: Option<i32>,
    /// `--pid`: removed when the arbiter is dropped (the master's exit).
    pidfile: Option<pidfile::Pidfile>,
    /// Who handed over the listeners (systemd's are never unlinked).
    origin: inherit::Origin,
    /// USR2: the new master this one started, or the old master that started it.
    lineage: reexec::Lineage,
    /// What the service manager was last told.
    readiness: ready::Readiness,
    /// The control socket (`gunicornc`, `rustcorn ctl`), once started.
    control: Option<control::ControlServer>,
    /// What `show stats` reports.
    stats: control_cmds::Stats,
}

/// `rustcorn: master [NAME]`, with Gunicorn's `.2` after NAME while this master is
/// a USR2 child not yet promoted.
pub(super) fn set_master_title(config: &Config, reexec_child: bool) {
    let suffix = if reexec_child { ".2" } else { "" };
    sys::set_process_title(&format!("rustcorn: master [{}{suffix}]", config.proc_name));
}

impl Arbiter {
    /// Binds every listener and installs the signal queue; workers start in [`run`].
    pub fn new(config: Config, env: PythonEnv) -> Result<Arbiter, String> {
        tracing::info!("Starting rustcorn {}", env!("CARGO_PKG_VERSION"));
        // on_starting runs before the sockets are bound, as in Gunicorn.
        hooks::start(&config, &env)?;
        // Unix sockets are created under --umask (Gunicorn's default 0: mode 0777).
        let old_umask = sys::set_umask(config.ops.umask);
        let opened = inherit::open(&config);
        sys::set_umask(old_umask);
        let inherit::Opened { listeners, origin } = opened?;
        let lineage = reexec::Lineage::from_env();
        let pidfile = daemon::after_bind(&config, lineage.parent.is_some()).inspect_err(|_| {
            if origin == inherit::Origin::Bound {
                listeners.iter().for_each(Listener::cleanup);
            }
        })?;
        let pid = nix::unistd::getpid();
        for l in &listeners {
            let url = l.to_string();
            match &config.tls.server {
                // Gunicorn shows the scheme the listener speaks.
                Some(_) => tracing::info!(
                    "Listening at: {} ({pid})",
                    url.replacen("http://", "https://", 1)
                ),
                None => tracing::info!("Listening at: {url} ({pid})"),
            }
        }
        tracing::info!("Using worker: {}", config.worker_class.name());
        if let Some(alias) = &config.worker_class_alias {
            tracing::info!("{alias} is served by rustcorn's own asgi worker");
        }
        config
            .tls
            .warnings
            .iter()
            .for_each(|w| tracing::warn!("{w}"));
        log_http2_fallbacks(&config);
        let signals =
            sys::install_signal_pipe(&MASTER_SIGNALS).map_err(|e| format!("signals: {e}"))?;
        sys::ignore_signal(Signal::SIGPIPE);
        set_master_title(&config, lineage.parent.is_some());
        let heartbeats =
            scoreboard::HeartbeatTable::new().map_err(|e| format!("heartbeat table: {e}"))?;
        Ok(Arbiter {
            heartbeats,
            num_workers: config.workers,
            config,
            env,
            listeners,
            signals,
            workers: BTreeMap::new(),
            next_age: 0,
            phase: Phase::Running,
            pid,
            exit_code: None,
            pidfile,
            origin,
            lineage,
            readiness: ready::Readiness::Starting,
            control: None,
            stats: control_cmds::Stats::new(),
        })
    }

    /// The master loop; returns the process exit status.
    pub fn run(mut self) -> i32 {
        // As in Gunicorn: the app is preloaded while the arbiter is set up, then
        // when_ready runs.
        if self.config.preload.app {
            self.preload();
        }
        if let Err(e) = self.hook_when_ready() {
            tracing::error!(target: crate::log::EXCEPTION, "{e}");
            if self.owns_socket_files() {
                self.listeners.iter().for_each(Listener::cleanup);
            }
            return 1;
        }
        self.control = control::ControlServer::start(&self.config.control);
        loop {
            for sig in self.wait_for_signals(self.tick()) {
                self.handle(sig);
            }
            self.serve_control();
            self.reap();
            match self.phase {
                Phase::Running => {
                    self.murder_workers();
                    self.manage_workers();
                    self.maybe_promote();
                    self.check_ready();
                }
                Phase::Stopping { deadline } => {
                    if self.workers.is_empty() {
                        break;
                    }
                    if Instant::now() >= deadline {
                        self.signal_all(Signal::SIGKILL);
                    }
                }
            }
        }
        if let Some(server) = self.control.take() {
            server.remove();
        }
        if self.owns_socket_files() {
            self.listeners.iter().for_each(Listener::cleanup);
        }
        tracing::info!("Shutting down: {}", self.master_name());
        // The pid file goes before the process does (Gunicorn's halt()).
        drop(self.pidfile.take());
        let code = self.exit_code.unwrap_or(0);
        match code {
            worker::WORKER_BOOT_ERROR => tracing::info!("Reason: Worker failed to boot."),
            worker::APP_LOAD_ERROR => tracing::info!("Reason: App failed to load."),
            _ => {}
        }
        self.hook_on_exit();
        code
    }

    /// Waits up to `timeout` for queued signals and returns them in arrival order.
    fn wait_for_signals(&mut self, timeout: Duration) -> Vec<Signal> {
        {
            use std::os::fd::AsFd;
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            if let Some(server) = &self.control {
                fds.extend(
                    server
                        .poll_fds()
                        .into_iter()
                        .map(|(fd, f)| PollFd::new(fd, f)),
                );
            }
            let millis = PollTimeout::try_from(timeout.as_millis().min(60_000) as i32)
                .unwrap_or(PollTimeout::NONE);
            let _ = poll(&mut fds, millis);
        }
        let mut bytes = [0u8; 64];
        let mut out = Vec::new();
        while let Ok(n) = self.signals.read(&mut bytes) {
            if n == 0 {
                break;
            }
            out.extend(
                bytes[..n]
                    .iter()
                    .filter_map(|&b| Signal::try_from(i32::from(b)).ok()),
            );
        }
        out
    }

    fn handle(&mut self, sig: Signal) {
        if sig != Signal::SIGCHLD {
            tracing::info!("Handling signal: {}", signal_name(sig));
        }
        match sig {
            Signal::SIGCHLD => {}
            Signal::SIGTERM => self.stop(true),
            Signal::SIGINT | Signal::SIGQUIT => self.stop(false),
            Signal::SIGHUP if self.phase == Phase::Running => {
                self.reopen_master_logs();
                self.notify_reloading();
                self.reload();
            }
            Signal::SIGHUP => tracing::info!("Ignoring HUP: the server is stopping"),
            Signal::SIGTTIN | Signal::SIGTTOU if self.phase != Phase::Running => {}
            Signal::SIGTTIN => {
                self.num_workers += 1;
                self.hook_nworkers_changed(self.num_workers - 1);
                self.manage_workers();
            }
            Signal::SIGTTOU => {
                // Never below one (and none stays none after WINCH), as in Gunicorn.
                let old = self.num_workers;
                if self.num_workers > 1 {
                    self.num_workers -= 1;
                }
                if self.num_workers != old {
                    self.hook_nworkers_changed(old);
                }
                self.manage_workers();
            }
            Signal::SIGUSR1 => self.reopen_logs(),
            Signal::SIGWINCH => self.winch(),
            Signal::SIGUSR2 if self.phase == Phase::Running => self.reexec(),
            Signal::SIGUSR2 => {}
            _ => tracing::info!("Signal {} is not handled by this version", signal_name(sig)),
        }
    }

    /// TERM asks workers to finish their requests; INT/QUIT to exit at once. Either
    /// way the workers are killed once `--graceful-timeout` runs out.
    fn stop(&mut self, graceful: bool) {
        if let Phase::Stopping { .. } = self.phase {
            if graceful {
                return;
            }
        }
        if self.phase == Phase::Running {
            self.notify_stopping();
        }
        let deadline = Instant::now() + Duration::from_secs(self.config.graceful_timeout);
        self.phase = Phase::Stopping { deadline };
        self.signal_all(if graceful {
            Signal::SIGTERM
        } else {
            Signal::SIGQUIT
        });
    }

    /// HUP: a new generation of workers with freshly imported app code, then the old
    /// generation retires gracefully.
    fn reload(&mut self) {
        self.reread_config();
        let old: Vec<Pid> = self.serving().map(|(&pid, _)| pid).collect();
        for _ in 0..self.num_workers {
            self.spawn_worker();
        }
        self.stats.reloads += 1;
        self.stats.workers_killed += old.len() as u64;
        for pid in old {
            self.retire(pid);
        }
    }

    /// The workers that count towards `--workers`.
    fn serving(&self) -> impl Iterator<Item = (&Pid, &WorkerSlot)> {
        self.workers.iter().filter(|(_, w)| w.duty == Duty::Serving)
    }

    /// Asks a worker to finish what it holds and exit (TERM); it stays supervised.
    fn retire(&mut self, pid: Pid) {
        if let Some(w) = self.workers.get_mut(&pid) {
            if w.duty == Duty::Serving {
                w.duty = Duty::Retiring;
                sys::kill(pid, Signal::SIGTERM);
            }
        }
    }

    fn signal_all(&mut self, sig: Signal) {
        if matches!(sig, Signal::SIGTERM | Signal::SIGKILL) {
            self.stats.workers_killed += self.workers.len() as u64;
        }
        for &pid in self.workers.keys() {
            sys::kill(pid, sig);
        }
    }

    /// Spawns or retires workers until their number matches `num_workers`.
    fn manage_workers(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        while (self.serving().count() as u32) < self.num_workers {
            if !self.spawn_worker() {
                break;
            }
        }
        while (self.serving().count() as u32) > self.num_workers {
            let oldest = self.serving().min_by_key(|(_, w)| w.age).map(|(&p, _)| p);
            match oldest {
                Some(pid) => {
                    self.retire(pid);
                    self.stats.workers_killed += 1;
                }
                None => break,
            }
        }
        crate::log::statsd::workers(self.serving().count());
        if self.config.logging.backlog_metric {
            self.send_backlog();
        }
    }

    fn spawn_worker(&mut self) -> bool {
        let Some(slot) = self.heartbeats.claim() else {
            tracing::error!("Cannot start more than {} workers", scoreboard::MAX_WORKERS);
            return false;
        };
        self.hook_pre_fork(self.next_age + 1);
        match sys::fork_with_signals_blocked() {
            Ok(Forked::Child) => {
                // The worker closes the master's control connections.
                self.control = None;
                scoreboard::install(self.heartbeats.view(slot));
                worker::run(&self.config, &self.listeners, &self.env, self.pid)
            }
            Ok(Forked::Parent(pid)) => {
                let age = self.next_age;
                self.next_age += 1;
                self.stats.workers_spawned += 1;
                self.workers.insert(
                    pid,
                    WorkerSlot {
                        age,
                        heartbeat: slot,
                        aborted: false,
                        duty: Duty::Serving,
                    },
                );
                self.hook_forked(pid);
                true
            }
            Err(e) => {
                self.heartbeats.release(slot);
                tracing::error!("Cannot fork a worker: {e}");
                false
            }
        }
    }

    /// `--enable-backlog-metric`: the connections waiting to be accepted on every TCP
    /// listener, as Gunicorn's arbiter reports them (unix sockets count none).
    fn send_backlog(&self) {
        use std::os::fd::AsFd;
        let backlog: u64 = self
            .listeners
            .iter()
            .filter_map(|l| match l {
                Listener::Tcp(tcp) => sys::accept_queue_len(tcp.as_fd()),
                Listener::Unix { .. } => None,
            })
            .map(u64::from)
            .sum();
        tracing::debug!("socket backlog: {backlog}");
        crate::log::statsd::histogram("gunicorn.backlog", backlog);
    }

    /// Drops a worker from the table and frees its heartbeat slot.
    fn forget(&mut self, pid: Pid) -> bool {
        match self.workers.remove(&pid) {
            Some(w) => {
                self.heartbeats.release(w.heartbeat);
                true
            }
            None => false,
        }
    }

    /// A worker silent for longer than `--timeout` is stuck in an app call: SIGABRT
    /// first (it exits at once), SIGKILL if it is still there on the next check.
    /// Retiring workers too: their stuck call is no less stuck.
    fn murder_workers(&mut self) {
        if self.config.timeout == 0 {
            return;
        }
        let limit = self.config.timeout * 1000;
        for (&pid, w) in self.workers.iter_mut() {
            if self.heartbeats.silence_millis(w.heartbeat) <= limit {
                continue;
            }
            if w.aborted {
                sys::kill(pid, Signal::SIGKILL);
                self.stats.workers_killed += 1;
            } else {
                tracing::error!(target: crate::log::CRITICAL, "WORKER TIMEOUT (pid:{pid})");
                sys::kill(pid, Signal::SIGABRT);
                w.aborted = true;
            }
        }
    }
}

impl Arbiter {
    /// `--preload`: import the app here, before the first fork. A failure stops the
    /// master with the status and message a worker's failed import gives.
    fn preload(&mut self) {
        if let Err(e) = crate::wsgi::preload::preload_app(&self.config, &self.env) {
            self.exit_code = Some(worker::report_boot_error(&self.config, &e));
            self.stop(false);
        }
    }
}

fn describe(addr: &crate::sock::BindAddress) -> String {
    match addr {
        crate::sock::BindAddress::Tcp { host, port } => format!("{host}:{port}"),
        crate::sock::BindAddress::Unix(p) => format!("unix:{}", p.display()),
        crate::sock::BindAddress::Fd(fd) => format!("fd://{fd}"),
    }
}

/// `term`, `hup`… as Gunicorn logs them.
fn signal_name(sig: Signal) -> String {
    sig.as_str().trim_start_matches("SIG").to_ascii_lowercase()
}

/// Gunicorn's HTTP/2 warnings at startup: `h2` listed where it cannot be negotiated
/// (stderr, as Gunicorn's `Config.validate` writes it), and a worker class that does not
/// speak it (once, from the master; its ALPN then offers no `h2`).
fn log_http2_fallbacks(config: &Config) {
    use crate::config::http2::never_negotiated_warning;
    if let Some(w) = never_negotiated_warning(&config.http2, config.tls.server.is_some()) {
        eprintln!("{w}");
    }
    if !config.http2.wants_h2() {
        return;
    }
    match config.worker_class {
        crate::config::WorkerClass::Sync => tracing::warn!(
            "HTTP/2 is not supported by the sync worker. Use gthread, gevent, or asgi workers \
             for HTTP/2 support. Falling back to HTTP/1.1 only."
        ),
        crate::config::WorkerClass::Gthread | crate::config::WorkerClass::Asgi => {}
    }
}
