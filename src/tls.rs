//! HTTPS with rustls: Gunicorn's SSL settings (`--certfile`, `--keyfile`, `--ca-certs`,
//! `--cert-reqs`, `--ciphers`) become one [`ServerConfig`], built and checked in the
//! master at startup so a missing file, a bad or mismatched key, or a cipher rustls
//! cannot do stops the server before any worker starts. Workers wrap each accepted
//! socket in a [`TlsStream`], whose handshake and records are driven by the event loop
//! like any other non-blocking I/O.

mod ciphers;
mod stream;

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

pub use stream::TlsStream;

/// Whether clients must present a certificate (`--cert-reqs`, Python's `ssl.CERT_*`
/// numbers, which Gunicorn users write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertReqs {
    /// 0: no client certificate is asked for.
    None,
    /// 1: asked for; a client without one is served, a bad one is refused.
    Optional,
    /// 2: a client without a certificate signed by `--ca-certs` is refused.
    Required,
}

impl CertReqs {
    /// Gunicorn's number for the setting; `None` for a number it does not define.
    pub fn from_number(n: u32) -> Option<CertReqs> {
        match n {
            0 => Some(CertReqs::None),
            1 => Some(CertReqs::Optional),
            2 => Some(CertReqs::Required),
            _ => None,
        }
    }
}

/// The validated SSL settings, as paths and values from the command line.
pub struct TlsOptions<'a> {
    pub certfile: &'a Path,
    /// `None`: the key is in the certificate file (Gunicorn allows that).
    pub keyfile: Option<&'a Path>,
    pub ca_certs: Option<&'a Path>,
    pub cert_reqs: CertReqs,
    pub ciphers: Option<&'a str>,
    /// ALPN protocols in order of preference (`--http-protocols`); empty: no ALPN.
    pub alpn: Vec<Vec<u8>>,
}

/// A TLS setting that cannot be used, naming the flag and value at fault.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {value}: {reason}")]
pub struct TlsError {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

fn fail(flag: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> TlsError {
    TlsError {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Loads and checks everything the options name and builds the server configuration
/// every worker shares (after fork, by copy).
pub fn server_config(opts: &TlsOptions<'_>) -> Result<Arc<ServerConfig>, TlsError> {
    let tls12 = match opts.ciphers {
        Some(list) => ciphers::select(list).map_err(|e| fail("--ciphers", list, e))?,
        None => ciphers::select("DEFAULT").expect("DEFAULT selects every suite"),
    };
    let chain = load_certs("--certfile", opts.certfile)?;
    let (key_flag, key_path) = match opts.keyfile {
        Some(path) => ("--keyfile", path),
        None => ("--certfile", opts.certfile),
    };
    let key = load_key(key_flag, key_path)?;
    let provider = Arc::new(CryptoProvider {
        cipher_suites: ciphers::tls13().into_iter().chain(tls12).collect(),
        ..ring::default_provider()
    });
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| {
            fail(
                "--ciphers",
                opts.ciphers.unwrap_or("DEFAULT"),
                e.to_string(),
            )
        })?;
    let builder = match opts.cert_reqs {
        CertReqs::None => builder.with_no_client_auth(),
        reqs => builder.with_client_cert_verifier(client_verifier(opts, reqs, provider)?),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => fail(
            key_flag,
            key_path.display(),
            format!(
                "the private key does not match the certificate in {}",
                opts.certfile.display()
            ),
        ),
        other => fail(key_flag, key_path.display(), other.to_string()),
    })?;
    // An explicit cipher list is an order of preference, as OpenSSL servers use it.
    config.ignore_client_order = opts.ciphers.is_some();
    // rustls picks the server's first protocol the client also offers.
    config.alpn_protocols = opts.alpn.clone();
    Ok(Arc::new(config))
}

fn client_verifier(
    opts: &TlsOptions<'_>,
    reqs: CertReqs,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let Some(ca_path) = opts.ca_certs else {
        let n = if reqs == CertReqs::Required { 2 } else { 1 };
        return Err(fail(
            "--cert-reqs",
            n,
            "client certificates are checked against --ca-certs FILE (the CA certificates \
             that sign them); give it",
        ));
    };
    let mut roots = RootCertStore::empty();
    for cert in load_certs("--ca-certs", ca_path)? {
        roots
            .add(cert)
            .map_err(|e| fail("--ca-certs", ca_path.display(), e.to_string()))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = match reqs {
        CertReqs::Optional => builder.allow_unauthenticated(),
        _ => builder,
    };
    builder
        .build()
        .map_err(|e| fail("--ca-certs", ca_path.display(), format!("{e:?}")))
}

/// Checks a CA file that no verifier uses (`--ca-certs` with `--cert-reqs 0`), so a
/// wrong path is still found at startup.
pub fn check_ca_file(path: &Path) -> Result<(), TlsError> {
    load_certs("--ca-certs", path).map(drop)
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| fail(flag, path.display(), format!("cannot read it: {e}")))
}

fn load_certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            fail(
                flag,
                path.display(),
                format!("not a PEM certificate file: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(fail(
            flag,
            path.display(),
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
        ));
    }
    Ok(certs)
}

fn load_key(flag: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(flag, path)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => fail(
            flag,
            path.display(),
            "no PEM private key (-----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY) in it",
        ),
        other => fail(
            flag,
            path.display(),
            format!("not a PEM private key: {other}"),
        ),
    })?;
    // Parse it now: a corrupt key is a startup error, not a failed handshake later.
    ring::default_provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| fail(flag, path.display(), format!("unusable private key: {e}")))?;
    Ok(key)
}
