//! Gunicorn 27's HTTP/2 settings (`--http-protocols`, `--http2-*`), validated with its
//! messages. Over TLS, `h2` in `--http-protocols` is offered in ALPN (see
//! [`crate::tls::server_config`]); the numbers become the SETTINGS the server sends
//! (see [`crate::worker::h2conn`]).

use clap::Args;

use super::ConfigError;

/// A protocol `--http-protocols` may list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    H1,
    H2,
}

impl Protocol {
    /// The ALPN identifier (RFC 7301 registry).
    pub fn alpn(self) -> &'static [u8] {
        match self {
            Protocol::H1 => b"http/1.1",
            Protocol::H2 => b"h2",
        }
    }
}

/// `--http2-cleartext`: HTTP/2 without TLS, for a trusted proxy in front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleartext {
    Off,
    PriorKnowledge,
    Upgrade,
    Both,
}

impl Cleartext {
    /// Sniff for the connection preface.
    pub fn prior_knowledge(self) -> bool {
        matches!(self, Cleartext::PriorKnowledge | Cleartext::Both)
    }

    /// Honour `Upgrade: h2c`.
    pub fn upgrade(self) -> bool {
        matches!(self, Cleartext::Upgrade | Cleartext::Both)
    }

    /// Gunicorn's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Cleartext::Off => "off",
            Cleartext::PriorKnowledge => "prior-knowledge",
            Cleartext::Upgrade => "upgrade",
            Cleartext::Both => "both",
        }
    }
}

/// The HTTP/2 section of Gunicorn's settings, as text: Gunicorn parses the integers
/// with `int(val, 0)` and its own messages, which clap's typed parsing would replace.
#[derive(Debug, Args)]
pub struct Http2Args {
    /// Protocols to offer, in order of preference: h1 (HTTP/1.1), h2 (HTTP/2 over TLS,
    /// negotiated with ALPN; gthread worker).
    #[arg(long = "http-protocols", value_name = "STRING", default_value = "h1")]
    pub http_protocols: String,

    /// HTTP/2 without TLS (h2c), only for peers in --forwarded-allow-ips: off,
    /// prior-knowledge (the client starts with the HTTP/2 preface), upgrade
    /// (`Upgrade: h2c`) or both. Needs h2 in --http-protocols (gthread worker).
    #[arg(long = "http2-cleartext", value_name = "STRING", default_value = "off")]
    pub http2_cleartext: String,

    /// Streams a client may have open at once on one HTTP/2 connection.
    #[arg(
        long = "http2-max-concurrent-streams",
        value_name = "INT",
        default_value = "100",
        allow_negative_numbers = true
    )]
    pub http2_max_concurrent_streams: String,

    /// The HTTP/2 flow-control window of each stream, in bytes.
    #[arg(
        long = "http2-initial-window-size",
        value_name = "INT",
        default_value = "65535",
        allow_negative_numbers = true
    )]
    pub http2_initial_window_size: String,

    /// The largest HTTP/2 frame payload the server accepts (16384 to 16777215).
    #[arg(
        long = "http2-max-frame-size",
        value_name = "INT",
        default_value = "16384",
        allow_negative_numbers = true
    )]
    pub http2_max_frame_size: String,

    /// The largest header list (decoded, RFC 9113 sizes) the server accepts; 0 sends
    /// no limit (the request-field limits still apply).
    #[arg(
        long = "http2-max-header-list-size",
        value_name = "INT",
        default_value = "65536",
        allow_negative_numbers = true
    )]
    pub http2_max_header_list_size: String,
}

/// The resolved HTTP/2 settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Http2Config {
    /// In order of preference; never empty.
    pub protocols: Vec<Protocol>,
    pub cleartext: Cleartext,
    pub max_concurrent_streams: u32,
    pub initial_window_size: u32,
    pub max_frame_size: u32,
    /// 0: no SETTINGS_MAX_HEADER_LIST_SIZE is sent.
    pub max_header_list_size: u32,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            protocols: vec![Protocol::H1],
            cleartext: Cleartext::Off,
            max_concurrent_streams: 100,
            initial_window_size: 65535,
            max_frame_size: 16384,
            max_header_list_size: 65536,
        }
    }
}

impl Http2Config {
    /// `h2` is listed.
    pub fn wants_h2(&self) -> bool {
        self.protocols.contains(&Protocol::H2)
    }

    /// The ALPN list for a worker that can speak HTTP/2: the listed protocols in order,
    /// with `http/1.1` appended when missing (rustls refuses the handshake of a client
    /// with no protocol in common, where OpenSSL goes on without ALPN). Empty when `h2`
    /// is not listed, as in Gunicorn (no ALPN at all).
    pub fn alpn(&self) -> Vec<Vec<u8>> {
        if !self.wants_h2() {
            return Vec::new();
        }
        let mut list: Vec<Vec<u8>> = self.protocols.iter().map(|p| p.alpn().to_vec()).collect();
        if !self.protocols.contains(&Protocol::H1) {
            list.push(Protocol::H1.alpn().to_vec());
        }
        list
    }
}

