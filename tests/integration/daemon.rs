//! The files and identities of a server operated like Gunicorn: `-D/--daemon`
//! with `-p/--pid`, WINCH, `-u/--user`, `-g/--group`, `-m/--umask`,
//! `--reuse-port`, and the flags' usage errors.
//!
//! Servers whose log is a file cannot tell the harness their port, so these
//! tests bind a port found free and poll the file or the port.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::client::{get, try_get};
use crate::harness::{
    booted_pids, free_port, process_alive, serve, signal, signal_quietly, wait_for_file,
    wait_until, Scratch, Server, ServerBuilder, EXIT_TIMEOUT, STARTUP,
};
use crate::ops::{children, cmdline, OPS_APP};

/// A `-b` value on a port free right now, and that port.
pub fn free_bind() -> (String, u16) {
    let port = free_port();
    (format!("127.0.0.1:{port}"), port)
}

/// Polls `GET path` until the server answers.
pub fn wait_serving(port: u16, path: &str) {
    wait_until(STARTUP, &format!("an answer on port {port}"), || {
        try_get(port, path).is_ok_and(|r| r.status == 200)
    });
}

/// `Uid:`/`Gid:` (real ids) of a process, from /proc/PID/status.
fn ids_of(pid: u32) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let id = |key: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (id("Uid:"), id("Gid:"))
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
fn stat_field(pid: u32, n: usize) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[n - 3].to_string()
}

/// A daemonized master found through its pid file: killed (with its workers,
/// which follow their master) if the test ends without stopping it.
struct Daemon(u32);

impl Drop for Daemon {
    fn drop(&mut self) {
        if process_alive(self.0) {
            signal_quietly(self.0, "KILL");
        }
    }
}

#[test]
fn daemon_detaches_writes_its_pid_file_serves_and_term_removes_it() {
    let scratch = Scratch::new("daemon");
    let pidfile = scratch.path().join("app.pid");
    let errlog = scratch.path().join("error.log");
    let (bind, port) = free_bind();
    let args = [
        "-b",
        &bind,
        "--chdir",
        "tests/apps",
        "--workers=2",
        "-D",
        "-p",
        pidfile.to_str().unwrap(),
        "--error-logfile",
        errlog.to_str().unwrap(),
        OPS_APP,
    ];
    let out = ServerBuilder::new(&args).run_to_exit(STARTUP);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stderr.is_empty() && out.stdout.is_empty(),
        "{}",
        out.stderr
    );
    // The command returns once the daemon has written its pid file.
    let master: u32 = std::fs::read_to_string(&pidfile)
        .expect("pid file written before the command returned")
        .trim()
        .parse()
        .unwrap();
    let _guard = Daemon(master);
    assert!(process_alive(master));
    assert_eq!(cmdline(master), format!("rustcorn: master [{OPS_APP}]"));
    // Detached: a session of its own (not led by itself: it cannot reacquire
    // a terminal), no controlling terminal.
    let (session, tty) = (stat_field(master, 6), stat_field(master, 7));
    assert_ne!(
        session,
        stat_field(std::process::id(), 6),
        "still in our session"
    );
    assert_ne!(session, master.to_string(), "the daemon leads its session");
    assert_eq!(tty, "0", "the daemon has a controlling terminal");
    wait_serving(port, "/pid");
    let log = wait_for_file(&errlog, STARTUP, |t| booted_pids(t).len() >= 2);
    assert!(
        log.contains(&format!("Listening at: http://{bind} ({master})")),
        "{log}"
    );

    // WINCH: a daemon's workers stop and are not replaced; TTIN brings one back.
    signal(master, "WINCH");
    wait_for_file(&errlog, STARTUP, |t| t.contains("graceful stop of workers"));
    wait_until(STARTUP, "no workers after WINCH", || {
        children(master).is_empty()
    });
    assert!(process_alive(master));
    signal(master, "TTIN");
    wait_serving(port, "/pid");
    assert_eq!(children(master).len(), 1);

    signal(master, "TERM");
    wait_until(EXIT_TIMEOUT, "the daemon to exit", || {
        !process_alive(master)
    });
    assert!(!pidfile.exists(), "pid file left behind after TERM");
}

/// `$(rustcorn -D …)`, `ssh host 'rustcorn -D …'`: the caller reads the command's
/// stdout and stderr through pipes. The daemon keeps neither (they become /dev/null),
/// so both pipes reach end-of-file as soon as the command returns, while the daemon
/// serves on — with the error log left at its default, `-`.
#[test]
fn daemon_lets_go_of_piped_stdout_and_stderr_when_the_command_returns() {
    let scratch = Scratch::new("daemon-pipes");
    let pidfile = scratch.path().join("app.pid");
    let (bind, port) = free_bind();
    let mut launcher = ServerBuilder::new(&[
        "-b",
        &bind,
        "--chdir",
        "tests/apps",
        "-D",
        "-p",
        pidfile.to_str().unwrap(),
        OPS_APP,
    ])
    .spawn();
    let status = launcher
        .wait_exit(STARTUP)
        .unwrap_or_else(|| panic!("-D did not return; log:\n{}", launcher.log()));
    assert_eq!(status.code(), Some(0), "log:\n{}", launcher.log());
    let master: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _guard = Daemon(master);
    assert_ne!(master, launcher.pid);
    // Nothing but the command itself held the pipes: they close with it.
    for (name, stream) in [("stdout", launcher.stdout()), ("stderr", launcher.stderr())] {
        assert!(
            stream.wait_eof(EXIT_TIMEOUT),
            "the daemon still holds the caller's {name}; log:\n{}",
            launcher.log()
        );
    }
    wait_serving(port, "/pid");
    signal(master, "TERM");
    wait_until(EXIT_TIMEOUT, "the daemon to exit", || {
        !process_alive(master)
    });
    assert!(!pidfile.exists(), "pid file left behind after TERM");
}

