//! `rustcorn ctl`: the control-socket client, Gunicorn's `gunicornc` for rustcorn (and
//! for Gunicorn: the protocol is the same). `-c CMD` runs one command, otherwise an
//! interactive prompt reads commands from stdin; `-j` prints the raw JSON reply for
//! scripts, else replies are formatted as `gunicornc` formats them.

use std::ffi::OsString;
use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};

/// `rustcorn ctl [-s PATH] [-c CMD] [-j]`
#[derive(Debug, Parser)]
#[command(
    name = "rustcorn ctl",
    about = "Control a running rustcorn (or Gunicorn) through its control socket",
    disable_version_flag = true,
    after_help = "Examples:\n  rustcorn ctl                      interactive\n  \
                  rustcorn ctl -c 'show workers'\n  rustcorn ctl -c 'worker add 2'\n  \
                  rustcorn ctl -j -c 'show stats'   JSON for scripts"
)]
struct CtlArgs {
    /// The control socket; default the server's: $XDG_RUNTIME_DIR/gunicorn.ctl, else
    /// $HOME/.gunicorn/gunicorn.ctl.
    #[arg(short = 's', long = "socket", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Run this one command and exit (`help` lists them).
    #[arg(short = 'c', long = "command", value_name = "CMD")]
    command: Option<String>,
    /// Print the reply's data as JSON.
    #[arg(short = 'j', long = "json")]
    json: bool,
    /// Show the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
}

/// The whole `rustcorn ctl …` command line (`args[0]` the program, `args[1]` `ctl`);
/// returns the exit status: 0, 1 for an error, 2 for a usage error.
pub fn run(args: Vec<OsString>) -> i32 {
    let argv = std::iter::once(OsString::from("rustcorn ctl")).chain(args.into_iter().skip(2));
    let args = match CtlArgs::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if args.version {
        println!("rustcorn ctl (rustcorn {})", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let socket = args
        .socket
        .unwrap_or_else(crate::config::control::default_socket_path);
    let socket = std::path::absolute(&socket).unwrap_or(socket);
    match &args.command {
        Some(command) => one_command(&socket, command, args.json),
        None => interactive(&socket, args.json),
    }
}

/// A connection to a control socket.
pub struct Client {
    stream: UnixStream,
    next_id: u64,
}

impl Client {
    /// Connects, with gunicornc's 30 s bound on every read and write.
    pub fn connect(path: &std::path::Path) -> Result<Client, String> {
        let fail = |e: std::io::Error| format!("Failed to connect to {}: {e}", path.display());
        let stream = UnixStream::connect(path).map_err(fail)?;
        let limit = Some(Duration::from_secs(30));
        stream.set_read_timeout(limit).map_err(fail)?;
        stream.set_write_timeout(limit).map_err(fail)?;
        Ok(Client { stream, next_id: 0 })
    }

    /// Sends `command` and returns the reply's `data`, or its `error`.
    pub fn send(&mut self, command: &str) -> Result<Value, String> {
        self.next_id += 1;
        let request = json!({"id": self.next_id, "command": command, "args": []});
        let payload = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        let io = |e: std::io::Error| format!("Communication error: {e}");
        self.stream.write_all(&frame).map_err(io)?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).map_err(io)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > 16 << 20 {
            return Err(format!(
                "Communication error: reply too large ({len} bytes)"
            ));
        }
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).map_err(io)?;
        let reply: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("Communication error: invalid JSON reply: {e}"))?;
        if reply["status"] == "error" {
            return Err(reply["error"]
                .as_str()
                .unwrap_or("Unknown error")
                .to_string());
        }
        Ok(reply.get("data").cloned().unwrap_or(json!({})))
    }
}

