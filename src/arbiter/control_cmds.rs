//! The control socket's commands (Gunicorn's `gunicorn/ctl/handlers.py`), each mapped
//! onto what the arbiter already does for a signal: `worker add` is TTIN's, `worker
//! remove` TTOU's, `reload` HUP, `reopen` USR1, `shutdown` TERM or INT (sent to the
//! master itself, as Gunicorn does, so they take the signal's one path). The replies
//! have the shapes Gunicorn's handlers return, so `gunicornc` formats them.

use std::time::Instant;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::{json, Map, Value};

use super::control::Incoming;
use super::{Arbiter, Phase};
use crate::config::{print, settings};
use crate::scoreboard;
use crate::sock::Listener;
use crate::sys;

/// Counters `show stats` reports, as Gunicorn's arbiter keeps them.
pub(super) struct Stats {
    pub started: Instant,
    pub workers_spawned: u64,
    /// Workers sent SIGTERM or SIGKILL.
    pub workers_killed: u64,
    pub reloads: u64,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            started: Instant::now(),
            workers_spawned: 0,
            workers_killed: 0,
            reloads: 0,
        }
    }
}

/// Why a command has no `data`: Gunicorn's two error prefixes.
enum Failure {
    /// `Invalid argument: …` (Gunicorn's `ValueError`).
    Invalid(String),
    /// `Command failed: …`.
    Failed(String),
}

type Outcome = Result<Value, Failure>;

fn invalid(text: impl Into<String>) -> Failure {
    Failure::Invalid(text.into())
}

/// The settings `show config` reports: Gunicorn's list, minus nothing.
const CONFIG_KEYS: [&str; 20] = [
    "bind",
    "workers",
    "worker_class",
    "threads",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "max_requests",
    "max_requests_jitter",
    "worker_connections",
    "preload_app",
    "daemon",
    "pidfile",
    "proc_name",
    "reload",
    "dirty_workers",
    "dirty_apps",
    "dirty_timeout",
    "control_socket",
    "control_socket_disable",
];

/// `help`: Gunicorn's list (dirty commands answer as Gunicorn's do with no dirty
/// arbiter running, which is always, in rustcorn).
const HELP: [(&str, &str); 15] = [
    (
        "show all",
        "Show all processes (arbiter, web workers, dirty workers)",
    ),
    ("show workers", "List HTTP workers with their status"),
    ("show dirty", "List dirty workers and apps"),
    ("show config", "Show current effective configuration"),
    ("show stats", "Show server statistics"),
    ("show listeners", "Show bound sockets"),
    ("worker add [N]", "Spawn N workers (default 1)"),
    ("worker remove [N]", "Remove N workers (default 1)"),
    ("worker kill <PID>", "Gracefully terminate specific worker"),
    ("dirty add [N]", "Spawn N dirty workers (default 1)"),
    ("dirty remove [N]", "Remove N dirty workers (default 1)"),
    ("reload", "Graceful reload (HUP)"),
    ("reopen", "Reopen log files (USR1)"),
    ("shutdown [graceful|quick]", "Shutdown server (TERM/INT)"),
    ("help", "Show this help message"),
];

impl Arbiter {
    /// Serves the control socket: accept, read, run each complete request, reply.
    /// Non-blocking throughout; called once per loop turn.
    pub(super) fn serve_control(&mut self) {
        let Some(mut server) = self.control.take() else {
            return;
        };
        for request in server.receive() {
            let reply = self.control_reply(&request);
            server.send(request.client, &reply);
        }
        server.flush();
        self.control = Some(server);
    }

    fn control_reply(&mut self, request: &Incoming) -> Value {
        let id = request.id.clone();
        let outcome = match &request.parts {
            Ok(parts) => self.run_command(parts),
            Err(e) => return json!({"id": id, "status": "error", "error": e}),
        };
        match outcome {
            Ok(data) => json!({"id": id, "status": "ok", "data": data}),
            Err(Failure::Invalid(e)) => {
                json!({"id": id, "status": "error", "error": format!("Invalid argument: {e}")})
            }
            Err(Failure::Failed(e)) => {
                json!({"id": id, "status": "error", "error": format!("Command failed: {e}")})
            }
        }
    }