#[test]
fn daemon_start_up_errors_reach_the_terminal() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = format!("127.0.0.1:{}", taken.local_addr().unwrap().port());
    let scratch = Scratch::new("daemon-err");
    let live_pidfile = scratch.path().join("live.pid");
    std::fs::write(&live_pidfile, format!("{}\n", std::process::id())).unwrap();
    let (free, _) = free_bind();
    // (arguments, exit status, what stderr must say)
    let errfile = scratch.path().join("error.log");
    let cases: [(Vec<&str>, i32, String); 4] = [
        (vec!["-b", &busy], 1, format!("Cannot bind {busy}")),
        // With the log in a file, the terminal is told too.
        (
            vec!["-b", &busy, "--error-logfile", errfile.to_str().unwrap()],
            1,
            format!("rustcorn: error: Cannot bind {busy}"),
        ),
        (
            vec!["-b", &free, "-p", live_pidfile.to_str().unwrap()],
            1,
            format!(
                "Already running on PID {} (or pid file '{}' is stale)",
                std::process::id(),
                live_pidfile.display()
            ),
        ),
        (vec!["-b", &free, "--umask=08"], 2, "'--umask'".to_string()),
    ];
    for (n, (flags, status, says)) in cases.into_iter().enumerate() {
        // A pid file for each run, so a daemon that should not have started
        // can be found and stopped.
        let own = scratch.path().join(format!("case{n}.pid"));
        let mut args = vec!["-D", "--chdir", "tests/apps"];
        if !flags.contains(&"-p") {
            args.extend(["-p", own.to_str().unwrap()]);
        }
        args.extend(flags.iter().copied());
        args.push(OPS_APP);
        let out = ServerBuilder::new(&args).run_to_exit(EXIT_TIMEOUT);
        let _started = std::fs::read_to_string(&own)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .map(Daemon);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(&says),
            "{args:?}: want {says:?} in:\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains("Booting worker"), "{}", out.stderr);
    }
    // The live process's pid file is left alone.
    assert_eq!(
        std::fs::read_to_string(&live_pidfile).unwrap(),
        format!("{}\n", std::process::id())
    );
}

#[test]
fn pid_file_holds_the_master_pid_and_every_stop_signal_removes_it() {
    let scratch = Scratch::new("pidfile");
    let path = scratch.path().join("run").join("app.pid");
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    for sig in ["TERM", "INT", "QUIT"] {
        // A stale pid file (no such process) is replaced.
        std::fs::write(&path, "4194304\n").unwrap();
        let mut server = serve(OPS_APP, &["-p", path.to_str().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", server.pid)
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let status = server.stop_with(sig);
        assert_eq!(status.code(), Some(0), "SIG{sig}: {}", server.log());
        assert!(!path.exists(), "SIG{sig} left the pid file");
    }
    // Nothing else was left in the directory (no temporary files).
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        0
    );
}

#[test]
fn user_and_group_switch_the_workers_and_the_master_stays_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs the server as root (its workers switch to nobody)"
    );
    let scratch = Scratch::new("user");
    let access = scratch.path().join("access.log");
    // (flags, the workers' uid, gid, and groups as /ids reports them)
    let cases: [(&[&str], u32, u32, &str); 3] = [
        (&["--user", "nobody"], 65534, 0, "0"),
        (&["-u", "65534", "-g", "65534"], 65534, 65534, "65534"),
        (
            &["-u", "nobody", "-g", "65534", "--initgroups"],
            65534,
            65534,
            "65534",
        ),
    ];
    for (flags, uid, gid, groups) in cases {
        let _ = std::fs::remove_file(&access);
        let mut extra = vec!["--workers=2", "--access-logfile", access.to_str().unwrap()];
        extra.extend_from_slice(flags);
        let server = serve(OPS_APP, &extra);
        assert_eq!(
            ids_of(server.pid),
            (0, 0),
            "{flags:?}: the master stays root"
        );
        // A worker switches after its interpreter starts, before the app loads.
        for pid in &server.worker_pids {
            let what = format!("{flags:?}: worker {pid} as {uid}:{gid}");
            wait_until(STARTUP, &what, || ids_of(*pid) == (uid, gid));
        }
        let ids = get(server.port(), "/ids").text();
        let fields: Vec<&str> = ids.split(' ').collect();
        assert_eq!(
            fields[..3],
            [uid.to_string().as_str(), gid.to_string().as_str(), groups],
            "{flags:?}"
        );
        // The access log is given to the workers' user, and they write to it.
        let meta = std::fs::metadata(&access).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{flags:?}");
        wait_for_file(&access, STARTUP, |t| t.contains("GET /ids "));
    }
}

