//! `--reload`: a thread in each worker watches the source files of the modules the
//! worker imported and the `--reload-extra-file` files; when one changes it logs
//! Gunicorn's `Worker reloading: PATH modified` and sends the worker SIGTERM, so the
//! event loop drains through its usual path and the worker exits with status 0. The
//! master replaces it like any worker that exited, and the new one imports the code
//! afresh (no crash accounting: a clean exit is not a crash).
//!
//! The thread never slows the request path: it blocks on the inotify descriptor (or
//! sleeps, with `--reload-engine poll`) without the GIL, and takes the GIL only once a
//! second, for the moment it takes to list `sys.modules`' files (modules imported
//! lazily, during requests, are picked up that way). A change is acted on once the
//! file has stopped changing for a moment, so an editor's truncate-then-write is not
//! imported half written.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::signal::Signal;
use pyo3::prelude::*;

use crate::config::reload::{Engine, ReloadConfig};
use crate::sys;

/// How often the list of watched files is refreshed (and, polling, how often they are
/// stat'ed): Gunicorn's interval.
const INTERVAL: Duration = Duration::from_secs(1);
/// A changed file must stay unchanged this long before the worker reloads.
const SETTLE: Duration = Duration::from_millis(100);
/// ...but a file written to without pause does not hold the reload back longer.
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// Why the reloader could not start (the worker then fails to boot).
#[derive(Debug, thiserror::Error)]
pub enum ReloaderError {
    #[error("inotify is not available: {0}")]
    Inotify(nix::Error),
    #[error("cannot list the imported modules: {0}")]
    Python(String),
    #[error("cannot start the reloader thread: {0}")]
    Thread(std::io::Error),
}

/// Starts the watching thread. `broken_file` is a file whose `SyntaxError` the worker
/// serves as a 500 page: it is not in `sys.modules`, and fixing it must reload.
pub fn start(config: &ReloadConfig, broken_file: Option<&Path>) -> Result<(), ReloaderError> {
    tracing::warn!("Reloader is on. Use in development only!");
    let engine = match config.engine {
        Engine::Poll => Watch::Poll(Polling::default()),
        Engine::Inotify => Watch::Inotify(Watching::new().map_err(ReloaderError::Inotify)?),
        Engine::Auto => match Watching::new() {
            Ok(w) => Watch::Inotify(w),
            Err(e) => {
                tracing::warn!("inotify is not available ({e}); the reloader polls instead");
                Watch::Poll(Polling::default())
            }
        },
    };
    let collector = Python::attach(|py| {
        let code = std::ffi::CString::new(include_str!("reloader.py"))
            .expect("reloader.py has no NUL bytes");
        PyModule::from_code(py, &code, c"rustcorn/reloader.py", c"_rustcorn_reloader")
            .and_then(|m| m.getattr("files"))
            .map(Bound::unbind)
            .map_err(|e| ReloaderError::Python(crate::wsgi::format_exception(py, &e)))
    })?;
    let mut extra = config.extra_files.clone();
    extra.extend(broken_file.map(Path::to_path_buf));
    let files = Files {
        collector,
        extra,
        patterns: config.extra_patterns.clone(),
        failed: false,
    };
    std::thread::Builder::new()
        .name("reloader".into())
        .spawn(move || watch(files, engine))
        .map_err(ReloaderError::Thread)?;
    Ok(())
}

/// The thread's body: refresh the list, wait for a change, reload.
fn watch(mut files: Files, mut engine: Watch) {
    let mut first = true;
    let changed = loop {
        let list = files.list();
        let found = match &mut engine {
            Watch::Poll(p) => p.check(&list),
            Watch::Inotify(w) => {
                w.refresh(&list);
                None
            }
        };
        if first {
            // From here on a change is seen: tests and users can wait for this line.
            tracing::debug!("Reloader watching {} files ({})", list.len(), engine.name());
            first = false;
        }
        let found = found.or_else(|| match &mut engine {
            Watch::Poll(_) => {
                std::thread::sleep(INTERVAL);
                None
            }
            Watch::Inotify(w) => w.wait(INTERVAL),
        });
        if let Some(path) = found {
            break path;
        }
    };
    settle(&changed);
    tracing::info!("Worker reloading: {} modified", changed.display());
    sys::kill(nix::unistd::getpid(), Signal::SIGTERM);
}

/// Waits until `path` has kept its size and modification time for [`SETTLE`].
fn settle(path: &Path) {
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    let give_up = Instant::now() + SETTLE_MAX;
    let mut last = stamp(path);
    loop {
        std::thread::sleep(SETTLE);
        let now = stamp(path);
        if now == last || Instant::now() >= give_up {
            return;
        }
        last = now;
    }
}

/// What is watched: the imported modules' files (listed by Python), the extra files,
/// and the extra patterns (expanded by Python's `glob`, as in Gunicorn).
struct Files {
    collector: Py<PyAny>,
    extra: Vec<PathBuf>,
    patterns: Vec<String>,
    /// Listing the modules failed once (logged once).
    failed: bool,
}

impl Files {
    /// Every watched file, absolute.
    fn list(&mut self) -> Vec<PathBuf> {
        let listed = Python::attach(|py| {
            self.collector
                .bind(py)
                .call1((self.patterns.clone(),))
                .and_then(|names| names.extract::<Vec<String>>())
                .map_err(|e| crate::wsgi::format_exception(py, &e))
        });
        let mut out: Vec<PathBuf> = match listed {
            Ok(names) => names.into_iter().map(PathBuf::from).collect(),
            Err(e) => {
                if !self.failed {
                    tracing::warn!("The reloader cannot list the imported modules: {e}");
                    self.failed = true;
                }
                Vec::new()
            }
        };
        out.extend(self.extra.iter().cloned());
        out.into_iter()
            .filter_map(|p| std::path::absolute(p).ok())
            .collect()
    }
}

