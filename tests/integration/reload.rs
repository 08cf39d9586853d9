//! `--reload`: editing the app's module, or a `--reload-extra-file`, replaces the
//! worker with one running the new code while a client keeps getting answers; both
//! engines; a `SyntaxError` is logged and served as a 500 page until the file is fixed;
//! the config-file spellings.
//!
//! Each test writes its app into a scratch directory it edits. The new source always
//! differs in length from the old: CPython's bytecode cache compares the source's size
//! and whole-second mtime, so a same-size edit within the second would be missed by
//! the import (in Gunicorn too).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::try_get;
use crate::harness::{wait_until, Scratch, Server, ServerBuilder, STARTUP};

/// Once the reloader watches, how long a change may take to show: inotify reacts at
/// once, polling within a second; then a new worker boots on a loaded machine.
const RELOAD: Duration = Duration::from_secs(60);
const WATCHING: &str = "Reloader watching ";

/// The app: answers `VERSION PID`.
fn app_source(version: &str) -> String {
    format!(
        "import os\n\
         VERSION = {version:?}\n\
         def application(environ, start_response):\n\
         \x20   body = ('%s %d' % (VERSION, os.getpid())).encode()\n\
         \x20   start_response('200 OK', [('Content-Type', 'text/plain'),\n\
         \x20                             ('Content-Length', str(len(body)))])\n\
         \x20   return [body]\n"
    )
}

/// The same app for `-k asgi`: answers `VERSION PID`.
fn asgi_app_source(version: &str) -> String {
    format!(
        "import os\n\
         VERSION = {version:?}\n\
         async def application(scope, receive, send):\n\
         \x20   if scope['type'] != 'http':\n\
         \x20       return\n\
         \x20   body = ('%s %d' % (VERSION, os.getpid())).encode()\n\
         \x20   await send({{'type': 'http.response.start', 'status': 200,\n\
         \x20               'headers': [(b'content-length', str(len(body)).encode())]}})\n\
         \x20   await send({{'type': 'http.response.body', 'body': body}})\n"
    )
}

/// Every answer a polling client got: (status, body) or the I/O error.
type Answers = Arc<Mutex<Vec<Result<(u16, String), String>>>>;

/// A client asking `GET /` on a new connection each time until stopped.
struct Poller {
    stop: Arc<AtomicBool>,
    answers: Answers,
    thread: Option<thread::JoinHandle<()>>,
}

