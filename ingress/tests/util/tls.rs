//! TLS for tests: a self-signed certificate made at run time (written as PEM files the ingress
//! loads) and a rustls client that trusts it.

use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use skr8tr_ingress::tls::TlsFiles;

use super::client::Conn;

/// A TLS client stream.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A certificate for `localhost`, its PEM files, and its DER (to trust it).
pub struct TestCert {
    pub files: TlsFiles,
    pub der: CertificateDer<'static>,
}

/// Makes a new self-signed certificate for `localhost` and writes `name.crt`/`name.key` in `dir`.
pub fn make_cert(dir: &Path, name: &str) -> TestCert {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let files = TlsFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.cert, made.cert.pem()).unwrap();
    std::fs::write(&files.key, made.key_pair.serialize_pem()).unwrap();
    TestCert {
        files,
        der: made.cert.der().clone(),
    }
}

/// A client configuration trusting only `cert`, offering ALPN h2 and http/1.1.
pub fn client_config(cert: &CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Connects to the ingress on `port` and completes the handshake; `Err` when it fails.
pub fn try_connect(port: u16, config: &Arc<ClientConfig>) -> std::io::Result<Conn<TlsStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(Arc::clone(config), name).unwrap();
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(Conn::over(stream))
}

/// Connects and completes the handshake (panics when it fails).
pub fn connect(port: u16, config: &Arc<ClientConfig>) -> Conn<TlsStream> {
    try_connect(port, config).unwrap()
}
