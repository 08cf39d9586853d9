//! USR1: log files are reopened by path, so a rotated log (renamed away by logrotate)
//! is replaced by a fresh file at the original path (Gunicorn's `reopen_files`). The
//! master reopens its own ([`super::reopen_log_files`]) and tells every worker to
//! reopen theirs. Files are given to the workers' user (`--user`/`--group`) so
//! workers can reopen them too.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use super::access::AccessLog;
use super::format::AccessFormat;
use super::open_append;

/// The access log file as the master last opened it: workers forked afterwards start
/// with it (as Gunicorn's inherit the master's handlers), so a worker booting while
/// the file is renamed away never has to create it (which `--user` may forbid).
static MASTER_ACCESS_LOG: Mutex<Option<File>> = Mutex::new(None);

/// In the master, before workers start and on USR1: opens (creating) the log files,
/// keeps the access log for workers to inherit, and gives the files to `uid`:`gid`
/// when `owner` is set (the workers' user must be able to write and reopen them).
/// Only regular files change owner (`/dev/null` is not ours to give away). The error
/// log is the one [`super::init`] opened.
pub fn prepare_files(access_log: Option<&str>, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let open = |path: &Path| {
        let file = open_append(&path.to_string_lossy())
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        if let Some((uid, gid)) = owner {
            chown_regular(path, uid, gid);
        }
        Ok::<File, std::io::Error>(file)
    };
    if let Some(path) = super::error_log_path() {
        open(Path::new(&path))?;
    }
    if let Some(path) = access_log.filter(|p| *p != "-") {
        let file = open(Path::new(path))?;
        *MASTER_ACCESS_LOG.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
    }
    Ok(())
}

/// In a worker: the access log to write to, the master's file when it opened one,
/// else `path` opened here.
pub fn worker_access_log(
    path: Option<&str>,
    format: AccessFormat,
    syslog: bool,
) -> std::io::Result<AccessLog> {
    let inherited = MASTER_ACCESS_LOG
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(File::try_clone);
    match (inherited, path) {
        (Some(file), Some(path)) if path != "-" => {
            AccessLog::with_file(path, file?, format, syslog)
        }
        _ => AccessLog::open(path, format, syslog),
    }
}

fn chown_regular(path: &Path, uid: u32, gid: u32) {
    if std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        if let Err(e) = std::os::unix::fs::chown(path, Some(uid), Some(gid)) {
            tracing::warn!("Cannot give {} to {uid}:{gid}: {e}", path.display());
        }
    }
}
