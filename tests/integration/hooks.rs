//! Gunicorn's server hooks from a config file (tests/configs/hooks_record.py, each
//! hook appending a line to `$HOOKS_RECORD`), called at Gunicorn's points with working
//! `server`/`worker`/`req`/`resp` objects; a hook that raises is logged and the server
//! keeps serving; HUP re-reads the config file.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{get, request, try_get, Conn};
use crate::harness::{
    app_args, free_port, process_alive, signal, wait_for_file, wait_until, Scratch, Server,
    ServerBuilder, STARTUP,
};

const CONFIG: &str = "tests/configs/hooks_record.py";
const APP: &str = "hooks_app:application";

/// The recorded hook calls, one `Vec` of fields per line.
fn calls(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

/// Waits until `count` calls satisfy `pred`; returns every call so far.
fn wait_calls(
    path: &Path,
    what: &str,
    count: usize,
    pred: impl Fn(&[String]) -> bool,
) -> Vec<Vec<String>> {
    let text = wait_for_file(path, STARTUP, |text| {
        text.lines()
            .filter(|l| pred(&l.split(' ').map(str::to_string).collect::<Vec<_>>()))
            .count()
            >= count
    });
    assert!(!text.is_empty(), "{what}");
    calls(path)
}

fn named<'a>(calls: &'a [Vec<String>], name: &str) -> Vec<&'a Vec<String>> {
    calls.iter().filter(|c| c[0] == name).collect()
}

fn position(calls: &[Vec<String>], pred: impl Fn(&Vec<String>) -> bool) -> usize {
    calls
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("call not found in {calls:#?}"))
}

fn start(dir: &Scratch, extra: &[&str]) -> (Server, std::path::PathBuf) {
    let record = dir.path().join("calls.txt");
    let mut args = vec!["-c", CONFIG, "--workers=2"];
    args.extend_from_slice(extra);
    let server = ServerBuilder::new(&app_args(APP, &args))
        .env("HOOKS_RECORD", record.to_str().unwrap())
        .start();
    (server, record)
}

