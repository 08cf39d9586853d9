//! The control socket, as Gunicorn 27 has it: a unix socket in the master where
//! `gunicornc` or `rustcorn ctl` sends commands (`show workers`, `worker add 2`,
//! `reload`…) and reads replies.
//!
//! # Wire protocol (Gunicorn's `gunicorn/ctl/protocol.py`)
//!
//! Each message is a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
//! A request is `{"id": 1, "command": "worker add", "args": [2]}`; the reply echoes the
//! id: `{"id": 1, "status": "ok", "data": {...}}` or
//! `{"id": 1, "status": "error", "error": "..."}`. A client may send many requests on
//! one connection.
//!
//! # Never in the way of supervision
//!
//! The master is single-threaded, so the socket lives in its poll beside the signal
//! queue and every socket is non-blocking: a client that sends half a message, never
//! reads its reply or connects a thousand times costs a buffer, never a stalled
//! master. Requests are bounded ([`MAX_MESSAGE`]), clients are bounded
//! ([`MAX_CLIENTS`]) and an idle one is dropped after Gunicorn's 300 s.
//! Commands themselves run in the loop ([`super::control_cmds`]) and never fork
//! there: a worker change sets the target and the loop's `manage_workers` acts on it.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use serde_json::{json, Value};

use crate::config::control::ControlConfig;

/// The largest request accepted. Gunicorn allows 16 MiB; a command is a few words,
/// so 1 MiB is generous and bounds what one client can make the master hold.
pub const MAX_MESSAGE: usize = 1 << 20;
/// Connections served at once; more are closed as soon as accepted.
pub const MAX_CLIENTS: usize = 32;
/// Gunicorn's idle bound for a control connection.
const IDLE: Duration = Duration::from_secs(300);

/// One request read off a connection, or why it could not be read.
pub(super) struct Incoming {
    /// The connection to answer.
    pub client: u64,
    /// The request's `id`, echoed in the reply (`0` when it gave none).
    pub id: Value,
    /// `command` split like a shell, then `args`; or the error to answer with.
    pub parts: Result<Vec<String>, String>,
}

struct Client {
    key: u64,
    stream: UnixStream,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    last_active: Instant,
    /// Answer what is queued, then close (after a malformed message or EOF).
    closing: bool,
}

/// The listening control socket and its connections.
pub(super) struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file made here: at exit it is removed only if it
    /// is still this one (a USR2 successor may have replaced it).
    identity: (u64, u64),
    clients: Vec<Client>,
    next_key: u64,
}

impl ControlServer {
    /// Creates the socket (and its directory, mode 0700) as configured. Never fails
    /// the start: a path that cannot be made is a warning and the server runs without.
    pub fn start(config: &ControlConfig) -> Option<ControlServer> {
        if config.disabled {
            tracing::debug!("Control socket disabled");
            return None;
        }
        let path =
            std::path::absolute(&config.socket).unwrap_or_else(|_| config.socket.clone().into());
        match bind(&path, config.mode) {
            Ok((listener, identity)) => {
                tracing::info!("Control socket listening at {}", path.display());
                Some(ControlServer {
                    listener,
                    path,
                    identity,
                    clients: Vec::new(),
                    next_key: 0,
                })
            }
            Err(e) => {
                tracing::warn!("Failed to start control socket at {}: {e}", path.display());
                None
            }
        }
    }

