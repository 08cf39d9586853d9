//! Gunicorn's SSL flags. With `--certfile` (or `--keyfile`) every listener speaks
//! HTTPS; the certificate, key and CA files are loaded and checked here, at startup.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{ArgAction, Args};

use super::ConfigError;
use crate::tls::{self, CertReqs, TlsOptions};

/// The SSL section of Gunicorn's settings.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// SSL key file (PEM). Defaults to the key in --certfile.
    #[arg(long = "keyfile", value_name = "FILE")]
    pub keyfile: Option<PathBuf>,

    /// SSL certificate file (PEM; the chain after the server's certificate). Turns
    /// HTTPS on.
    #[arg(long = "certfile", value_name = "FILE")]
    pub certfile: Option<PathBuf>,

    /// Deprecated and ignored, as in Gunicorn: rustls negotiates TLS 1.3 or 1.2.
    #[arg(long = "ssl-version", value_name = "SSL_VERSION")]
    pub ssl_version: Option<String>,

    /// Whether client certificates are required: 0 no, 1 optional, 2 required
    /// (checked against --ca-certs).
    #[arg(long = "cert-reqs", value_name = "CERT_REQS", default_value_t = 0)]
    pub cert_reqs: u32,

    /// CA certificates file (PEM) that client certificates must be signed by.
    #[arg(long = "ca-certs", value_name = "FILE")]
    pub ca_certs: Option<PathBuf>,

    /// Suppress ragged EOFs: always on (a client closing without close_notify ends
    /// its stream like a clean close).
    #[arg(long = "suppress-ragged-eofs", action = ArgAction::SetTrue)]
    pub suppress_ragged_eofs: bool,

    /// Accepted for Gunicorn compatibility: the event loop always drives the
    /// handshake as the client's bytes arrive, never blocking the worker.
    #[arg(long = "do-handshake-on-connect", action = ArgAction::SetTrue)]
    pub do_handshake_on_connect: bool,

    /// TLS 1.2 cipher suites, as an OpenSSL cipher list (TLS 1.3 suites are always on).
    #[arg(long = "ciphers", value_name = "CIPHERS")]
    pub ciphers: Option<String>,
}

/// The resolved SSL settings.
#[derive(Clone, Debug, Default)]
pub struct TlsConfig {
    /// `Some`: every connection is TLS with this configuration.
    pub server: Option<Arc<rustls::ServerConfig>>,
    /// Settings accepted but not honoured, for the master to log at startup.
    pub warnings: Vec<String>,
}

/// `--ssl-version` names Gunicorn documents, plus the number of its default.
const SSL_VERSIONS: &[&str] = &[
    "SSLv3",
    "SSLv23",
    "TLS",
    "TLSv1",
    "TLSv1_1",
    "TLSv1_2",
    "TLS_SERVER",
    "2",
];

/// Validates the flags and, when HTTPS is on, loads everything they name.
/// `alpn` is the ALPN list to offer (see [`super::http2::Http2Config::alpn`]).
pub fn resolve(args: &TlsArgs, alpn: Vec<Vec<u8>>) -> Result<TlsConfig, ConfigError> {
    let cert_reqs = CertReqs::from_number(args.cert_reqs).ok_or_else(|| ConfigError::Invalid {
        flag: "--cert-reqs",
        value: args.cert_reqs.to_string(),
        reason: "must be 0 (none), 1 (optional) or 2 (required)".into(),
    })?;
    let mut warnings = Vec::new();
    if let Some(v) = &args.ssl_version {
        let known = SSL_VERSIONS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(v.trim()));
        let Some(known) = known else {
            return Err(ConfigError::Invalid {
                flag: "--ssl-version",
                value: v.clone(),
                reason: format!("expected one of {}", SSL_VERSIONS.join(", ")),
            });
        };
        if !matches!(*known, "TLS" | "SSLv23" | "TLS_SERVER" | "2") {
            warnings.push(format!(
                "option `ssl_version` ({v}) is deprecated and it is ignored: rustls \
                 negotiates TLS 1.3 or TLS 1.2"
            ));
        }
    }
    let certfile = match (&args.certfile, &args.keyfile) {
        (Some(c), _) => c,
        (None, Some(k)) => {
            return Err(ConfigError::Invalid {
                flag: "--keyfile",
                value: k.display().to_string(),
                reason: "needs --certfile FILE, the certificate this key belongs to".into(),
            })
        }
        (None, None) => return Ok(TlsConfig::default()),
    };
    let opts = TlsOptions {
        certfile,
        keyfile: args.keyfile.as_deref(),
        ca_certs: args.ca_certs.as_deref(),
        cert_reqs,
        ciphers: args.ciphers.as_deref(),
        alpn,
    };
    let server = tls::server_config(&opts).map_err(to_config_error)?;
    if let (CertReqs::None, Some(ca)) = (cert_reqs, &args.ca_certs) {
        tls::check_ca_file(ca).map_err(to_config_error)?;
    }
    Ok(TlsConfig {
        server: Some(server),
        warnings,
    })
}

fn to_config_error(e: tls::TlsError) -> ConfigError {
    ConfigError::Invalid {
        flag: e.flag,
        value: e.value,
        reason: e.reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        tls: TlsArgs,
    }

    fn resolve_args(args: &[&str]) -> Result<TlsConfig, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("rustcorn").chain(args.iter().copied()))
            .expect("flags parse");
        resolve(&cli.tls, Vec::new())
    }

    #[test]
    fn no_certificate_means_plain_http() {
        let c = resolve_args(&["--ciphers", "HIGH", "--cert-reqs", "2"]).unwrap();
        assert!(c.server.is_none());
    }

    #[test]
    fn bad_values_name_their_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--cert-reqs", "3"], "--cert-reqs"),
            (&["--ssl-version", "TLSv9"], "--ssl-version"),
            (&["--keyfile", "k.pem"], "--keyfile"),
            (&["--certfile", "/nonexistent/c.pem"], "/nonexistent/c.pem"),
        ];
        for (args, named) in cases {
            let err = resolve_args(args).unwrap_err().to_string();
            assert!(err.contains(named), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
}