impl Poller {
    fn start(port: u16) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let answers: Answers = Arc::default();
        let (s, a) = (stop.clone(), answers.clone());
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(240);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                let answer = try_get(port, "/")
                    .map(|r| (r.status, r.text()))
                    .map_err(|e| e.to_string());
                a.lock().unwrap().push(answer);
                thread::sleep(Duration::from_millis(5));
            }
        });
        Poller {
            stop,
            answers,
            thread: Some(thread),
        }
    }

    /// Waits until an answer satisfies `ok`; returns it.
    fn wait_for(&self, server: &Server, what: &str, ok: impl Fn(u16, &str) -> bool) -> String {
        let deadline = Instant::now() + RELOAD;
        loop {
            let found = self
                .answers
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find_map(|a| match a {
                    Ok((status, body)) if ok(*status, body) => Some(body.clone()),
                    _ => None,
                });
            if let Some(body) = found {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "no answer {what} after {RELOAD:?}; last: {:?}; log:\n{}",
                self.answers.lock().unwrap().last(),
                server.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the client; returns the requests that got no HTTP answer.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().expect("client thread");
        let answers = self.answers.lock().unwrap();
        answers.iter().filter_map(|a| a.clone().err()).collect()
    }
}

/// `VERSION PID` → PID.
fn pid_of(body: &str) -> u32 {
    body.rsplit(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {body:?}"))
}

/// Starts rustcorn on `app:application` in `dir` with `extra` flags, at debug level
/// (the reloader's "watching" line), and waits until the reloader watches.
fn start(dir: &Path, extra: &[&str]) -> Server {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["-b", "127.0.0.1:0", "--chdir", dir, "--log-level", "debug"];
    args.extend_from_slice(extra);
    args.push("app:application");
    let mut server = ServerBuilder::new(&args).start();
    server.wait_for_log(WATCHING, STARTUP);
    server
}

/// Runs `edit`, waits for an answer from a new worker starting with `new_version`,
/// and checks that no request failed and that the log names `changed`.
fn expect_reload(server: &mut Server, changed: &Path, edit: &dyn Fn(), new_version: &str) {
    let poller = Poller::start(server.port());
    let old = poller.wait_for(server, "from v1", |s, b| s == 200 && b.starts_with("v1 "));
    let mark = server.log_mark();
    edit();
    let new = poller.wait_for(server, "from a new worker", |s, b| {
        s == 200 && b.starts_with(new_version) && pid_of(b) != pid_of(&old)
    });
    assert!(new.starts_with(&format!("{new_version} ")), "{new}");
    let line = format!("Worker reloading: {} modified", changed.display());
    assert!(
        server.log_shows_since(mark, &line, RELOAD),
        "{line:?} not logged:\n{}",
        server.log()
    );
    let failed = poller.finish();
    assert!(
        failed.is_empty(),
        "requests failed across the reload: {failed:?}"
    );
}

#[test]
fn editing_the_app_module_reloads_with_either_engine_and_no_request_fails() {
    for (engine, threads) in [
        ("auto", "1"),
        ("inotify", "1"),
        ("poll", "1"),
        ("auto", "4"),
    ] {
        let scratch = Scratch::new(&format!("reload-{engine}-{threads}"));
        let dir = scratch.path();
        std::fs::write(dir.join("app.py"), app_source("v1")).unwrap();
        let flags = ["--reload", "--reload-engine", engine, "--threads", threads];
        let mut server = start(dir, &flags);
        let want = if engine == "poll" {
            "(poll)"
        } else {
            "(inotify)"
        };
        assert!(server.log().contains(want), "{engine}: {}", server.log());
        let app = dir.join("app.py");
        let edit = || std::fs::write(&app, app_source("v2-edited")).unwrap();
        expect_reload(&mut server, &app, &edit, "v2-edited");
    }
}

#[test]
fn editing_an_asgi_app_reloads_its_worker_and_no_request_fails() {
    let scratch = Scratch::new("reload-asgi");
    let dir = scratch.path();
    std::fs::write(dir.join("app.py"), asgi_app_source("v1")).unwrap();
    let mut server = start(dir, &["--reload", "-k", "asgi", "--asgi-lifespan", "off"]);
    let app = dir.join("app.py");
    let edit = || std::fs::write(&app, asgi_app_source("v2-edited")).unwrap();
    expect_reload(&mut server, &app, &edit, "v2-edited");
}

#[test]
fn a_reload_extra_file_glob_reloads_even_for_files_created_later() {
    let scratch = Scratch::new("reload-extra");
    let dir = scratch.path();
    std::fs::write(dir.join("app.py"), app_source("v1")).unwrap();
    std::fs::create_dir(dir.join("templates")).unwrap();
    let pattern = format!("{}/templates/*.html", dir.display());
    let server = start(dir, &["--reload", "--reload-extra-file", &pattern]);
    let port = server.port();
    let poller = Poller::start(port);
    let first = poller.wait_for(&server, "from v1", |s, b| s == 200 && b.starts_with("v1 "));
    // Created after boot: picked up by the next listing (each second), then edited.
    let page = dir.join("templates/page.html");
    std::fs::write(&page, "<p>one</p>").unwrap();
    let line = format!("Worker reloading: {} modified", page.display());
    let mut edits = 0;
    wait_until(RELOAD, "a reload for the new template", || {
        edits += 1;
        std::fs::write(&page, format!("<p>{edits}</p>")).unwrap();
        server.log_shows_since(0, &line, Duration::from_millis(500))
    });
    let after = poller.wait_for(&server, "from a new worker", |s, b| {
        s == 200 && pid_of(b) != pid_of(&first)
    });
    assert!(after.starts_with("v1 "), "{after}");
    let failed = poller.finish();
    assert!(
        failed.is_empty(),
        "requests failed across the reload: {failed:?}"
    );
}

#[test]
fn a_module_imported_during_a_request_is_watched_too() {
    let scratch = Scratch::new("reload-lazy");
    let dir = scratch.path();
    let helper = dir.join("helper.py");
    std::fs::write(&helper, "TEXT = 'helper one'\n").unwrap();
    std::fs::write(
        dir.join("app.py"),
        "import os\n\
         def application(environ, start_response):\n\
         \x20   import helper\n\
         \x20   body = ('%s %d' % (helper.TEXT, os.getpid())).encode()\n\
         \x20   start_response('200 OK', [('Content-Length', str(len(body)))])\n\
         \x20   return [body]\n",
    )
    .unwrap();
    let server = start(dir, &["--reload", "--reload-engine", "poll"]);
    let poller = Poller::start(server.port());
    let first = poller.wait_for(&server, "from helper one", |s, b| {
        s == 200 && b.starts_with("helper one ")
    });
    // The module list is read again every second: edit until the reloader has it.
    let line = format!("Worker reloading: {} modified", helper.display());
    let mut edits = 0;
    wait_until(RELOAD, "a reload for the lazily imported module", || {
        edits += 1;
        // Written aside and renamed over: a worker importing the module while it is
        // written must never see it half-written (a request would fail).
        let aside = dir.join("helper.py.new");
        std::fs::write(&aside, format!("TEXT = 'helper {}'\n", "two".repeat(edits))).unwrap();
        std::fs::rename(&aside, &helper).unwrap();
        server.log_shows_since(0, &line, Duration::from_millis(500))
    });
    let after = poller.wait_for(&server, "from the edited helper", |s, b| {
        s == 200 && b.starts_with("helper two") && pid_of(b) != pid_of(&first)
    });
    assert!(after.contains("two"), "{after}");
    let failed = poller.finish();
    assert!(
        failed.is_empty(),
        "requests failed across the reload: {failed:?}"
    );
}

#[test]
fn a_syntax_error_is_logged_and_served_as_500_until_the_file_is_fixed() {
    let scratch = Scratch::new("reload-syntax");
    let dir = scratch.path();
    let app = dir.join("app.py");
    std::fs::write(&app, app_source("v1")).unwrap();
    let mut server = start(dir, &["--reload"]);
    let poller = Poller::start(server.port());
    poller.wait_for(&server, "from v1", |s, b| s == 200 && b.starts_with("v1 "));
    let mark = server.log_mark();
    std::fs::write(
        &app,
        "import os\ndef application(environ, start_response:\n",
    )
    .unwrap();
    // Gunicorn: the worker logs the exception with its traceback, watches the broken
    // file, and answers every request with 500 and the traceback.
    let page = poller.wait_for(&server, "500 with the traceback", |s, _| s == 500);
    assert!(
        page.contains("SyntaxError") && page.contains(&app.display().to_string()),
        "{page}"
    );
    server.wait_for_log_since(mark, "SyntaxError", RELOAD);
    let log = server.log();
    let tail = &log[mark.min(log.len())..];
    assert!(
        tail.contains("[ERROR]") && tail.contains(&format!("File \"{}\", line 2", app.display())),
        "no traceback logged:\n{tail}"
    );
    // The server keeps running, and once the broken worker watches, the fix brings
    // the app back.
    server.wait_for(RELOAD, "the broken worker's reloader", |log| {
        let tail = log.get(mark..).unwrap_or("");
        tail.find("SyntaxError")
            .is_some_and(|i| tail[i..].contains(WATCHING))
    });
    std::fs::write(&app, app_source("v3-fixed")).unwrap();
    poller.wait_for(&server, "from the fixed code", |s, b| {
        s == 200 && b.starts_with("v3-fixed ")
    });
    let failed = poller.finish();
    assert!(failed.is_empty(), "requests failed: {failed:?}");
}

#[test]
fn the_config_file_spellings_turn_reload_on() {
    let scratch = Scratch::new("reload-conf");
    let dir = scratch.path();
    std::fs::write(dir.join("app.py"), app_source("v1")).unwrap();
    std::fs::write(dir.join("settings.ini"), "a = 1\n").unwrap();
    let conf = dir.join("gunicorn.conf.py");
    std::fs::write(
        &conf,
        format!(
            "reload = True\nreload_engine = 'poll'\nreload_extra_files = [{:?}]\n",
            dir.join("settings.ini").display().to_string()
        ),
    )
    .unwrap();
    let conf_arg = conf.display().to_string();
    let mut server = start(dir, &["-c", &conf_arg]);
    assert!(server.log().contains("(poll)"), "{}", server.log());
    let settings = dir.join("settings.ini");
    let edit = || std::fs::write(&settings, "a = 22\n").unwrap();
    expect_reload(&mut server, &settings, &edit, "v1");
}