/// Validates the flags with Gunicorn's messages.
pub fn resolve(args: &Http2Args) -> Result<Http2Config, ConfigError> {
    let cleartext = parse_cleartext(&args.http2_cleartext)
        .map_err(|e| invalid("--http2-cleartext", &args.http2_cleartext, e))?;
    let int = |flag: &'static str, text: &str| python_int(text).map_err(|e| invalid(flag, text, e));
    let streams = int(
        "--http2-max-concurrent-streams",
        &args.http2_max_concurrent_streams,
    )?;
    let window = int(
        "--http2-initial-window-size",
        &args.http2_initial_window_size,
    )?;
    let frame = int("--http2-max-frame-size", &args.http2_max_frame_size)?;
    let list = int(
        "--http2-max-header-list-size",
        &args.http2_max_header_list_size,
    )?;
    let streams = check_streams(streams).map_err(|e| {
        invalid(
            "--http2-max-concurrent-streams",
            &args.http2_max_concurrent_streams,
            e,
        )
    })?;
    let window = check_window(window).map_err(|e| {
        invalid(
            "--http2-initial-window-size",
            &args.http2_initial_window_size,
            e,
        )
    })?;
    let frame = check_frame(frame)
        .map_err(|e| invalid("--http2-max-frame-size", &args.http2_max_frame_size, e))?;
    let list = pos_int(list)
        .and_then(|v| u32::try_from(v).map_err(|_| format!("Value is too large: {v}")))
        .map_err(|e| {
            invalid(
                "--http2-max-header-list-size",
                &args.http2_max_header_list_size,
                e,
            )
        })?;
    Ok(Http2Config {
        protocols: parse_protocols(&args.http_protocols)
            .map_err(|e| invalid("--http-protocols", &args.http_protocols, e))?,
        cleartext,
        max_concurrent_streams: streams,
        initial_window_size: window,
        max_frame_size: frame,
        max_header_list_size: list,
    })
}

/// The warning Gunicorn writes to stderr when `h2` cannot be negotiated.
pub fn never_negotiated_warning(config: &Http2Config, tls: bool) -> Option<&'static str> {
    (config.wants_h2() && !tls && config.cleartext == Cleartext::Off).then_some(
        "Warning: http_protocols includes h2 but there is no TLS and http2_cleartext is off, \
         so HTTP/2 will never be negotiated.",
    )
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    super::invalid(flag, value, reason)
}

/// Gunicorn's `validate_http_protocols`.
fn parse_protocols(text: &str) -> Result<Vec<Protocol>, String> {
    let names: Vec<String> = text
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(vec![Protocol::H1]);
    }
    let mut out = Vec::new();
    for name in &names {
        let p = match name.as_str() {
            "h1" => Protocol::H1,
            "h2" => Protocol::H2,
            other => {
                return Err(format!(
                    "Invalid protocol '{other}'. Valid protocols: h1, h2"
                ))
            }
        };
        if out.contains(&p) {
            return Err("Duplicate protocols specified".into());
        }
        out.push(p);
    }
    Ok(out)
}

/// Gunicorn's `validate_http2_cleartext` (config-file booleans arrive as `True`/`False`).
fn parse_cleartext(text: &str) -> Result<Cleartext, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "false" => Ok(Cleartext::Off),
        "prior-knowledge" | "true" => Ok(Cleartext::PriorKnowledge),
        "upgrade" => Ok(Cleartext::Upgrade),
        "both" => Ok(Cleartext::Both),
        other => Err(format!("Invalid http2_cleartext: {other}")),
    }
}

/// Python's `int(text, 0)` (decimal, `0x`, `0o`, `0b`; a sign; `_` between digits).
fn python_int(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid literal for int() with base 0: '{text}'");
    let t = text.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = t.to_ascii_lowercase().replace('_', "");
    let (digits, radix) = match lower.get(..2) {
        Some("0x") => (&lower[2..], 16),
        Some("0o") => (&lower[2..], 8),
        Some("0b") => (&lower[2..], 2),
        _ if lower.len() > 1 && lower.starts_with('0') && lower.bytes().any(|b| b != b'0') => {
            return Err(bad())
        }
        _ => (lower.as_str(), 10),
    };
    if digits.is_empty() || t.starts_with('_') || t.ends_with('_') {
        return Err(bad());
    }
    let v = i64::from_str_radix(digits, radix).map_err(|_| bad())?;
    Ok(if negative { -v } else { v })
}

fn pos_int(v: i64) -> Result<i64, String> {
    if v < 0 {
        return Err(format!("Value must be positive: {v}"));
    }
    Ok(v)
}

fn check_streams(v: i64) -> Result<u32, String> {
    let v = pos_int(v)?;
    if v < 1 {
        return Err(format!(
            "HTTP/2 max concurrent streams must be at least 1: {v}"
        ));
    }
    u32::try_from(v).map_err(|_| format!("Value is too large: {v}"))
}

