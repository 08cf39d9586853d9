//! The access log: one line per response in `--access-logformat` (Gunicorn's atoms, see
//! [`super::format`]), to `--access-logfile` and, with `--log-syslog`, to syslog.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::format::{AccessFormat, Atom, Atoms, Value};
use crate::http::request::Head;

/// Bumped by [`super::reopen_log_files`]; each access log reopens its file when it sees
/// a new value, so the signal path only stores a number.
pub(super) static REOPEN_GENERATION: AtomicU64 = AtomicU64::new(0);

/// What one finished request contributes to its access-log line.
pub struct AccessRecord<'a> {
    pub head: &'a Head,
    /// REMOTE_ADDR (empty on a unix socket).
    pub remote_addr: &'a str,
    pub status: u16,
    /// Body bytes sent (Gunicorn's `resp.sent`).
    pub sent: u64,
    pub duration: Duration,
    /// The app's headers minus hop-by-hop ones, kept only when the format has `{..}o`.
    pub response_headers: &'a [(String, String)],
    /// `(lower-case key, str(value), value is a str)` for the format's `{..}e` atoms.
    pub environ: &'a [(String, String, bool)],
    /// Environ-read atoms (h U q m H) the app changed in the environ, with the value
    /// it left (`None`: removed).
    pub changed: &'a [(Atom, Option<String>)],
}

/// Where lines go.
enum Dest {
    Off,
    Stdout,
    File { path: String, file: File },
}

/// An open access log.
pub struct AccessLog {
    format: AccessFormat,
    dest: Dest,
    syslog: bool,
    generation: u64,
    stamp: (i64, String),
    line: String,
    /// `$SCRIPT_NAME`, stripped from PATH_INFO (the `U` atom) as the environ does.
    script_name: String,
}

impl AccessLog {
    /// Opens `--access-logfile` (`-` is stdout); `syslog` sends lines to syslog too.
    pub fn open(path: Option<&str>, format: AccessFormat, syslog: bool) -> io::Result<AccessLog> {
        let dest = match path {
            None => Dest::Off,
            Some("-") => Dest::Stdout,
            Some(p) => Dest::File {
                path: p.to_string(),
                file: super::open_append(p)?,
            },
        };
        Ok(AccessLog::new(dest, format, syslog))
    }

    /// The access log at `path`, writing to `file` already open there (a worker's
    /// copy of the master's file, see [`super::reopen::worker_access_log`]).
    pub fn with_file(
        path: &str,
        file: std::fs::File,
        format: AccessFormat,
        syslog: bool,
    ) -> io::Result<AccessLog> {
        let dest = Dest::File {
            path: path.to_string(),
            file,
        };
        Ok(AccessLog::new(dest, format, syslog))
    }

    fn new(dest: Dest, format: AccessFormat, syslog: bool) -> AccessLog {
        AccessLog {
            format,
            dest,
            syslog,
            generation: REOPEN_GENERATION.load(Ordering::Relaxed),
            stamp: (i64::MIN, String::new()),
            line: String::with_capacity(256),
            script_name: std::env::var("SCRIPT_NAME").unwrap_or_default(),
        }
    }

    /// Whether a line would be written (skip gathering its atoms otherwise).
    pub fn enabled(&self) -> bool {
        self.syslog || !matches!(self.dest, Dest::Off)
    }

    /// The compiled format, so the caller knows which extras to gather.
    pub fn format(&self) -> &AccessFormat {
        &self.format
    }

    /// Renders one line and writes it in a single write(2).
    pub fn log(&mut self, rec: &AccessRecord<'_>) {
        if !self.enabled() {
            return;
        }
        self.reopen_if_asked();
        let now = super::time::unix_now();
        if self.stamp.0 != now {
            self.stamp = (now, format!("[{}]", super::time::access_log_stamp(now)));
        }
        self.line.clear();
        let atoms = RecordAtoms {
            rec,
            stamp: &self.stamp.1,
            script_name: &self.script_name,
        };
        self.format.render(&atoms, &mut self.line);
        if self.syslog {
            super::syslog::send(super::syslog::Severity::Info, "access", &self.line);
        }
        self.line.push('\n');
        let _ = match &mut self.dest {
            Dest::Off => Ok(()),
            Dest::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(self.line.as_bytes())
                    .and_then(|_| out.flush())
            }
            Dest::File { file, .. } => file.write_all(self.line.as_bytes()),
        };
    }

    fn reopen_if_asked(&mut self) {
        let generation = REOPEN_GENERATION.load(Ordering::Relaxed);
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        if let Dest::File { path, file } = &mut self.dest {
            match super::open_append(path) {
                Ok(f) => *file = f,
                Err(e) => tracing::error!("Cannot reopen access log {path}: {e}"),
            }
        }
    }
}