    fn run_command(&mut self, parts: &[String]) -> Outcome {
        let Some((command, rest)) = parts.split_first() else {
            return Err(invalid("Empty command"));
        };
        match command.to_lowercase().as_str() {
            "show" => self.show(rest),
            "worker" => self.worker_command(rest),
            "dirty" => dirty_command(rest),
            "reload" => Ok(self.signal_self(Signal::SIGHUP, json!({"status": "reloading"}))),
            "reopen" => Ok(self.signal_self(Signal::SIGUSR1, json!({"status": "reopening"}))),
            "shutdown" => {
                let mode = rest.first().map_or("graceful".into(), |m| m.to_lowercase());
                let sig = match mode.as_str() {
                    "graceful" => Signal::SIGTERM,
                    "quick" => Signal::SIGINT,
                    _ => {
                        return Err(invalid(format!(
                            "Unknown shutdown mode: {mode} (graceful|quick)"
                        )))
                    }
                };
                Ok(self.signal_self(sig, json!({"status": "shutting_down", "mode": mode})))
            }
            "help" => {
                let commands: Map<String, Value> = HELP
                    .iter()
                    .map(|(c, d)| (c.to_string(), json!(d)))
                    .collect();
                Ok(json!({"commands": commands}))
            }
            other => Err(invalid(format!("Unknown command: {other}"))),
        }
    }

    /// Queues `sig` for this master's own loop, which logs and handles it exactly as
    /// one sent with `kill`.
    fn signal_self(&self, sig: Signal, reply: Value) -> Value {
        sys::kill(nix::unistd::getpid(), sig);
        reply
    }

    fn show(&self, rest: &[String]) -> Outcome {
        let Some(target) = rest.first() else {
            return Err(invalid(
                "Missing show target (all|workers|dirty|config|stats|listeners)",
            ));
        };
        match target.to_lowercase().as_str() {
            "all" => Ok(self.show_all()),
            "workers" => {
                let workers = self.worker_list(false);
                Ok(json!({"count": workers.len(), "workers": workers}))
            }
            "dirty" => Ok(json!({"enabled": false, "pid": null, "workers": [], "apps": []})),
            "config" => Ok(self.show_config()),
            "stats" => Ok(self.show_stats()),
            "listeners" => {
                let listeners: Vec<Value> = self.listeners.iter().map(listener_info).collect();
                Ok(json!({"count": listeners.len(), "listeners": listeners}))
            }
            other => Err(invalid(format!("Unknown show target: {other}"))),
        }
    }

    /// Live workers, oldest first: Gunicorn's `show workers` entries, or with
    /// `web` its `show all` ones.
    fn worker_list(&self, web: bool) -> Vec<Value> {
        let mut workers: Vec<_> = self.workers.iter().collect();
        workers.sort_by_key(|(_, w)| w.age);
        workers
            .into_iter()
            .map(|(pid, w)| {
                let silence = self.heartbeats.silence_millis(w.heartbeat) as f64 / 1000.0;
                let mut entry = json!({
                    "pid": pid.as_raw(),
                    // Gunicorn counts ages from 1 (the age pre_fork's worker shows).
                    "age": w.age + 1,
                    "booted": self.heartbeats.is_booted(w.heartbeat),
                    "last_heartbeat": (silence * 100.0).round() / 100.0,
                });
                if web {
                    entry["type"] = json!("web");
                } else {
                    entry["aborted"] = json!(w.aborted);
                }
                entry
            })
            .collect()
    }

    fn show_all(&self) -> Value {
        let web = self.worker_list(true);
        json!({
            "arbiter": {"pid": self.pid.as_raw(), "type": "arbiter", "role": "master"},
            "web_worker_count": web.len(),
            "web_workers": web,
            "dirty_arbiter": null,
            "dirty_workers": [],
            "dirty_worker_count": 0,
        })
    }

