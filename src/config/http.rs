//! Flags for HTTP request strictness and size limits, with Gunicorn's spellings and
//! defaults (`limit_request_*`, `permit_*`, `casefold_http_method`, `header_map`), plus
//! `--limit-request-body`. They resolve into one [`crate::http::request::Limits`].

use clap::{ArgAction, Args};

use super::{invalid, ConfigError};
use crate::http::request::{HeaderMap, Limits};

/// Gunicorn's ceiling for `--limit-request-line` (larger values are clamped to it).
pub const MAX_REQUEST_LINE: usize = 8190;
/// Gunicorn's ceiling for `--limit-request-fields`.
pub const MAX_HEADERS: usize = 32768;
/// The field size Gunicorn uses when `--limit-request-field_size` is 0.
pub const DEFAULT_FIELD_SIZE: usize = 8190;

/// How strictly requests are read, and how large they may be.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// The maximum size of the HTTP request line in bytes (method, URI, version): 0
    /// (unlimited) to 8190. Longer lines are answered 414.
    #[arg(
        long = "limit-request-line",
        value_name = "INT",
        default_value_t = 4094
    )]
    pub limit_request_line: usize,

    /// The maximum number of header fields in a request (0, or more than 32768, means
    /// 32768).
    /// More are answered 431.
    #[arg(
        long = "limit-request-fields",
        value_name = "INT",
        default_value_t = 100
    )]
    pub limit_request_fields: usize,

    /// The maximum size of one header field in bytes (0 means 8190). Larger fields are
    /// answered 431.
    #[arg(
        long = "limit-request-field_size",
        visible_alias = "limit-request-field-size",
        value_name = "INT",
        default_value_t = 8190
    )]
    pub limit_request_field_size: usize,

    /// The maximum size of a request body in bytes; 0 means unlimited. A larger
    /// Content-Length, or a chunked body that grows past it, is answered 413.
    /// (rustcorn's own; Gunicorn has no such setting.)
    #[arg(long = "limit-request-body", value_name = "INT", default_value_t = 0)]
    pub limit_request_body: u64,

    /// Accept obsolete line folding (header values continued on lines starting with
    /// a space or tab) instead of answering 400.
    #[arg(long = "permit-obsolete-folding", action = ArgAction::SetTrue)]
    pub permit_obsolete_folding: bool,

    /// Headers whose names contain `_`: `drop` them (default), `refuse` the request
    /// with 400, or map them into the environ like `-` (`dangerous`).
    #[arg(long = "header-map", value_name = "STRING", default_value = "drop")]
    pub header_map: String,

    /// Accept methods Gunicorn calls unconventional: lowercase letters, `#`, shorter
    /// than 3 or longer than 20 characters (they must still be tokens).
    #[arg(long = "permit-unconventional-http-method", action = ArgAction::SetTrue)]
    pub permit_unconventional_http_method: bool,

    /// Accept any `HTTP/D.D` version rather than only HTTP/1.0 and HTTP/1.1. Versions
    /// below 1.0 are served as HTTP/1.0, others as HTTP/1.1.
    #[arg(long = "permit-unconventional-http-version", action = ArgAction::SetTrue)]
    pub permit_unconventional_http_version: bool,

    /// Uppercase request methods before the app sees them.
    #[arg(long = "casefold-http-method", action = ArgAction::SetTrue)]
    pub casefold_http_method: bool,

    /// Strip spaces between a header name and its `:` instead of answering 400.
    /// Known to enable request smuggling; use only if a client needs it.
    #[arg(long = "strip-header-spaces", action = ArgAction::SetTrue)]
    pub strip_header_spaces: bool,
}

/// Validates the flags into parser limits, clamped the way Gunicorn clamps them.
pub fn resolve(args: &HttpArgs) -> Result<Limits, ConfigError> {
    let header_map = match args.header_map.trim().to_ascii_lowercase().as_str() {
        "drop" => HeaderMap::Drop,
        "refuse" => HeaderMap::Refuse,
        "dangerous" => HeaderMap::Dangerous,
        _ => {
            return Err(invalid(
                "--header-map",
                &args.header_map,
                "expected drop, refuse or dangerous",
            ))
        }
    };
    let request_line = match args.limit_request_line {
        0 => None,
        n => Some(n.min(MAX_REQUEST_LINE)),
    };
    let fields = match args.limit_request_fields {
        0 => MAX_HEADERS,
        n => n.min(MAX_HEADERS),
    };
    let field_size = match args.limit_request_field_size {
        0 => DEFAULT_FIELD_SIZE,
        n => n,
    };
    Ok(Limits {
        request_line,
        fields,
        field_size,
        body: (args.limit_request_body > 0).then_some(args.limit_request_body),
        permit_obsolete_folding: args.permit_obsolete_folding,
        header_map,
        permit_unconventional_method: args.permit_unconventional_http_method,
        permit_unconventional_version: args.permit_unconventional_http_version,
        casefold_method: args.casefold_http_method,
        strip_header_spaces: args.strip_header_spaces,
        // Set by the worker from the proxy settings (see `Limits::forwarder_headers`).
        forwarder_headers: &[],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Environment};

    fn limits(extra: &[&str]) -> Result<Limits, ConfigError> {
        let mut args = vec!["rustcorn"];
        args.extend_from_slice(extra);
        args.push("app");
        Config::from_args(args, &Environment::default()).map(|c| c.http)
    }

    #[test]
    fn defaults_are_gunicorns() {
        let l = limits(&[]).unwrap();
        assert_eq!(l.request_line, Some(4094));
        assert_eq!((l.fields, l.field_size, l.body), (100, 8190, None));
        assert_eq!(l.header_map, HeaderMap::Drop);
        assert!(!l.permit_obsolete_folding && !l.casefold_method && !l.strip_header_spaces);
    }

    #[test]
    fn limits_clamp_and_zero_the_way_gunicorn_does() {
        let l = limits(&[
            "--limit-request-line",
            "0",
            "--limit-request-fields",
            "0",
            "--limit-request-field_size",
            "0",
        ])
        .unwrap();
        assert_eq!(
            (l.request_line, l.fields, l.field_size),
            (None, 32768, 8190)
        );
        let l = limits(&[
            "--limit-request-line",
            "9000",
            "--limit-request-fields",
            "40000",
        ]);
        let l = l.unwrap();
        assert_eq!((l.request_line, l.fields), (Some(8190), 32768));
        let l = limits(&[
            "--limit-request-field-size",
            "100",
            "--limit-request-body",
            "5",
        ]);
        let l = l.unwrap();
        assert_eq!((l.field_size, l.body), (100, Some(5)));
        let l = limits(&["--header-map", "Refuse", "--permit-obsolete-folding"]).unwrap();
        assert_eq!(l.header_map, HeaderMap::Refuse);
        assert!(l.permit_obsolete_folding);
    }

    #[test]
    fn bad_values_name_their_flag() {
        match limits(&["--header-map", "keep"]) {
            Err(ConfigError::Invalid { flag, .. }) => assert_eq!(flag, "--header-map"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            limits(&["--limit-request-line", "-1"]),
            Err(ConfigError::Parse(_))
        ));
    }
}
