//! `-p/--pid FILE`: the master's pid, for init scripts and `kill $(cat FILE)`.
//! Behaves like Gunicorn's `gunicorn/pidfile.py`: a pid file naming another live
//! process stops the start-up ("Already running"), a stale one is replaced, the file
//! is written atomically (a temporary file in the same directory, then rename) with
//! mode 0644, and it is removed on exit only if it still names this process.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::Pid;

/// Why the pid file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PidfileError {
    #[error("Already running on PID {pid} (or pid file '{path}' is stale)")]
    AlreadyRunning { pid: i32, path: String },
    #[error("{0} doesn't exist. Can't create pidfile.")]
    NoDirectory(String),
    #[error("cannot write pid file '{path}': {err}")]
    Io { path: String, err: io::Error },
}

/// A pid file this process wrote; removed when dropped (the master's exit). Workers
/// leave through `_exit`, so they never remove it.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    pid: Pid,
}

impl Pidfile {
    /// Writes `pid` to `path`, unless `path` names another live process.
    pub fn create(path: &Path, pid: Pid) -> Result<Pidfile, PidfileError> {
        if let Some(old) = live_pid_in(path)? {
            if old != pid.as_raw() {
                return Err(PidfileError::AlreadyRunning {
                    pid: old,
                    path: path.display().to_string(),
                });
            }
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(PidfileError::NoDirectory(dir.display().to_string()));
        }
        let io_err = |err| PidfileError::Io {
            path: path.display().to_string(),
            err,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
        tmp.write_all(format!("{pid}\n").as_bytes())
            .and_then(|_| {
                tmp.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(0o644))
            })
            .map_err(io_err)?;
        tmp.persist(path).map_err(|e| io_err(e.error))?;
        Ok(Pidfile {
            path: path.to_path_buf(),
            pid,
        })
    }

    /// Fails like [`Pidfile::create`] would on a pid file naming another live
    /// process, without writing anything (checked before the daemon detaches).
    pub fn check(path: &Path) -> Result<(), PidfileError> {
        match live_pid_in(path)? {
            Some(pid) if pid != nix::unistd::getpid().as_raw() => {
                Err(PidfileError::AlreadyRunning {
                    pid,
                    path: path.display().to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Moves the pid file to `path` (a re-executed master taking over the name).
    pub fn rename(&mut self, path: &Path) -> Result<(), PidfileError> {
        self.unlink();
        *self = Pidfile::create(path, self.pid)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it still names this process (a newer master may own it).
    fn unlink(&self) {
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            == Some(self.pid.as_raw());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        self.unlink();
    }
}

/// The pid in `path` if that process is alive (or alive but not ours to signal); no
/// file, unreadable content or a dead pid means there is nothing to respect.
fn live_pid_in(path: &Path) -> Result<Option<i32>, PidfileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(PidfileError::Io {
                path: path.display().to_string(),
                err,
            })
        }
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return Ok(None);
    };
    if pid <= 0 {
        return Ok(None);
    }
    Ok(match nix::sys::signal::kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => Some(pid),
        Err(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_atomically_and_removed_only_while_it_names_us() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        let me = nix::unistd::getpid();
        let pidfile = Pidfile::create(&path, me).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{me}\n"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // Only the pid file is left in the directory (no temporary file).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(pidfile);
        assert!(!path.exists());

        // A file rewritten by someone else is theirs: not removed.
        let pidfile = Pidfile::create(&path, me).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        drop(pidfile);
        assert!(path.exists());
    }

    #[test]
    fn a_live_other_process_refuses_a_stale_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        let me = nix::unistd::getpid();
        // pid 1 is alive (or at least exists) on every Linux system.
        std::fs::write(&path, "1\n").unwrap();
        let err = Pidfile::create(&path, me).unwrap_err().to_string();
        assert!(err.contains("Already running on PID 1"), "{err}");
        for stale in ["", "garbage\n", "2147483647\n"] {
            std::fs::write(&path, stale).unwrap();
            let pidfile = Pidfile::create(&path, me).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{me}\n"));
            drop(pidfile);
        }
        let missing = dir.path().join("nope").join("app.pid");
        let err = Pidfile::create(&missing, me).unwrap_err().to_string();
        assert!(err.contains("doesn't exist"), "{err}");
    }
}