#[test]
fn startup_requests_and_shutdown_call_every_hook_in_order() {
    let dir = Scratch::new("hooks");
    let (mut server, record) = start(&dir, &[]);
    let master = server.pid.to_string();
    let all = wait_calls(&record, "workers booted", 2, |c| c[0] == "post_worker_init");
    // Gunicorn's setup() assigns num_workers before on_starting.
    assert_eq!(all[0], ["nworkers_changed", "2", "None"]);
    assert_eq!(all[1], ["on_starting", "True", "2", "None"]);
    assert_eq!(all[2][..3], ["when_ready", master.as_str(), "2"]);
    assert!(all[2][3].starts_with("['127.0.0.1:"), "{:?}", all[2]);
    assert!(server.log().contains("when_ready hook ran (2 workers)"));
    for worker in server.worker_pids.clone() {
        let pid = worker.to_string();
        let init = position(&all, |c| c[0] == "post_worker_init" && c[1] == pid);
        let age = all[init][2].clone();
        let fork = position(&all, |c| c[0] == "pre_fork" && c[2] == age);
        let post = position(&all, |c| c[0] == "post_fork" && c[2] == age);
        assert!(2 < fork && fork < post && post < init, "{all:#?}");
        assert_eq!(
            all[fork],
            ["pre_fork", master.as_str(), age.as_str(), "None"]
        );
        assert_eq!(
            all[post],
            ["post_fork", master.as_str(), age.as_str(), "True", "True"]
        );
        assert_eq!(all[init][3..], ["True", "30"]);
    }

    let mut conn = Conn::open(server.port());
    let resp = conn.roundtrip(&request(
        "GET",
        "/a/b?x=1&y=2",
        &[("X-Hook-Test", "yes"), ("Connection", "close")],
        b"",
    ));
    assert_eq!(resp.status, 200);
    let worker = resp.text().split(' ').nth(1).unwrap().to_string();
    let all = wait_calls(&record, "post_request", 1, |c| c[0] == "post_request");
    let pre = named(&all, "pre_request");
    assert_eq!(
        pre[0][1..],
        [
            worker.as_str(),
            "GET",
            "/a/b",
            "x=1&y=2",
            "/a/b?x=1&y=2",
            "(1,",
            "1)",
            "yes"
        ]
    );
    let post = named(&all, "post_request");
    assert_eq!(
        post[0][1..],
        [
            worker.as_str(),
            "/a/b",
            "/a/b",
            "200",
            "OK",
            "200",
            "text/plain",
            resp.body.len().to_string().as_str()
        ]
    );

    let mark = server.log_mark();
    assert_eq!(get(server.port(), "/hook-raises").status, 500);
    let log = server.wait_for_log_since(mark, "RuntimeError: pre_request refuses", STARTUP);
    assert!(log.contains("Traceback (most recent call last)"), "{log}");
    assert!(log.contains("hooks_record.py"), "{log}");
    assert!(
        !log.contains("rustcorn/hooks.py"),
        "the shim's frame is hidden: {log}"
    );
    let all = wait_calls(&record, "post_request of the failure", 2, |c| {
        c[0] == "post_request"
    });
    assert_eq!(
        named(&all, "post_request")[1][2..7],
        ["/hook-raises", "None", "500", "Internal", "Server"]
    );
    assert_eq!(get(server.port(), "/").status, 200, "still serving");

    assert!(server.stop_with("TERM").success());
    let all = calls(&record);
    for worker in &server.worker_pids {
        let pid = worker.to_string();
        let exit = position(&all, |c| c[0] == "worker_exit" && c[2] == pid);
        let child = position(&all, |c| c[0] == "child_exit" && c[2] == pid);
        assert_eq!(all[exit][1], master);
        assert!(exit < child, "{all:#?}");
    }
    assert_eq!(all.last().unwrap(), &strings(&["on_exit", master.as_str()]));
}

#[test]
fn worker_count_signals_kills_and_timeouts_call_their_hooks() {
    let dir = Scratch::new("hooks-sig");
    let (server, record) = start(&dir, &["--timeout=2"]);
    wait_calls(&record, "workers booted", 2, |c| c[0] == "post_worker_init");

    signal(server.pid, "TTIN");
    let all = wait_calls(&record, "third worker", 3, |c| c[0] == "post_worker_init");
    assert!(
        all.contains(&strings(&["nworkers_changed", "3", "2"])),
        "{all:#?}"
    );
    assert_eq!(named(&all, "pre_fork").last().unwrap()[2], "3");

    signal(server.pid, "TTOU");
    let all = wait_calls(&record, "oldest retired", 1, |c| c[0] == "child_exit");
    assert!(
        all.contains(&strings(&["nworkers_changed", "2", "3"])),
        "{all:#?}"
    );
    let retired = &named(&all, "child_exit")[0];
    assert_eq!(retired[3], "1", "TTOU retires the oldest: {all:#?}");
    let retired_pid = retired[2].clone();
    assert!(named(&all, "worker_exit")
        .iter()
        .any(|c| c[2] == retired_pid));

    // INT to a worker: worker_int, then worker_exit, then the master's child_exit.
    let live = live_workers(&record);
    signal(live[0].parse().unwrap(), "INT");
    let all = wait_calls(&record, "interrupted worker", 2, |c| c[0] == "child_exit");
    let int = position(&all, |c| c[0] == "worker_int" && c[1] == live[0]);
    let exit = position(&all, |c| c[0] == "worker_exit" && c[2] == live[0]);
    let child = position(&all, |c| c[0] == "child_exit" && c[2] == live[0]);
    assert!(int < exit && exit < child, "{all:#?}");
    assert_eq!(all[int][2], "False", "worker.alive is False in worker_int");

    // A worker stuck past --timeout gets SIGABRT: worker_abort.
    let port = server.port();
    let mut stuck = Conn::open(port);
    stuck.send(&request("GET", "/sleep", &[("Connection", "close")], b""));
    let all = wait_calls(&record, "aborted worker", 1, |c| c[0] == "worker_abort");
    let aborted = named(&all, "worker_abort")[0][1].clone();
    let all = wait_calls(&record, "aborted worker reaped", 1, |c| {
        c[0] == "child_exit" && c[2] == aborted
    });
    assert!(named(&all, "worker_exit").iter().any(|c| c[2] == aborted));

    // SIGKILL: no worker-side hook can run, the master still calls child_exit.
    let victim = live_workers(&record)[0].clone();
    signal(victim.parse().unwrap(), "KILL");
    wait_calls(&record, "killed worker reaped", 1, |c| {
        c[0] == "child_exit" && c[2] == victim
    });
    assert_eq!(get(port, "/").status, 200);
}