struct RecordAtoms<'a> {
    rec: &'a AccessRecord<'a>,
    stamp: &'a str,
    script_name: &'a str,
}

impl Atoms for RecordAtoms<'_> {
    fn value<'s>(&'s self, atom: &'s Atom, scratch: &'s mut String) -> Value<'s> {
        use std::fmt::Write as _;
        let rec = self.rec;
        let head = rec.head;
        if let Some(value) = self.changed(atom) {
            return value;
        }
        let us = rec.duration.subsec_micros() as u64;
        // A timedelta's `.seconds` (Gunicorn's T) leaves out whole days.
        let secs = rec.duration.as_secs() % 86_400;
        match atom {
            Atom::RemoteAddr => Value::Str(rec.remote_addr),
            Atom::Ident => Value::Str("-"),
            Atom::User => match basic_auth_user(head) {
                Some(user) if !user.is_empty() => {
                    *scratch = user;
                    Value::Str(scratch)
                }
                _ => Value::Str("-"),
            },
            Atom::Time => Value::Str(self.stamp),
            Atom::RequestLine => {
                let method = self.changed_str(&Atom::Method).unwrap_or(head.method());
                let protocol = self.changed_str(&Atom::Protocol).unwrap_or(head.protocol());
                let _ = write!(scratch, "{method} {} {protocol}", head.target());
                Value::Str(scratch)
            }
            Atom::Method => Value::Str(head.method()),
            Atom::Path => {
                *scratch = path_info(head.target(), self.script_name);
                Value::Str(scratch)
            }
            Atom::Query => Value::Str(crate::http::target::split_target(head.target()).1),
            Atom::Protocol => Value::Str(head.protocol()),
            Atom::Status => {
                let _ = write!(scratch, "{}", rec.status);
                Value::Str(scratch)
            }
            Atom::Sent => Value::Int(rec.sent),
            Atom::SentOrDash => {
                let _ = write!(scratch, "{}", rec.sent);
                Value::Str(scratch)
            }
            Atom::Referer => environ_header(head, "referer", scratch),
            Atom::UserAgent => environ_header(head, "user-agent", scratch),
            Atom::Seconds => Value::Int(secs),
            Atom::Micros => Value::Int(secs * 1_000_000 + us),
            Atom::Millis => Value::Int(secs * 1000 + us / 1000),
            Atom::Decimal => {
                let _ = write!(scratch, "{secs}.{us:06}");
                Value::Str(scratch)
            }
            Atom::Pid => {
                let _ = write!(scratch, "<{}>", std::process::id());
                Value::Str(scratch)
            }
            Atom::RequestHeader(name) => match last_header(head, name) {
                Some(v) => {
                    *scratch = crate::http::target::latin1(trim_ows(v));
                    Value::Str(scratch)
                }
                None => Value::Raw("-"),
            },
            Atom::ResponseHeader(name) => rec
                .response_headers
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map_or(Value::Raw("-"), |(_, v)| {
                    Value::Str(v.trim_matches([' ', '\t']))
                }),
            Atom::Environ(name) => rec.environ.iter().rev().find(|(k, _, _)| k == name).map_or(
                Value::Raw("-"),
                |(_, v, is_str)| match is_str {
                    true => Value::Str(v),
                    false => Value::Raw(v),
                },
            ),
            Atom::Missing => Value::Raw("-"),
        }
    }
}

