//! The HTTPS tests' side: certificates made with the `openssl` CLI, and a rustls
//! client connection that reads responses with the raw client's parser.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::APP;
use crate::client::{read_response, Response};
use crate::harness::{serve, Scratch, Server, IO_TIMEOUT};

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate signed
/// by it, and a key that belongs to neither.
pub struct Certs {
    dir: Scratch,
}

impl Certs {
    pub fn new() -> Certs {
        let certs = Certs {
            dir: Scratch::new("tls"),
        };
        certs.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=rustcorn test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        certs.leaf(
            "server",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        certs.leaf("client", "extendedKeyUsage=clientAuth\n");
        certs.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other.key",
        ]);
        certs
    }

    fn leaf(&self, name: &str, extensions: &str) {
        let ext = format!("{name}.ext");
        std::fs::write(
            self.path(&ext),
            format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n{extensions}"),
        )
        .unwrap();
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl (Debian package `openssl`)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `--certfile`/`--keyfile` for the server certificate.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--certfile".into(),
            self.arg("server.pem"),
            "--keyfile".into(),
            self.arg("server.key"),
        ]
    }

    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A client that trusts the test CA, with the client certificate or without.
    pub fn client(&self, with_certificate: bool) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.path("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        Arc::new(if with_certificate {
            let chain = CertificateDer::pem_file_iter(self.path("client.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(self.path("client.key")).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        } else {
            builder.with_no_client_auth()
        })
    }
}

/// Starts tls_app over HTTPS with the server certificate and `extra` flags.
pub fn serve_tls(certs: &Certs, extra: &[&str]) -> Server {
    let mut args: Vec<String> = certs.server_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = serve(APP, &args);
    assert!(
        server.log().contains("Listening at: https://"),
        "{}",
        server.log()
    );
    server
}

/// One TLS client connection.
pub struct TlsConn {
    pub reader: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsConn {
    /// Connects to 127.0.0.1:`port` and completes the handshake.
    pub fn open(port: u16, config: &Arc<ClientConfig>) -> std::io::Result<TlsConn> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        sock.set_read_timeout(Some(IO_TIMEOUT))?;
        sock.set_write_timeout(Some(IO_TIMEOUT))?;
        let name = ServerName::try_from("localhost").unwrap();
        let mut conn =
            ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(TlsConn {
            reader: BufReader::new(StreamOwned::new(conn, sock)),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(bytes)?;
        stream.flush()
    }

    pub fn response(&mut self) -> std::io::Result<Response> {
        read_response(&mut self.reader, false)
    }

    pub fn roundtrip(&mut self, bytes: &[u8]) -> Response {
        self.send(bytes).expect("send request over TLS");
        self.response().expect("read response over TLS")
    }
}