    /// The descriptors the master's poll waits on, with what to wait for.
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut fds = vec![(self.listener.as_fd(), PollFlags::POLLIN)];
        for c in &self.clients {
            let mut flags = PollFlags::POLLIN;
            if !c.outbox.is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            fds.push((c.stream.as_fd(), flags));
        }
        fds
    }

    /// Accepts new connections and reads what is there, without blocking; returns the
    /// complete requests in arrival order.
    pub fn receive(&mut self) -> Vec<Incoming> {
        self.accept();
        let mut out = Vec::new();
        for c in &mut self.clients {
            if !c.closing {
                c.read_available();
                c.take_requests(&mut out);
            }
        }
        out
    }

    /// Queues `reply` for `client` and tries to send it at once.
    pub fn send(&mut self, client: u64, reply: &Value) {
        if let Some(c) = self.clients.iter_mut().find(|c| c.key == client) {
            c.queue(reply);
            c.write_available();
        }
    }

    /// Writes what is pending and drops connections that are done, broken or idle.
    pub fn flush(&mut self) {
        let now = Instant::now();
        self.clients.retain_mut(|c| {
            c.write_available();
            let idle = now.duration_since(c.last_active) > IDLE;
            let done = c.closing && c.outbox.is_empty();
            !(idle || done)
        });
    }

    /// At the master's exit: removes the socket file if it is still the one made here.
    pub fn remove(self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.clients.len() >= MAX_CLIENTS {
                        tracing::debug!(
                            "Control socket: {MAX_CLIENTS} clients already, one refused"
                        );
                        continue;
                    }
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.next_key += 1;
                    self.clients.push(Client {
                        key: self.next_key,
                        stream,
                        inbox: Vec::new(),
                        outbox: Vec::new(),
                        last_active: Instant::now(),
                        closing: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

impl Client {
    fn read_available(&mut self) {
        let mut buf = [0u8; 8192];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.closing = true;
                    return;
                }
                Ok(n) => {
                    self.last_active = Instant::now();
                    self.inbox.extend_from_slice(&buf[..n]);
                    // Never more than one maximal message (and its length) buffered.
                    if self.inbox.len() > MAX_MESSAGE + 4 {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.closing = true;
                    self.outbox.clear();
                    return;
                }
            }
        }
    }

    /// Cuts every complete message off the inbox.
    fn take_requests(&mut self, out: &mut Vec<Incoming>) {
        while !self.closing && self.inbox.len() >= 4 {
            let len =
                u32::from_be_bytes([self.inbox[0], self.inbox[1], self.inbox[2], self.inbox[3]])
                    as usize;
            if len > MAX_MESSAGE {
                self.refuse(
                    out,
                    format!("Message too large: {len} bytes (at most {MAX_MESSAGE})"),
                );
                return;
            }
            if self.inbox.len() < 4 + len {
                return;
            }
            let payload: Vec<u8> = self.inbox.drain(..4 + len).skip(4).collect();
            match parse_request(&payload) {
                Ok((id, parts)) => out.push(Incoming {
                    client: self.key,
                    id,
                    parts,
                }),
                Err(e) => self.refuse(out, e),
            }
        }
    }

    /// A message that cannot be read as a request: one error reply, then the
    /// connection closes, since what follows it cannot be trusted to be framed.
    fn refuse(&mut self, out: &mut Vec<Incoming>, error: String) {
        tracing::debug!("Control client error: {error}");
        out.push(Incoming {
            client: self.key,
            id: Value::Null,
            parts: Err(error),
        });
        self.inbox.clear();
        self.closing = true;
    }

    fn queue(&mut self, reply: &Value) {
        let payload = serde_json::to_vec(reply).unwrap_or_default();
        self.outbox
            .extend_from_slice(&(payload.len() as u32).to_be_bytes());
        self.outbox.extend_from_slice(&payload);
    }

    fn write_available(&mut self) {
        while !self.outbox.is_empty() {
            match self.stream.write(&self.outbox) {
                Ok(0) => break,
                Ok(n) => {
                    self.outbox.drain(..n);
                    self.last_active = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.outbox.clear();
                    self.closing = true;
                }
            }
        }
    }
}

/// A request's id and its command line (`command` split like a shell, then `args`
/// as Python's `str()` writes them), or the error that makes it unreadable.
fn parse_request(payload: &[u8]) -> Result<(Value, Result<Vec<String>, String>), String> {
    let message: Value =
        serde_json::from_slice(payload).map_err(|e| format!("Invalid JSON: {e}"))?;
    let Value::Object(message) = message else {
        return Err("Invalid request: expected a JSON object".into());
    };
    let id = message.get("id").cloned().unwrap_or(json!(0));
    let command = match message.get("command") {
        None => "",
        Some(Value::String(c)) => c.trim(),
        Some(_) => return Ok((id, Err("Invalid request: command must be a string".into()))),
    };
    let args = match message.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(python_str).collect(),
        Some(_) => return Ok((id, Err("Invalid request: args must be a list".into()))),
    };
    if command.is_empty() {
        return Ok((id, Err("Empty command".into())));
    }
    let parts = super::control_cmds::shell_split(command)
        .map(|mut parts| {
            parts.extend(args);
            parts
        })
        .map_err(|e| format!("Invalid argument: {e}"));
    Ok((id, parts))
}

/// A JSON value as Python's `str()` shows the object `json.loads` makes of it.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Makes the directory if needed, replaces a stale socket, binds under a umask that
/// keeps the socket private until its mode is set.
fn bind(path: &Path, mode: u32) -> std::io::Result<(UnixListener, (u64, u64))> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(std::io::Error::new(
                ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way; it was left alone",
            ))
        }
        Err(_) => {}
    }
    let old = crate::sys::set_umask(0o177);
    let bound = UnixListener::bind(path);
    crate::sys::set_umask(old);
    let listener = bound?;
    let cleanup = |e: std::io::Error| {
        let _ = std::fs::remove_file(path);
        e
    };
    listener.set_nonblocking(true).map_err(cleanup)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(cleanup)?;
    let meta = std::fs::symlink_metadata(path).map_err(cleanup)?;
    Ok((listener, (meta.dev(), meta.ino())))
}
