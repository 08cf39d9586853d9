//! The access log in Gunicorn's default format:
//! `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`.

use std::fs::File;
use std::io::{self, Write};

/// What one finished request contributes to its access-log line.
pub struct AccessRecord<'a> {
    pub remote_addr: &'a str,
    pub method: &'a str,
    pub raw_uri: &'a str,
    pub protocol: &'a str,
    pub status: u16,
    pub body_bytes: u64,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// An open access log; `None` destination means logging is off.
pub enum AccessLog {
    Off,
    Stdout,
    File(File),
}

impl AccessLog {
    /// Opens `--access-logfile` (`-` is stdout).
    pub fn open(path: Option<&str>) -> io::Result<AccessLog> {
        Ok(match path {
            None => AccessLog::Off,
            Some("-") => AccessLog::Stdout,
            Some(p) => AccessLog::File(super::open_append(p)?),
        })
    }

    /// Whether a line would be written (skip building it otherwise).
    pub fn enabled(&self) -> bool {
        !matches!(self, AccessLog::Off)
    }

    /// Writes one line in a single write(2).
    pub fn log(&mut self, rec: &AccessRecord<'_>) {
        if !self.enabled() {
            return;
        }
        let line = format_line(rec, &super::time::access_log_stamp(super::time::unix_now()));
        let _ = match self {
            AccessLog::Off => Ok(()),
            AccessLog::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes()).and_then(|_| out.flush())
            }
            AccessLog::File(f) => f.write_all(line.as_bytes()),
        };
    }
}

fn format_line(rec: &AccessRecord<'_>, stamp: &str) -> String {
    format!(
        "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\"\n",
        if rec.remote_addr.is_empty() {
            "-"
        } else {
            rec.remote_addr
        },
        stamp,
        rec.method,
        rec.raw_uri,
        rec.protocol,
        rec.status,
        rec.body_bytes,
        rec.referer.unwrap_or("-"),
        rec.user_agent.unwrap_or("-"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_format_matches_gunicorn() {
        let rec = AccessRecord {
            remote_addr: "127.0.0.1",
            method: "GET",
            raw_uri: "/a?b=1",
            protocol: "HTTP/1.1",
            status: 200,
            body_bytes: 6,
            referer: None,
            user_agent: Some("curl/8.0"),
        };
        assert_eq!(
            format_line(&rec, "23/Nov/2026:21:09:48 +0000"),
            "127.0.0.1 - - [23/Nov/2026:21:09:48 +0000] \"GET /a?b=1 HTTP/1.1\" 200 6 \"-\" \"curl/8.0\"\n"
        );
    }
}
