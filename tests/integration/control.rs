//! The control socket (Gunicorn 25.1+'s `--control-socket`): Gunicorn's own `gunicornc`
//! (from PyPI, in the test venv) and `rustcorn ctl` drive every command, and what they
//! show matches `ps` and `--print-config`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::client::get;
use crate::harness::{
    isolated_command, server_program, venv_dir, wait_until, Scratch, Server, ServerBuilder, STARTUP,
};
use crate::json::Json;

/// The two clients: Gunicorn's, and ours.
#[derive(Clone, Copy, Debug)]
enum Client {
    Gunicornc,
    RustcornCtl,
}

const CLIENTS: [Client; 2] = [Client::Gunicornc, Client::RustcornCtl];

fn client_command(client: Client, socket: &Path) -> Command {
    let mut cmd = match client {
        Client::Gunicornc => {
            let program = venv_dir().join("bin/gunicornc");
            assert!(
                program.exists(),
                "{} is missing: the test setup installs gunicorn",
                program.display()
            );
            isolated_command(program)
        }
        Client::RustcornCtl => {
            let mut cmd = isolated_command(server_program());
            cmd.arg("ctl");
            cmd
        }
    };
    cmd.arg("-s").arg(socket);
    cmd
}

/// Runs `command` with `-j`; the reply as JSON, and whether the client succeeded.
fn ctl(client: Client, socket: &Path, command: &str) -> (Json, bool) {
    let out = client_command(client, socket)
        .args(["-j", "-c", command])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = if text.trim().is_empty() {
        Json::Null
    } else {
        Json::parse(&text)
    };
    if doc == Json::Null && out.status.success() {
        panic!("{client:?} {command:?}: no JSON\nstdout: {text}\nstderr: {err}");
    }
    (doc, out.status.success())
}

fn ok(client: Client, socket: &Path, command: &str) -> Json {
    let (doc, success) = ctl(client, socket, command);
    assert!(success, "{client:?} {command:?} failed: {doc:?}");
    doc
}

