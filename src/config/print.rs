//! `--print-config`: every Gunicorn setting, sorted by name, `name = value` with the
//! names padded to one width — Gunicorn's format, values written as Python shows them.

use super::settings::{Kind, Setting, SETTINGS};
use super::Config;
use crate::sock::BindAddress;

/// A setting's value as Gunicorn's `--print-config` prints it, from its string values.
pub fn display(setting: &Setting, values: &[String]) -> String {
    match setting.kind {
        Kind::Flag => "True".to_string(),
        Kind::NegFlag => "False".to_string(),
        Kind::List => py_list(values.iter().map(String::as_str)),
        Kind::CommaList => py_list(
            values
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|v| !v.is_empty()),
        ),
        Kind::Dict => {
            let pairs: Vec<String> = values
                .chunks(2)
                .map(|kv| {
                    format!(
                        "{}: {}",
                        py_str(&kv[0]),
                        py_str(kv.get(1).map_or("", |v| v))
                    )
                })
                .collect();
            format!("{{{}}}", pairs.join(", "))
        }
        Kind::JsonDict => values.get(1).cloned().unwrap_or_else(|| "{}".to_string()),
        _ => values.last().cloned().unwrap_or_else(|| "None".to_string()),
    }
}

/// The whole `--print-config` text (no trailing newline).
pub fn render(config: &Config) -> String {
    let mut settings: Vec<&Setting> = SETTINGS.iter().collect();
    settings.sort_by_key(|s| s.name);
    let width = settings.iter().map(|s| s.name.len()).max().unwrap_or(0);
    settings
        .iter()
        .map(|s| format!("{:width$} = {}", s.name, value_of(config, s)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One setting's value as `--print-config` shows it (also `server.cfg` for hooks).
pub fn value_of(config: &Config, s: &Setting) -> String {
    let sources = &config.sources;
    match s.name {
        "bind" => {
            return py_list(
                config
                    .binds
                    .iter()
                    .map(bind_spec)
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
            )
        }
        "workers" => return config.workers.to_string(),
        // Gunicorn prints the validated value (`True` becomes `prior-knowledge`).
        "http2_cleartext" => return config.http2.cleartext.name().to_string(),
        "wsgi_app" if config.paste.is_some() => return "None".to_string(),
        "wsgi_app" | "default_proc_name" => return config.app_module.clone(),
        "chdir" => {
            return match &config.chdir {
                Some(dir) => dir.clone(),
                None => std::env::current_dir().unwrap_or_default(),
            }
            .display()
            .to_string()
        }
        // Gunicorn computes the default path (and reads the mode as an int) on load.
        "control_socket" => return config.control.socket.clone(),
        "control_socket_mode" => return config.control.mode.to_string(),
        "config" if !sources.values.contains_key("config") && sources.config_file.is_some() => {
            return sources.config_file.clone().unwrap_or_default()
        }
        _ => {}
    }
    if s.kind == Kind::Hook {
        if let Some(hook) = sources.hooks.iter().find(|h| h.name == s.name) {
            return format!("<{}()>", hook.target);
        }
    }
    match sources.values.get(s.name).or(sources.file_only.get(s.name)) {
        Some(values) => display(s, values),
        None => s.default.to_string(),
    }
}

fn bind_spec(bind: &BindAddress) -> String {
    match bind {
        BindAddress::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
        BindAddress::Tcp { host, port } => format!("{host}:{port}"),
        BindAddress::Unix(path) => format!("unix:{}", path.display()),
        BindAddress::Fd(fd) => format!("fd://{fd}"),
    }
}

fn py_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.map(py_str).collect();
    format!("[{}]", items.join(", "))
}

/// A string as Python's `repr` writes it (quotes chosen the same way).
fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_written_as_python_repr() {
        assert_eq!(py_str("a"), "'a'");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("both ' and \""), "'both \\' and \"'");
        assert_eq!(py_str("a\\b\n"), "'a\\\\b\\n'");
    }

    #[test]
    fn values_are_shown_by_kind() {
        let get = |name| super::super::settings::lookup(name).unwrap();
        let v = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(display(get("bind"), &v(&["a:1", "b:2"])), "['a:1', 'b:2']");
        assert_eq!(display(get("workers"), &v(&["3"])), "3");
        assert_eq!(display(get("spew"), &v(&["true"])), "True");
        assert_eq!(display(get("sendfile"), &v(&["false"])), "False");
        assert_eq!(
            display(get("forwarded_allow_ips"), &v(&["10.0.0.1, 10.0.0.2"])),
            "['10.0.0.1', '10.0.0.2']"
        );
        assert_eq!(
            display(get("secure_scheme_headers"), &v(&["X-A", "b"])),
            "{'X-A': 'b'}"
        );
    }
}