#[test]
fn umask_sets_the_mode_of_unix_sockets_as_gunicorn_reads_it() {
    // (flags, socket mode): Gunicorn's default umask is 0; a leading 0 is octal.
    let cases: [(&[&str], u32); 4] = [
        (&[], 0o777),
        (&["--umask", "0o027"], 0o750),
        (&["-m", "23"], 0o750),
        (&["--umask=0022"], 0o755),
    ];
    let scratch = Scratch::new("umask");
    let sock = scratch.path().join("s.sock");
    let bind = format!("unix:{}", sock.display());
    for (flags, mode) in cases {
        let mut args = vec!["-b", bind.as_str(), "--chdir", "tests/apps"];
        args.extend_from_slice(flags);
        args.push(OPS_APP);
        let server = ServerBuilder::new(&args).start();
        let got = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "{flags:?}: mode {got:o}, log:\n{}", server.log());
    }
}

#[test]
fn reuse_port_lets_two_servers_bind_one_port() {
    let (bind, port) = free_bind();
    let args = |reuse: bool| {
        let mut a = vec!["-b", bind.as_str(), "--chdir", "tests/apps"];
        if reuse {
            a.push("--reuse-port");
        }
        a.push(OPS_APP);
        a
    };
    let first: Server = ServerBuilder::new(&args(true)).start();
    let second: Server = ServerBuilder::new(&args(true)).start();
    // Both serve on the one port: the kernel spreads connections over them.
    let pids: BTreeSet<u32> = (0..200)
        .map(|_| get(port, "/pid").text().parse::<u32>().unwrap())
        .collect();
    let workers: BTreeSet<u32> = [first.worker_pids[0], second.worker_pids[0]].into();
    assert!(pids.is_subset(&workers), "{pids:?} vs {workers:?}");
    let without = ServerBuilder::new(&args(false)).run_to_exit(EXIT_TIMEOUT);
    assert_eq!(without.status.code(), Some(1), "{}", without.stderr);
    assert!(
        without.stderr.contains(&format!("Cannot bind {bind}")),
        "{}",
        without.stderr
    );
}

#[test]
fn operations_flags_reject_bad_values_naming_the_flag() {
    let cases: [(&[&str], &str); 7] = [
        (&["--worker-tmp-dir", "/no/such/dir"], "--worker-tmp-dir"),
        (&["--user", "no-such-user-rc"], "--user"),
        (&["-g", "no-such-group-rc"], "--group"),
        (&["--umask", "0o1000"], "--umask"),
        (&["-m", "rw"], "--umask"),
        (&["--max-requests=-1"], "--max-requests"),
        (&["--max-requests-jitter=x"], "--max-requests-jitter"),
    ];
    for (flags, flag) in cases {
        let mut args = flags.to_vec();
        args.push(OPS_APP);
        let out = ServerBuilder::new(&args).run_to_exit(EXIT_TIMEOUT);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(flag), "{flags:?}: {}", out.stderr);
    }
    // An existing --worker-tmp-dir is accepted (the heartbeat needs no file).
    let server = serve(OPS_APP, &["--worker-tmp-dir", "/tmp"]);
    assert_eq!(get(server.port(), "/pid").status, 200);
}

/// `-D -R` keeps the stdio the command was started with (Gunicorn's
/// `--enable-stdio-inheritance`); `-D` alone sends it to /dev/null when no log goes
/// there. The error log is a file in both cases, so only the app's own stderr
/// write can reach the launcher's stderr.
#[test]
fn enable_stdio_inheritance_keeps_the_daemons_stderr() {
    for (flags, kept) in [(&["-R"][..], true), (&[][..], false)] {
        let scratch = Scratch::new("daemon-stdio");
        let pidfile = scratch.path().join("app.pid");
        let errors = scratch.path().join("error.log");
        let (bind, port) = free_bind();
        let mut args = vec![
            "-b",
            &bind,
            "--chdir",
            "tests/apps",
            "-D",
            "-p",
            pidfile.to_str().unwrap(),
            "--error-logfile",
            errors.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        args.push(OPS_APP);
        let launcher = ServerBuilder::new(&args).spawn();
        wait_serving(port, "/pid");
        let master: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _guard = Daemon(master);
        assert_eq!(get(port, "/stderr?inherited").text(), "written");
        // The write happened before the answer; a kept stream shows it at once.
        let shown =
            launcher.log_shows_since(0, "stderr: inherited", std::time::Duration::from_secs(2));
        assert_eq!(
            shown,
            kept,
            "{flags:?}: launcher stderr:\n{}",
            launcher.log()
        );
        signal(master, "TERM");
        wait_until(EXIT_TIMEOUT, "the daemon to exit", || {
            !process_alive(master)
        });
    }
}