fn strings(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|s| s.to_string()).collect()
}

/// Workers that ran post_worker_init and have no child_exit yet, oldest first.
fn live_workers(record: &Path) -> Vec<String> {
    let all = calls(record);
    named(&all, "post_worker_init")
        .iter()
        .map(|c| c[1].clone())
        .filter(|pid| !all.iter().any(|c| c[0] == "child_exit" && &c[2] == pid))
        .collect()
}

/// Writes the reload test's config file: a greeting through raw_env, a worker count,
/// and an on_reload hook (so the master runs the file in its own interpreter).
fn write_reload_config(path: &Path, greeting: Option<&str>, workers: u32, record: &Path) {
    let raw_env = greeting.map_or(String::new(), |g| format!("'HOOKS_GREETING={g}'"));
    let text = format!(
        "workers = {workers}\nraw_env = [{raw_env}]\n\n\
         def on_reload(server):\n    with open({record:?}, 'a') as f:\n        \
         f.write('on_reload %s %s\\n' % (server.cfg.workers, server.cfg.raw_env))\n"
    );
    std::fs::write(path, text).unwrap();
}

#[test]
fn hup_rereads_the_config_file_with_no_failed_request() {
    let dir = Scratch::new("hooks-hup");
    let config = dir.path().join("conf.py");
    let record = dir.path().join("calls.txt");
    write_reload_config(&config, Some("first"), 1, &record);
    let mut server = ServerBuilder::new(&app_args(APP, &["-c", config.to_str().unwrap()])).start();
    let port = server.port();
    assert!(get(port, "/").text().starts_with("first "));

    let stop = Arc::new(AtomicBool::new(false));
    let answers: Arc<Mutex<Vec<Result<String, String>>>> = Arc::default();
    let client = {
        let (stop, answers) = (stop.clone(), answers.clone());
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(180);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let answer = match try_get(port, "/") {
                    Ok(r) if r.status == 200 => Ok(r.text()),
                    Ok(r) => Err(format!("status {}", r.status)),
                    Err(e) => Err(e.to_string()),
                };
                answers.lock().unwrap().push(answer);
            }
        })
    };
    write_reload_config(&config, Some("second"), 2, &record);
    let mark = server.log_mark();
    signal(server.pid, "HUP");
    server.wait_for_log_since(mark, "Hang up: Master", STARTUP);
    let deadline = Instant::now() + STARTUP;
    let mut pids = std::collections::BTreeSet::new();
    while pids.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "two workers answering 'second'; log:\n{}",
            server.log()
        );
        if let Ok(r) = try_get(port, "/") {
            if let Some(pid) = r.text().strip_prefix("second ") {
                pids.insert(pid.to_string());
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    let answers = answers.lock().unwrap();
    let failed: Vec<_> = answers.iter().filter(|a| a.is_err()).collect();
    assert!(failed.is_empty(), "failed requests during HUP: {failed:?}");
    assert!(
        answers.len() > 5,
        "the client ran throughout: {}",
        answers.len()
    );
    let text = std::fs::read_to_string(&record).unwrap();
    assert_eq!(text, "on_reload 2 ['HOOKS_GREETING=second']\n");
}

#[test]
fn a_failing_post_fork_is_a_worker_boot_failure() {
    let dir = Scratch::new("hooks-boot");
    let config = dir.path().join("conf.py");
    std::fs::write(
        &config,
        "def post_fork(server, worker):\n    \
         raise ValueError('no fork for %s %s' % (worker.age, server.pid == worker.ppid))\n",
    )
    .unwrap();
    let exited =
        ServerBuilder::new(&app_args(APP, &["-c", config.to_str().unwrap()])).run_to_exit(STARTUP);
    assert_eq!(exited.status.code(), Some(3), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("Exception in post_fork hook"),
        "{}",
        exited.stderr
    );
    // The worker ran the file itself (no master-side hook): server.pid is the master.
    assert!(
        exited.stderr.contains("ValueError: no fork for 1 True"),
        "{}",
        exited.stderr
    );
    assert!(
        exited.stderr.contains("Reason: Worker failed to boot."),
        "{}",
        exited.stderr
    );
}

#[test]
fn a_failing_when_ready_stops_the_master_before_it_serves() {
    let dir = Scratch::new("hooks-ready");
    let config = dir.path().join("conf.py");
    std::fs::write(&config, "def when_ready(server):\n    1 / 0\n").unwrap();
    let exited =
        ServerBuilder::new(&app_args(APP, &["-c", config.to_str().unwrap()])).run_to_exit(STARTUP);
    assert_eq!(exited.status.code(), Some(1), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("Exception in when_ready hook"),
        "{}",
        exited.stderr
    );
    assert!(
        exited.stderr.contains("ZeroDivisionError"),
        "{}",
        exited.stderr
    );
    assert!(
        !exited.stderr.contains("Booting worker"),
        "{}",
        exited.stderr
    );
}

#[test]
fn hup_rebinds_when_the_config_file_changes_bind() {
    let dir = Scratch::new("hooks-bind");
    let config = dir.path().join("conf.py");
    let (first, second) = (free_port(), free_port());
    std::fs::write(&config, format!("bind = '127.0.0.1:{first}'\n")).unwrap();
    let conf = config.to_str().unwrap();
    let mut server = Server::start(&["-c", conf, "--chdir", "tests/apps", APP]);
    assert_eq!(server.port(), first);
    assert_eq!(get(first, "/").status, 200);
    std::fs::write(&config, format!("bind = '127.0.0.1:{second}'\n")).unwrap();
    let mark = server.log_mark();
    signal(server.pid, "HUP");
    server.wait_for_log_since(
        mark,
        &format!("Listening at: http://127.0.0.1:{second}"),
        STARTUP,
    );
    let deadline = Instant::now() + STARTUP;
    while try_get(second, "/").map(|r| r.status).ok() != Some(200) {
        assert!(
            Instant::now() < deadline,
            "new bind serves; log:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
    // The old listener closes once the retiring worker, which shares it, has exited.
    let old_worker = server.worker_pids[0];
    wait_until(STARTUP, "the old worker exits", || {
        !process_alive(old_worker)
    });
    assert!(try_get(first, "/").is_err(), "the old listener is closed");
}

#[test]
fn a_raising_master_hook_is_logged_and_the_server_keeps_serving() {
    let dir = Scratch::new("hooks-raise");
    let config = dir.path().join("conf.py");
    std::fs::write(
        &config,
        "def nworkers_changed(server, new, old):\n    \
         if old is not None:\n        raise KeyError('changed to %d' % new)\n",
    )
    .unwrap();
    let mut server = ServerBuilder::new(&app_args(APP, &["-c", config.to_str().unwrap()])).start();
    let mark = server.log_mark();
    signal(server.pid, "TTIN");
    let log = server.wait_for_log_since(mark, "KeyError: 'changed to 2'", STARTUP);
    assert!(log.contains("Exception in nworkers_changed hook"), "{log}");
    assert!(log.contains("Traceback (most recent call last)"), "{log}");
    server.wait_for(STARTUP, "the second worker", |log| {
        log.matches("Booting worker").count() >= 2
    });
    assert_eq!(get(server.port(), "/").status, 200);
}

#[test]
fn hup_puts_back_the_environment_raw_env_replaced() {
    let dir = Scratch::new("hooks-env");
    let config = dir.path().join("conf.py");
    let record = dir.path().join("calls.txt");
    write_reload_config(&config, Some("from-file"), 1, &record);
    let mut server = ServerBuilder::new(&app_args(APP, &["-c", config.to_str().unwrap()]))
        .env("HOOKS_GREETING", "from-environment")
        .start();
    let port = server.port();
    assert!(get(port, "/").text().starts_with("from-file "));
    write_reload_config(&config, None, 1, &record);
    let mark = server.log_mark();
    signal(server.pid, "HUP");
    server.wait_for_log_since(mark, "Hang up: Master", STARTUP);
    wait_until(STARTUP, "the environment's value served", || {
        try_get(port, "/").is_ok_and(|r| r.text().starts_with("from-environment "))
    });
    let text = std::fs::read_to_string(&record).unwrap();
    assert_eq!(text, "on_reload 1 []\n");
}

/// USR2 calls `pre_exec(server)` in the old master before the new one starts.
#[test]
fn usr2_calls_pre_exec_in_the_old_master() {
    let dir = Scratch::new("hooks-usr2");
    let (mut server, record) = start(&dir, &[]);
    wait_calls(&record, "workers booted", 2, |c| c[0] == "post_worker_init");
    crate::harness::signal(server.pid, "USR2");
    let all = wait_calls(&record, "pre_exec", 1, |c| c[0] == "pre_exec");
    assert_eq!(
        named(&all, "pre_exec")[0][1..],
        [server.pid.to_string()],
        "{all:#?}"
    );
    server.wait_for(STARTUP, "the new master", |log| {
        crate::systemd::master_pids(log).len() >= 2
    });
    let new_master = crate::systemd::master_pids(&server.log())[1];
    crate::harness::signal(new_master, "TERM");
    crate::harness::wait_until(
        crate::harness::EXIT_TIMEOUT,
        "the new master to exit",
        || !crate::harness::process_alive(new_master),
    );
}

/// `req.path` in `pre_request`/`post_request` is the environ's `PATH_INFO` for every
/// target form: one splitter serves both (a second one once made `/y` of
/// `/redirect/http://x/y`).
#[test]
fn hooks_req_path_is_the_environs_path_info_for_every_target() {
    let dir = Scratch::new("hooks-path");
    let (server, record) = start(&dir, &[]);
    let targets = [
        ("/redirect/http://x/y", "/redirect/http://x/y"),
        ("http://example.com/abs/path?q=1", "/abs/path"),
        ("/next?to=http://x/y", "/next"),
        ("/plain", "/plain"),
    ];
    for (n, (target, _)) in targets.iter().enumerate() {
        let mut conn = Conn::open(server.port());
        let resp = conn.roundtrip(&request("GET", target, &[("Connection", "close")], b""));
        assert_eq!(resp.status, 200, "{target}: {resp:?}");
        wait_calls(&record, "post_request", n + 1, |c| c[0] == "post_request");
    }
    let all = wait_calls(&record, "post_request", targets.len(), |c| {
        c[0] == "post_request"
    });
    let post = named(&all, "post_request");
    for ((target, path), call) in targets.iter().zip(&post) {
        assert_eq!(call[2..4], [*path, *path], "{target}: req.path, PATH_INFO");
    }
}