fn start(dir: &Scratch, extra: &[&str]) -> (Server, PathBuf) {
    let socket = dir.path().join("ctl.sock");
    let mut args = vec![
        "-b",
        "127.0.0.1:0",
        "--chdir",
        "tests/apps",
        "--control-socket",
        socket.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push("hello");
    (ServerBuilder::new(&args).start(), socket)
}

/// The workers `ps` shows under the master.
fn ps_workers(master: u32) -> Vec<u32> {
    let out = Command::new("ps")
        .args(["--ppid", &master.to_string(), "-o", "pid=,args="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("rustcorn: worker"))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

fn shown_workers(client: Client, socket: &Path) -> Vec<u32> {
    let doc = ok(client, socket, "show workers");
    let mut pids: Vec<u32> = doc
        .at("workers")
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.at("pid").as_i64().unwrap() as u32)
        .collect();
    pids.sort();
    pids
}

fn settle(master: u32, want: usize) -> Vec<u32> {
    wait_until(STARTUP, &format!("{want} workers under {master}"), || {
        ps_workers(master).len() == want
    });
    let mut pids = ps_workers(master);
    pids.sort();
    pids
}

#[test]
fn workers_are_shown_added_removed_and_killed_by_both_clients() {
    let dir = Scratch::new("control");
    let (server, socket) = start(&dir, &["--workers=2"]);
    let master = server.pid;
    let mut target: usize = 2;
    for client in CLIENTS {
        let ps = settle(master, target);
        assert_eq!(
            shown_workers(client, &socket),
            ps,
            "{client:?} show workers = ps"
        );
        let added = ok(client, &socket, "worker add 2");
        assert_eq!(
            (added.at("added").as_i64(), added.at("total").as_i64()),
            (Some(2), Some(target as i64 + 2)),
            "{client:?}"
        );
        target += 2;
        let ps = settle(master, target);
        wait_until(STARTUP, "show workers matches ps", || {
            shown_workers(client, &socket) == ps
        });
        let removed = ok(client, &socket, "worker remove");
        assert_eq!(removed.at("removed").as_i64(), Some(1), "{client:?}");
        target -= 1;
        let ps = settle(master, target);
        let victim = ps[0];
        let killed = ok(client, &socket, &format!("worker kill {victim}"));
        assert!(
            killed.get("killed").is_some()
                || killed.get("success").and_then(Json::as_bool) == Some(true),
            "{killed:?}"
        );
        wait_until(STARTUP, "a replacement", || {
            let now = ps_workers(master);
            now.len() == target && !now.contains(&victim)
        });
        let (err, success) = ctl(client, &socket, "worker kill 1");
        assert!(
            !success || err.get("success").and_then(Json::as_bool) == Some(false),
            "{client:?}: {err:?}"
        );
    }
    assert_eq!(get(server.port(), "/").status, 200);
}

#[test]
fn stats_listeners_all_config_and_help_match_the_server() {
    let dir = Scratch::new("control-show");
    let (server, socket) = start(&dir, &["--workers=3", "--timeout", "17"]);
    let printed = ServerBuilder::new(&[
        "-b",
        "127.0.0.1:0",
        "--chdir",
        "tests/apps",
        "--workers=3",
        "--timeout",
        "17",
        "--print-config",
        "hello",
    ])
    .run_to_exit(Duration::from_secs(60));
    let print_value = |name: &str| -> String {
        printed
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap()
            .split_once(" = ")
            .unwrap()
            .1
            .trim()
            .to_string()
    };
    for client in CLIENTS {
        let stats = ok(client, &socket, "show stats");
        assert_eq!(
            stats.at("pid").as_i64(),
            Some(i64::from(server.pid)),
            "{client:?} {stats:?}"
        );
        assert_eq!(stats.at("workers_current").as_i64(), Some(3), "{stats:?}");
        let config = ok(client, &socket, "show config");
        for name in [
            "workers",
            "timeout",
            "graceful_timeout",
            "keepalive",
            "worker_connections",
            "threads",
            "max_requests",
        ] {
            let shown = match config.at(name) {
                Json::Num(n) => format!("{n}"),
                other => format!("{other:?}"),
            };
            assert_eq!(shown, print_value(name), "{client:?}: {name}");
        }
        assert_eq!(
            config.at("worker_class").as_str(),
            Some(print_value("worker_class").as_str())
        );
        let listeners = ok(client, &socket, "show listeners");
        let text = format!("{listeners:?}");
        assert!(
            text.contains(&format!("127.0.0.1:{}", server.port())),
            "{client:?} {text}"
        );
        let all = ok(client, &socket, "show all");
        assert_eq!(
            all.at("arbiter").at("pid").as_i64(),
            Some(i64::from(server.pid))
        );
        assert_eq!(all.at("web_worker_count").as_i64(), Some(3));
        let help = ok(client, &socket, "help");
        let help = format!("{help:?}");
        for command in [
            "show workers",
            "worker add",
            "worker kill",
            "reload",
            "reopen",
            "shutdown",
        ] {
            assert!(
                help.contains(command),
                "{client:?} help lacks {command}: {help}"
            );
        }
        let (_, success) = ctl(client, &socket, "no such command");
        assert!(!success, "{client:?}: an unknown command is an error");
    }
}

#[test]
fn reload_reopen_and_shutdown() {
    let dir = Scratch::new("control-ops");
    let access = dir.path().join("access.log");
    for (client, mode) in [
        (Client::Gunicornc, "graceful"),
        (Client::RustcornCtl, "quick"),
    ] {
        let _ = std::fs::remove_file(&access);
        let (mut server, socket) = start(
            &dir,
            &["--workers=2", "--access-logfile", access.to_str().unwrap()],
        );
        let master = server.pid;
        let before = settle(master, 2);
        assert_eq!(
            ok(client, &socket, "reload").at("status").as_str(),
            Some("reloading")
        );
        wait_until(STARTUP, "new workers after reload", || {
            let now = ps_workers(master);
            now.len() == 2 && now.iter().all(|p| !before.contains(p))
        });
        assert_eq!(get(server.port(), "/").status, 200);
        let rotated = dir.path().join("access.log.1");
        wait_until(STARTUP, "an access line", || {
            std::fs::read_to_string(&access).is_ok_and(|t| !t.is_empty())
        });
        std::fs::rename(&access, &rotated).unwrap();
        assert_eq!(
            ok(client, &socket, "reopen").at("status").as_str(),
            Some("reopening")
        );
        wait_until(STARTUP, "the log reopened", || {
            let _ = get(server.port(), "/");
            access.exists()
        });
        let reply = ok(client, &socket, &format!("shutdown {mode}"));
        assert_eq!(reply.at("mode").as_str(), Some(mode));
        let status = server
            .wait_exit(Duration::from_secs(30))
            .expect("the master exits");
        assert!(status.success(), "{client:?}: {status:?}");
        assert!(!socket.exists(), "the socket is removed on exit");
    }
}

#[test]
fn socket_mode_disable_default_path_and_bad_frames() {
    let dir = Scratch::new("control-socket");
    let (server, socket) = start(&dir, &["--control-socket-mode", "0o660"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o660
    );
    // Bad frames: a huge length, JSON that is not a request, bytes that are not JSON.
    use std::io::{Read, Write};
    for frame in [
        (u32::MAX).to_be_bytes().to_vec(),
        [&5u32.to_be_bytes()[..], b"[1,2]"].concat(),
        [&3u32.to_be_bytes()[..], b"{x}"].concat(),
    ] {
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&frame).unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        if reply.len() > 4 {
            let text = String::from_utf8_lossy(&reply[4..]);
            assert!(text.contains("error"), "{text}");
        }
    }
    assert_eq!(get(server.port(), "/").status, 200, "the master serves on");
    assert_eq!(shown_workers(Client::RustcornCtl, &socket).len(), 1);
    // Interactive: commands on stdin, one reply each.
    let mut child = client_command(Client::RustcornCtl, &socket)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"show stats\nshow listeners\nquit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("PID:              {}", server.pid)),
        "{text}"
    );
    assert!(
        text.contains(&format!("127.0.0.1:{}", server.port())),
        "{text}"
    );
    drop(server);

    // --no-control-socket: none; the default path: $XDG_RUNTIME_DIR/gunicorn.ctl.
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let args = [
        "-b",
        "127.0.0.1:0",
        "--chdir",
        "tests/apps",
        "--no-control-socket",
        "hello",
    ];
    let server = ServerBuilder::new(&args)
        .env("XDG_RUNTIME_DIR", runtime.to_str().unwrap())
        .start();
    assert!(!runtime.join("gunicorn.ctl").exists());
    drop(server);
    let args = ["-b", "127.0.0.1:0", "--chdir", "tests/apps", "hello"];
    let server = ServerBuilder::new(&args)
        .env("XDG_RUNTIME_DIR", runtime.to_str().unwrap())
        .start();
    let default = runtime.join("gunicorn.ctl");
    wait_until(STARTUP, "the default socket", || default.exists());
    assert_eq!(shown_workers(Client::Gunicornc, &default).len(), 1);
    drop(server);
}