fn check_window(v: i64) -> Result<u32, String> {
    let v = pos_int(v)?;
    if v > i64::from(i32::MAX) {
        return Err(format!(
            "HTTP/2 window size must be at most 2147483647: {v}"
        ));
    }
    Ok(v as u32)
}

fn check_frame(v: i64) -> Result<u32, String> {
    if !(16384..=16_777_215).contains(&v) {
        return Err(format!(
            "http2_max_frame_size must be between 16384 and 16777215, got {v}"
        ));
    }
    Ok(v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Environment};

    fn config(extra: &[&str]) -> Result<Http2Config, String> {
        let mut args = vec!["rustcorn"];
        args.extend_from_slice(extra);
        args.push("app");
        Config::from_args(args, &Environment::default())
            .map(|c| c.http2)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_gunicorns() {
        assert_eq!(config(&[]).unwrap(), Http2Config::default());
    }

    #[test]
    fn protocols_keep_their_order_and_alpn_always_has_http11() {
        let c = config(&["--http-protocols", " H2 , h1"]).unwrap();
        assert_eq!(c.protocols, [Protocol::H2, Protocol::H1]);
        assert_eq!(c.alpn(), [b"h2".to_vec(), b"http/1.1".to_vec()]);
        let c = config(&["--http-protocols", "h2"]).unwrap();
        assert_eq!(c.alpn(), [b"h2".to_vec(), b"http/1.1".to_vec()]);
        let c = config(&["--http-protocols", "h1,h2"]).unwrap();
        assert_eq!(c.alpn(), [b"http/1.1".to_vec(), b"h2".to_vec()]);
        assert!(config(&["--http-protocols", "h1"])
            .unwrap()
            .alpn()
            .is_empty());
        assert_eq!(
            config(&["--http-protocols", ""]).unwrap().protocols,
            [Protocol::H1]
        );
    }

    #[test]
    fn bad_values_get_gunicorns_messages() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--http-protocols", "h2,h3"],
                "Invalid protocol 'h3'. Valid protocols: h1, h2",
            ),
            (
                &["--http-protocols", "h2,H2"],
                "Duplicate protocols specified",
            ),
            (
                &["--http2-cleartext", "maybe"],
                "Invalid http2_cleartext: maybe",
            ),
            (
                &["--http2-max-concurrent-streams", "0"],
                "HTTP/2 max concurrent streams must be at least 1: 0",
            ),
            (
                &["--http2-initial-window-size", "-1"],
                "Value must be positive: -1",
            ),
            (
                &["--http2-initial-window-size", "0x80000000"],
                "HTTP/2 window size must be at most 2147483647: 2147483648",
            ),
            (
                &["--http2-max-frame-size", "16383"],
                "http2_max_frame_size must be between 16384 and 16777215, got 16383",
            ),
            (
                &["--http2-max-header-list-size", "-5"],
                "Value must be positive: -5",
            ),
            (
                &["--http2-max-header-list-size", "lots"],
                "invalid literal for int()",
            ),
        ];
        for (args, message) in cases {
            let err = config(args).unwrap_err();
            assert!(err.contains(message), "{args:?}: {err}");
            assert!(err.contains(args[0]), "{args:?}: {err}");
        }
    }

    #[test]
    fn integers_parse_like_pythons_int_base_0() {
        let c = config(&[
            "--http2-initial-window-size",
            "0",
            "--http2-max-frame-size",
            "0x4000",
            "--http2-max-header-list-size",
            "0",
        ])
        .unwrap();
        assert_eq!((c.initial_window_size, c.max_frame_size), (0, 16384));
        assert_eq!(c.max_header_list_size, 0);
        assert_eq!(python_int("1_000"), Ok(1000));
        assert!(python_int("010").is_err());
    }

    #[test]
    fn cleartext_modes_and_config_file_booleans() {
        for (text, mode) in [
            ("off", Cleartext::Off),
            ("False", Cleartext::Off),
            ("None", Cleartext::Off),
            ("prior-knowledge", Cleartext::PriorKnowledge),
            ("True", Cleartext::PriorKnowledge),
            ("UPGRADE", Cleartext::Upgrade),
            (" both ", Cleartext::Both),
        ] {
            let c = config(&["--http2-cleartext", text]).unwrap();
            assert_eq!(c.cleartext, mode, "{text}");
        }
        assert!(Cleartext::Both.prior_knowledge() && Cleartext::Both.upgrade());
        assert!(!Cleartext::Upgrade.prior_knowledge() && !Cleartext::PriorKnowledge.upgrade());
    }

    #[test]
    fn the_never_negotiated_warning_needs_h2_without_tls() {
        let h2 = config(&["--http-protocols", "h2,h1"]).unwrap();
        assert!(never_negotiated_warning(&h2, false).is_some());
        assert!(never_negotiated_warning(&h2, true).is_none());
        assert!(never_negotiated_warning(&Http2Config::default(), false).is_none());
    }
}