    /// The values `--print-config` prints for Gunicorn's `show config` keys, as JSON.
    fn show_config(&self) -> Value {
        let config: Map<String, Value> = CONFIG_KEYS
            .iter()
            .filter_map(|&key| settings::lookup(key))
            .map(|s| {
                (
                    s.name.to_string(),
                    python_literal(&print::value_of(&self.config, s)),
                )
            })
            .collect();
        Value::Object(config)
    }

    fn show_stats(&self) -> Value {
        let uptime = self.stats.started.elapsed().as_secs_f64();
        json!({
            "uptime": (uptime * 100.0).round() / 100.0,
            "pid": self.pid.as_raw(),
            "workers_current": self.workers.len(),
            "workers_target": self.num_workers,
            "workers_spawned": self.stats.workers_spawned,
            "workers_killed": self.stats.workers_killed,
            "reloads": self.stats.reloads,
            "dirty_arbiter_pid": null,
        })
    }

    fn worker_command(&mut self, rest: &[String]) -> Outcome {
        let Some(action) = rest.first() else {
            return Err(invalid("Missing worker action (add|remove|kill)"));
        };
        let arg = rest.get(1);
        match action.to_lowercase().as_str() {
            "add" | "remove" if self.phase != Phase::Running => {
                Err(Failure::Failed("the server is shutting down".into()))
            }
            "add" => {
                let old = self.num_workers;
                let room = scoreboard::MAX_WORKERS as i64 - old as i64;
                let count = arg.map_or(Ok(1), |a| python_int(a))?.clamp(1, room.max(1));
                self.num_workers = (old as i64 + count).min(scoreboard::MAX_WORKERS as i64) as u32;
                self.hook_nworkers_changed(old);
                Ok(
                    json!({"added": self.num_workers - old, "previous": old, "total": self.num_workers}),
                )
            }
            "remove" => {
                let old = self.num_workers;
                let count = arg.map_or(Ok(1), |a| python_int(a))?.max(1);
                // Never below one worker, as in Gunicorn.
                self.num_workers = (old as i64 - count).max(1) as u32;
                self.hook_nworkers_changed(old);
                Ok(
                    json!({"removed": old - self.num_workers, "previous": old, "total": self.num_workers}),
                )
            }
            "kill" => {
                let Some(arg) = arg else {
                    return Err(invalid("Missing PID for worker kill"));
                };
                let pid = python_int(arg)?;
                let known = i32::try_from(pid)
                    .ok()
                    .map(Pid::from_raw)
                    .filter(|p| self.workers.contains_key(p));
                let Some(pid) = known else {
                    return Ok(
                        json!({"success": false, "error": format!("Worker {pid} not found")}),
                    );
                };
                sys::kill(pid, Signal::SIGTERM);
                self.stats.workers_killed += 1;
                Ok(json!({"success": true, "killed": pid.as_raw()}))
            }
            other => Err(invalid(format!("Unknown worker action: {other}"))),
        }
    }
}

/// `dirty add|remove [N]`: rustcorn never runs a dirty arbiter, so Gunicorn's answer
/// for that case.
fn dirty_command(rest: &[String]) -> Outcome {
    let Some(action) = rest.first() else {
        return Err(invalid("Missing dirty action (add|remove)"));
    };
    match action.to_lowercase().as_str() {
        "add" | "remove" => {
            if let Some(n) = rest.get(1) {
                python_int(n)?;
            }
            Ok(json!({"success": false, "error": "Dirty arbiter not running"}))
        }
        other => Err(invalid(format!("Unknown dirty action: {other}"))),
    }
}

fn listener_info(listener: &Listener) -> Value {
    use std::os::fd::AsRawFd;
    let (fd, kind) = match listener {
        Listener::Tcp(l) => {
            let v6 = l.local_addr().is_ok_and(|a| a.is_ipv6());
            (l.as_raw_fd(), if v6 { "tcp6" } else { "tcp" })
        }
        Listener::Unix { listener, .. } => (listener.as_raw_fd(), "unix"),
    };
    json!({"address": listener.to_string(), "fd": fd, "type": kind})
}