/// The engine in use.
enum Watch {
    Poll(Polling),
    Inotify(Watching),
}

impl Watch {
    fn name(&self) -> &'static str {
        match self {
            Watch::Poll(_) => "poll",
            Watch::Inotify(_) => "inotify",
        }
    }
}

/// `--reload-engine poll`: modification times, compared once a second.
#[derive(Default)]
struct Polling {
    mtimes: HashMap<PathBuf, SystemTime>,
}

impl Polling {
    /// The first file found newer than when it was first seen.
    fn check(&mut self, files: &[PathBuf]) -> Option<PathBuf> {
        for file in files {
            let Ok(mtime) = std::fs::metadata(file).and_then(|m| m.modified()) else {
                continue;
            };
            match self.mtimes.get(file) {
                None => {
                    self.mtimes.insert(file.clone(), mtime);
                }
                Some(&seen) if mtime > seen => return Some(file.clone()),
                Some(_) => {}
            }
        }
        None
    }
}

/// `--reload-engine inotify`: a watch on each directory holding a watched file
/// (editors often replace a file by renaming a new one over it, which a watch on the
/// file itself would miss), and only events naming a watched file count.
struct Watching {
    inotify: Inotify,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    /// Watched file names by directory.
    names: HashMap<PathBuf, HashSet<OsString>>,
}

/// Gunicorn's event mask.
fn event_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
}

impl Watching {
    fn new() -> nix::Result<Watching> {
        Ok(Watching {
            inotify: Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?,
            dirs: HashMap::new(),
            names: HashMap::new(),
        })
    }

    /// Adds watches for directories not watched yet.
    fn refresh(&mut self, files: &[PathBuf]) {
        for file in files {
            let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
                continue;
            };
            if !self.names.contains_key(dir) {
                match self.inotify.add_watch(dir, event_mask()) {
                    Ok(wd) => {
                        self.dirs.insert(wd, dir.to_path_buf());
                    }
                    // A directory that does not exist (a module from a zip file) or
                    // cannot be watched: the next refresh tries again.
                    Err(_) => continue,
                }
            }
            self.names
                .entry(dir.to_path_buf())
                .or_default()
                .insert(name.to_os_string());
        }
    }

    /// Waits up to `timeout` for an event on a watched file; returns its path.
    fn wait(&mut self, timeout: Duration) -> Option<PathBuf> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let millis =
                PollTimeout::try_from(left.as_millis() as i32).unwrap_or(PollTimeout::NONE);
            let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
            if !matches!(poll(&mut fds, millis), Ok(n) if n > 0) {
                continue;
            }
            let events = self.inotify.read_events().unwrap_or_default();
            for event in events {
                if let Some(path) = self.changed_file(event.wd, event.mask, event.name) {
                    return Some(path);
                }
            }
        }
    }

    fn changed_file(
        &mut self,
        wd: WatchDescriptor,
        mask: AddWatchFlags,
        name: Option<OsString>,
    ) -> Option<PathBuf> {
        let dir = self.dirs.get(&wd)?.clone();
        if mask.contains(AddWatchFlags::IN_IGNORED) {
            // The directory went away: forget it, so a refresh watches it again.
            self.dirs.remove(&wd);
            self.names.remove(&dir);
            return None;
        }
        let name = name?;
        self.names
            .get(&dir)
            .is_some_and(|names| names.contains(&name))
            .then(|| dir.join(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rc-reloader-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn polling_reports_a_file_newer_than_when_first_seen() {
        let dir = scratch("poll");
        let (a, b) = (dir.join("a.py"), dir.join("b.html"));
        std::fs::write(&a, "x = 1\n").unwrap();
        std::fs::write(&b, "<p>").unwrap();
        let files = vec![a.clone(), b.clone(), dir.join("missing.py")];
        let mut polling = Polling::default();
        assert_eq!(polling.check(&files), None, "first sight is the baseline");
        assert_eq!(polling.check(&files), None);
        let later = SystemTime::now() + Duration::from_secs(5);
        let file = std::fs::File::options().write(true).open(&b).unwrap();
        file.set_modified(later).unwrap();
        assert_eq!(polling.check(&files), Some(b));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn inotify_reports_watched_names_only_including_a_rename_over() {
        let dir = scratch("inotify");
        let (a, other) = (dir.join("a.py"), dir.join("other.log"));
        std::fs::write(&a, "x = 1\n").unwrap();
        let mut watching = Watching::new().unwrap();
        watching.refresh(std::slice::from_ref(&a));
        std::fs::write(&other, "noise").unwrap();
        assert_eq!(watching.wait(Duration::from_millis(200)), None);
        std::fs::write(&a, "x = 2\n").unwrap();
        assert_eq!(watching.wait(Duration::from_secs(10)), Some(a.clone()));
        // An editor's save: a new file renamed over the old one.
        let tmp = dir.join(".a.py.swp");
        std::fs::write(&tmp, "x = 3\n").unwrap();
        assert_eq!(watching.wait(Duration::from_millis(200)), None);
        std::fs::rename(&tmp, &a).unwrap();
        assert_eq!(watching.wait(Duration::from_secs(10)), Some(a));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