fn one_command(socket: &std::path::Path, command: &str, json: bool) -> i32 {
    let result = Client::connect(socket).and_then(|mut c| c.send(command.trim()));
    match result {
        Ok(data) => {
            println!("{}", render(command, &data, json));
            0
        }
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

fn interactive(socket: &std::path::Path, json: bool) -> i32 {
    let mut client = match Client::connect(socket) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    println!("Connected to {}", socket.display());
    println!("Type 'help' for available commands, 'quit' to exit.\n");
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        print!("rustcorn> ");
        let _ = std::io::stdout().flush();
        let Some(Ok(line)) = lines.next() else {
            println!();
            return 0;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if matches!(line.to_lowercase().as_str(), "quit" | "exit" | "q") {
            return 0;
        }
        match client.send(line) {
            Ok(data) => println!("{}\n", render(line, &data, json)),
            Err(e) if e.starts_with("Communication error") => {
                println!("Error: {e}");
                match Client::connect(socket) {
                    Ok(c) => client = c,
                    Err(_) => {
                        println!("Connection lost. Exiting.");
                        return 1;
                    }
                }
            }
            Err(e) => println!("Error: {e}\n"),
        }
    }
}

/// A reply for a person (gunicornc's layouts), or its JSON.
fn render(command: &str, data: &Value, json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(data).unwrap_or_default();
    }
    // The command words, without the numbers and flags after them.
    let words: Vec<String> = command
        .split_whitespace()
        .take_while(|w| !w.starts_with('-') && !w.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_lowercase)
        .collect();
    match words.join(" ").as_str() {
        "show all" => format_all(data),
        "show workers" => format_workers(data),
        "show dirty" if data["enabled"] != true => "Dirty arbiter not running".into(),
        "show stats" => format_stats(data),
        "show listeners" => format_listeners(data),
        "show config" => format_config(data),
        "help" => format_help(data),
        _ if data.as_object().is_some_and(|o| o.is_empty()) => "OK".into(),
        _ => serde_json::to_string_pretty(data).unwrap_or_default(),
    }
}

/// A JSON value as Python's `str()` prints it (`True`, `None`, `0.5`, `text`).
fn text(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn worker_rows(workers: &[Value], indent: &str) -> Vec<String> {
    workers
        .iter()
        .map(|w| {
            let booted = if w["booted"] == true { "yes" } else { "no" };
            let beat = match &w["last_heartbeat"] {
                Value::Null => "n/a".to_string(),
                hb => format!("{hb}s ago"),
            };
            format!(
                "{indent}{:<10} {:<6} {booted:<8} {beat}",
                text(&w["pid"]),
                text(&w["age"])
            )
        })
        .collect()
}

fn format_workers(data: &Value) -> String {
    let workers = data["workers"].as_array().cloned().unwrap_or_default();
    if workers.is_empty() {
        return "No workers running".into();
    }
    let mut lines = vec![
        format!("{:<10} {:<6} {:<8} LAST_BEAT", "PID", "AGE", "BOOTED"),
        "-".repeat(40),
    ];
    lines.extend(worker_rows(&workers, ""));
    lines.push(String::new());
    lines.push(format!("Total: {} workers", text(&data["count"])));
    lines.join("\n")
}

fn format_all(data: &Value) -> String {
    let workers = data["web_workers"].as_array().cloned().unwrap_or_default();
    let mut lines = vec![
        "ARBITER (master)".to_string(),
        format!("  PID: {}", text(&data["arbiter"]["pid"])),
        String::new(),
        format!("WEB WORKERS ({})", text(&data["web_worker_count"])),
    ];
    if workers.is_empty() {
        lines.push("  (none)".into());
    } else {
        lines.push(format!(
            "  {:<10} {:<6} {:<8} LAST_BEAT",
            "PID", "AGE", "BOOTED"
        ));
        lines.push(format!("  {}", "-".repeat(38)));
        lines.extend(worker_rows(&workers, "  "));
    }
    lines.push(String::new());
    lines.push("DIRTY ARBITER".into());
    match &data["dirty_arbiter"] {
        Value::Null => lines.push("  (not running)".into()),
        d => lines.push(format!("  PID: {}", text(&d["pid"]))),
    }
    lines.join("\n")
}

fn format_stats(data: &Value) -> String {
    let uptime = match data["uptime"].as_f64() {
        Some(u) if u > 0.0 => {
            let (h, m, s) = (u as u64 / 3600, u as u64 % 3600 / 60, u as u64 % 60);
            match (h, m) {
                (0, 0) => format!("{s}s"),
                (0, _) => format!("{m}m {s}s"),
                _ => format!("{h}h {m}m {s}s"),
            }
        }
        _ => "unknown".into(),
    };
    let field = |key: &str| match &data[key] {
        Value::Null => "0".to_string(),
        v => text(v),
    };
    [
        format!("Uptime:           {uptime}"),
        format!("PID:              {}", field("pid")),
        format!("Workers current:  {}", field("workers_current")),
        format!("Workers target:   {}", field("workers_target")),
        format!("Workers spawned:  {}", field("workers_spawned")),
        format!("Workers killed:   {}", field("workers_killed")),
        format!("Reloads:          {}", field("reloads")),
    ]
    .join("\n")
}

fn format_listeners(data: &Value) -> String {
    let listeners = data["listeners"].as_array().cloned().unwrap_or_default();
    if listeners.is_empty() {
        return "No listeners bound".into();
    }
    let mut lines = vec![
        format!("{:<40} {:<8} FD", "ADDRESS", "TYPE"),
        "-".repeat(55),
    ];
    for l in &listeners {
        lines.push(format!(
            "{:<40} {:<8} {}",
            text(&l["address"]),
            text(&l["type"]),
            text(&l["fd"])
        ));
    }
    lines.push(String::new());
    lines.push(format!("Total: {} listeners", text(&data["count"])));
    lines.join("\n")
}

fn format_config(data: &Value) -> String {
    let Some(config) = data.as_object() else {
        return text(data);
    };
    let mut keys: Vec<&String> = config.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| format!("{k}: {}", text(&config[*k])))
        .collect::<Vec<_>>()
        .join("\n")
}

fn format_help(data: &Value) -> String {
    let Some(commands) = data["commands"].as_object() else {
        return "Available commands:\n".into();
    };
    let width = commands.keys().map(String::len).max().unwrap_or(0) + 2;
    let mut names: Vec<&String> = commands.keys().collect();
    names.sort();
    let mut lines = vec!["Available commands:".to_string(), String::new()];
    lines.extend(
        names
            .iter()
            .map(|n| format!("  {n:<width$} {}", text(&commands[*n]))),
    );
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_laid_out_as_gunicornc_lays_them_out() {
        let workers = json!({"count": 1, "workers": [
            {"pid": 42, "age": 1, "booted": true, "aborted": false, "last_heartbeat": 0.5}]});
        assert_eq!(
            render("show workers", &workers, false),
            "PID        AGE    BOOTED   LAST_BEAT\n----------------------------------------\n\
             42         1      yes      0.5s ago\n\nTotal: 1 workers"
        );
        let stats = json!({"uptime": 3725.1, "pid": 7, "workers_current": 2});
        assert!(render("show stats", &stats, false)
            .starts_with("Uptime:           1h 2m 5s\nPID:              7\n"));
        let config =
            json!({"workers": 2, "bind": ["a:1", "b:2"], "pidfile": null, "daemon": false});
        assert_eq!(
            render("SHOW CONFIG", &config, false),
            "bind: a:1, b:2\ndaemon: False\npidfile: None\nworkers: 2"
        );
        assert_eq!(render("worker add 2", &json!({}), false), "OK");
        assert_eq!(
            render("worker add 2", &json!({"added": 2}), false),
            "{\n  \"added\": 2\n}"
        );
        assert_eq!(
            render("show stats", &json!({"pid": 1}), true),
            "{\n  \"pid\": 1\n}"
        );
    }
}