/// Python's `int(text)` for a command argument, with its error message.
fn python_int(text: &str) -> Result<i64, Failure> {
    let t = text.trim().replace('_', "");
    let digits = t.strip_prefix(['+', '-']).unwrap_or(&t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "invalid literal for int() with base 10: '{text}'"
        )));
    }
    // Beyond i64 only "very many" can be meant; saturate.
    Ok(t.parse::<i64>().unwrap_or(if t.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    }))
}

/// A `--print-config` value (Python's repr) as the JSON value Gunicorn's `show config`
/// gives for the same setting: booleans, None, integers, lists of strings, strings.
fn python_literal(text: &str) -> Value {
    match text {
        "True" => return json!(true),
        "False" => return json!(false),
        "None" => return Value::Null,
        _ => {}
    }
    if let Ok(n) = text.parse::<i64>() {
        return json!(n);
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        if let Some(items) = python_strings(inner) {
            return json!(items);
        }
    }
    json!(text)
}

/// `'a', "b's"` → `["a", "b's"]`; `None` if it is not a list of string literals.
fn python_strings(inner: &str) -> Option<Vec<String>> {
    let mut items = Vec::new();
    let mut chars = inner.trim().chars().peekable();
    while let Some(quote) = chars.next() {
        if quote != '\'' && quote != '"' {
            return None;
        }
        let mut item = String::new();
        loop {
            match chars.next()? {
                '\\' => item.push(match chars.next()? {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    c => c,
                }),
                c if c == quote => break,
                c => item.push(c),
            }
        }
        items.push(item);
        match chars.next() {
            None => break,
            Some(',') => while chars.next_if_eq(&' ').is_some() {},
            Some(_) => return None,
        }
    }
    Some(items)
}

/// Python's `shlex.split`: words separated by whitespace; single quotes keep
/// everything, double quotes let `\` escape `"` and `\`, a bare `\` escapes the next
/// character.
pub(super) fn shell_split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => loop {
                let w = word.get_or_insert_with(String::new);
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => w.push(c),
                    None => return Err("No closing quotation".into()),
                }
            },
            '"' => loop {
                let w = word.get_or_insert_with(String::new);
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\')) => w.push(c),
                        Some(c) => {
                            w.push('\\');
                            w.push(c);
                        }
                        None => return Err("No closing quotation".into()),
                    },
                    Some(c) => w.push(c),
                    None => return Err("No closing quotation".into()),
                }
            },
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("No escaped character".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_as_shlex_splits_them() {
        let ok = |s: &str| shell_split(s).unwrap();
        assert_eq!(ok("worker  add 2"), ["worker", "add", "2"]);
        assert_eq!(
            ok("a 'b c' \"d \\\"e\\\"\" f\\ g ''"),
            ["a", "b c", "d \"e\"", "f g", ""]
        );
        assert_eq!(ok("  "), Vec::<String>::new());
        assert_eq!(shell_split("show 'x").unwrap_err(), "No closing quotation");
        assert_eq!(shell_split("show x\\").unwrap_err(), "No escaped character");
    }

    #[test]
    fn print_config_values_become_gunicorns_json() {
        assert_eq!(python_literal("True"), json!(true));
        assert_eq!(python_literal("None"), Value::Null);
        assert_eq!(python_literal("30"), json!(30));
        assert_eq!(python_literal("sync"), json!("sync"));
        assert_eq!(python_literal("[]"), json!([]));
        assert_eq!(
            python_literal("['127.0.0.1:0', \"it's\", 'unix:/a\\\\b']"),
            json!(["127.0.0.1:0", "it's", "unix:/a\\b"])
        );
        assert_eq!(python_literal("[1, 2]"), json!("[1, 2]"));
    }

    #[test]
    fn arguments_are_integers_as_python_reads_them() {
        assert_eq!(python_int(" 3 ").ok(), Some(3));
        assert_eq!(python_int("-2").ok(), Some(-2));
        assert_eq!(python_int("1_000").ok(), Some(1000));
        assert_eq!(python_int("99999999999999999999").ok(), Some(i64::MAX));
        match python_int("two") {
            Err(Failure::Invalid(e)) => {
                assert_eq!(e, "invalid literal for int() with base 10: 'two'")
            }
            _ => panic!("accepted 'two'"),
        }
    }
}