impl RecordAtoms<'_> {
    /// The environ's value for an atom the app changed: `-` for a removed
    /// REMOTE_ADDR (`environ.get('REMOTE_ADDR', '-')`), `None` for the others (Python
    /// formats a missing `environ.get(...)` as `None`).
    fn changed(&self, atom: &Atom) -> Option<Value<'_>> {
        let (_, value) = self.rec.changed.iter().find(|(a, _)| a == atom)?;
        Some(match value {
            Some(v) => Value::Str(v),
            None if *atom == Atom::RemoteAddr => Value::Raw("-"),
            None => Value::Raw("None"),
        })
    }

    fn changed_str(&self, atom: &Atom) -> Option<&str> {
        let (_, value) = self.rec.changed.iter().find(|(a, _)| a == atom)?;
        Some(value.as_deref().unwrap_or("None"))
    }
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// Gunicorn's `{name}i`: the last value of the header (its atoms are a dict).
fn last_header<'h>(head: &'h Head, name: &str) -> Option<&'h [u8]> {
    head.values(name).next_back()
}

/// `f` and `a` come from the environ in Gunicorn: repeats joined with `,`, `-` if absent.
fn environ_header<'s>(head: &Head, name: &str, scratch: &'s mut String) -> Value<'s> {
    let mut found = false;
    for v in head.values(name) {
        if found {
            scratch.push(',');
        }
        found = true;
        scratch.extend(trim_ows(v).iter().map(|&b| b as char));
    }
    if found {
        Value::Str(scratch)
    } else {
        Value::Str("-")
    }
}

/// PATH_INFO as the environ has it: percent-decoded, latin-1, SCRIPT_NAME stripped.
fn path_info(target: &str, script_name: &str) -> String {
    use crate::http::target::{latin1, percent_decode, split_target};
    let decoded = percent_decode(split_target(target).0.as_bytes());
    let mut path: &[u8] = &decoded;
    if !script_name.is_empty() && path.starts_with(script_name.as_bytes()) {
        path = &path[script_name.len()..];
    }
    latin1(path)
}

/// Gunicorn's `_get_user`: the user of a `Basic` Authorization header, or none when it
/// is absent or does not decode (base64, then UTF-8).
fn basic_auth_user(head: &Head) -> Option<String> {
    let auth = crate::http::target::latin1(head.header("authorization")?);
    if !auth.to_ascii_lowercase().starts_with("basic") {
        return None;
    }
    let (_, encoded) = auth.split_once(' ')?;
    let bytes = base64_decode(encoded.trim())?;
    let user = bytes.split(|&b| b == b':').next().unwrap_or(&[]);
    String::from_utf8(user.to_vec()).ok()
}

/// Python's `base64.b64decode` without `validate`: characters outside the alphabet are
/// skipped; data stops at padding; a lone trailing character is an error.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits, mut count) = (0u32, 0u32, 0usize);
    for c in text.chars() {
        let v = match c {
            'A'..='Z' => c as u32 - 'A' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 26,
            '0'..='9' => c as u32 - '0' as u32 + 52,
            '+' => 62,
            '/' => 63,
            '=' if count % 4 >= 2 => break,
            _ => continue,
        };
        count += 1;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (count % 4 != 1).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_python() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YWxpY2U6c2VjcmV0").unwrap(), b"alice:secret");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("Y Q=\n=").unwrap(), b"a");
        assert!(base64_decode("YWJjZ").is_none());
    }

    #[test]
    fn reopen_log_files_moves_the_access_log_to_a_fresh_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let format = AccessFormat::compile("%(m)s %(U)s %(s)s").unwrap();
        let mut log = AccessLog::open(Some(path.to_str().unwrap()), format, false).unwrap();
        let head = Head::from_parts("GET", "/one", 1, &[]);
        let record = |head| AccessRecord {
            head,
            remote_addr: "127.0.0.1",
            status: 200,
            sent: 0,
            duration: Duration::ZERO,
            response_headers: &[],
            environ: &[],
            changed: &[],
        };
        log.log(&record(&head));
        // What logrotate does: move the file away, then signal USR1.
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        crate::log::reopen_log_files();
        let two = Head::from_parts("GET", "/two", 1, &[]);
        log.log(&record(&two));
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "GET /one 200\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "GET /two 200\n");
    }

    #[test]
    fn path_info_is_decoded_and_script_stripped() {
        assert_eq!(path_info("/app/a%20b?x=1", "/app"), "/a b");
        assert_eq!(path_info("/%C3%A9", ""), "/\u{c3}\u{a9}");
    }
}
