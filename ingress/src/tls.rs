//! TLS termination of client connections (SPEC §5 `--tls-cert`/`--tls-key`): loading the
//! certificate chain and private key into a rustls server configuration, and [`TlsConn`], a
//! client connection that speaks TLS over a monoio TCP stream.
//!
//! ```text
//! PEM files ─load─▶ Arc<ServerConfig>   (in every core's view; SIGHUP loads it again)
//! accepted TcpStream ─accept (handshake)─▶ TlsConn ─Source/Sink─▶ the proxy, as for plain TCP
//!                                          └─into_halves─▶ TlsReader + TlsWriter (tunnel after 101)
//! ```
//!
//! Owns the record I/O glue only: rustls does the protocol, the proxy does HTTP. Ciphertext
//! moves through plain `Vec`s handed to monoio's owned-buffer I/O, and the rustls session is
//! borrowed only between awaits, so a cancelled read (a timeout, a drain) leaves the connection
//! unusable but never panics, and the two halves of a tunnel never borrow it at the same time.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use monoio::io::{AsyncWriteRent, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use rustls::ServerConfig;
use rustls::ServerConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::stream::{Duplex, READ_CHUNK, Sink, Source, read_more, write_all};

/// The certificate chain and key files of `--tls-cert`/`--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the TLS configuration could not be loaded. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or not PEM.
    #[error("cannot read the TLS certificate chain {}", path.display())]
    Cert {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate in {}", path.display())]
    NoCert { path: PathBuf },
    /// The key file is unreadable, not PEM, or holds no private key.
    #[error("cannot read the TLS private key {}", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the pair (unsupported key type, key not matching the certificate).
    #[error("the TLS certificate {} and key {} do not make a server configuration", cert.display(), key.display())]
    Config {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// Loads `files` into a server configuration: TLS 1.2 and 1.3 with rustls' safe defaults (ring
/// provider), no client authentication, ALPN `http/1.1`.
///
/// # Errors
/// [`TlsError`], naming the file at fault.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_err = |source| TlsError::Cert {
        path: files.cert.clone(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(cert_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(cert_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::Key {
        path: files.key.clone(),
        source,
    })?;
    let config_err = |source| TlsError::Config {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(config_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The reading half of a TLS connection: ciphertext from the socket, plaintext to the proxy.
pub struct TlsReader {
    tcp: OwnedReadHalf<TcpStream>,
    session: Rc<RefCell<ServerConnection>>,
    cipher: Vec<u8>,
    eof: bool,
}

/// The writing half of a TLS connection: plaintext from the proxy, records to the socket.
pub struct TlsWriter {
    tcp: OwnedWriteHalf<TcpStream>,
    session: Rc<RefCell<ServerConnection>>,
    cipher: Vec<u8>,
}

/// A client connection after its TLS handshake.
#[derive(Debug)]
pub struct TlsConn {
    reader: TlsReader,
    writer: TlsWriter,
}

impl fmt::Debug for TlsReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReader")
            .field("buffered", &self.cipher.len())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for TlsWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsWriter")
            .field("buffered", &self.cipher.len())
            .finish_non_exhaustive()
    }
}

fn protocol_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Runs the server handshake on an accepted connection. The caller bounds it with a timeout.
///
/// # Errors
/// The socket's error, `UnexpectedEof` when the client leaves mid-handshake, `InvalidData`
/// when it does not speak TLS (the alert is sent first).
pub async fn accept(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsConn> {
    let session = ServerConnection::new(config).map_err(io::Error::other)?;
    let session = Rc::new(RefCell::new(session));
    let (r, w) = tcp.into_split();
    let mut conn = TlsConn {
        reader: TlsReader {
            tcp: r,
            session: Rc::clone(&session),
            cipher: Vec::with_capacity(READ_CHUNK),
            eof: false,
        },
        writer: TlsWriter {
            tcp: w,
            session,
            cipher: Vec::new(),
        },
    };
    loop {
        conn.writer.flush().await?;
        if !conn.reader.session.borrow().is_handshaking() {
            return Ok(conn);
        }
        if conn.reader.cipher.is_empty() {
            let n = read_more(&mut conn.reader.tcp, &mut conn.reader.cipher).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed during the TLS handshake",
                ));
            }
        }
        let fed = conn.reader.feed();
        if fed.is_err() {
            // Tell the client why (the alert rustls queued), then fail.
            let _ = conn.writer.flush().await;
        }
        fed?;
    }
}

impl TlsReader {
    /// Moves the plaintext rustls holds into `buf`: `Some(n)` with n > 0, `Some(0)` once the
    /// peer has closed, `None` when rustls needs more ciphertext.
    fn take_plaintext(&self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let mut session = self.session.borrow_mut();
        let before = buf.len();
        let result = session.reader().read_to_end(buf);
        let got = buf.len() - before;
        match result {
            // close_notify: what came before it, then end of stream.
            Ok(_) => Ok(Some(got)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((got > 0).then_some(got)),
            // The socket closed without close_notify: an end of stream like any other (the
            // HTTP framing tells a truncated body, as it does for plain TCP).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(got)),
            Err(e) => Err(e),
        }
    }

    /// Hands buffered ciphertext (or the end of the socket) to rustls and processes it.
    fn feed(&mut self) -> io::Result<()> {
        let mut session = self.session.borrow_mut();
        if self.cipher.is_empty() {
            if self.eof {
                session.read_tls(&mut io::empty())?;
            }
        } else {
            let mut unread = &self.cipher[..];
            let n = session.read_tls(&mut unread)?;
            if n == 0 {
                return Err(io::Error::other("TLS receive buffer full"));
            }
            self.cipher.drain(..n);
        }
        session.process_new_packets().map_err(protocol_error)?;
        Ok(())
    }

    /// Reads plaintext into `buf`; `writer` (when the connection is not split) sends what
    /// rustls wants to send meanwhile (alerts, session tickets, key updates).
    async fn read_plain(
        &mut self,
        buf: &mut Vec<u8>,
        mut writer: Option<&mut TlsWriter>,
    ) -> io::Result<usize> {
        loop {
            if let Some(n) = self.take_plaintext(buf)? {
                return Ok(n);
            }
            if self.cipher.is_empty() {
                if self.eof {
                    return Ok(0);
                }
                if read_more(&mut self.tcp, &mut self.cipher).await? == 0 {
                    self.eof = true;
                }
            }
            let fed = self.feed();
            if let Some(w) = writer.as_deref_mut() {
                let flushed = w.flush().await;
                fed?;
                flushed?;
            } else {
                fed?;
            }
        }
    }
}

impl TlsWriter {
    /// Sends every record rustls has queued.
    async fn flush(&mut self) -> io::Result<()> {
        loop {
            {
                let mut session = self.session.borrow_mut();
                while session.wants_write() {
                    session.write_tls(&mut self.cipher)?;
                }
            }
            if self.cipher.is_empty() {
                return Ok(());
            }
            write_all(&mut self.tcp, &mut self.cipher).await?;
        }
    }

    /// Encrypts and sends all of `buf`, then clears it.
    async fn send(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut sent = 0;
        while sent < buf.len() {
            let n = self.session.borrow_mut().writer().write(&buf[sent..])?;
            let queued = self.session.borrow().wants_write();
            if n == 0 && !queued {
                return Err(io::ErrorKind::WriteZero.into());
            }
            sent += n;
            self.flush().await?;
        }
        buf.clear();
        Ok(())
    }

    /// Sends close_notify and shuts the socket down for writing.
    async fn close(&mut self) -> io::Result<()> {
        self.session.borrow_mut().send_close_notify();
        self.flush().await?;
        self.tcp.shutdown().await
    }
}

impl Source for TlsConn {
    async fn read_more(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.reader.read_plain(buf, Some(&mut self.writer)).await
    }
}

impl Sink for TlsConn {
    async fn write_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        self.writer.send(buf).await
    }

    async fn close_write(&mut self) -> io::Result<()> {
        self.writer.close().await
    }
}

impl Source for TlsReader {
    async fn read_more(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read_plain(buf, None).await
    }
}

impl Sink for TlsWriter {
    async fn write_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        self.send(buf).await
    }

    async fn close_write(&mut self) -> io::Result<()> {
        self.close().await
    }
}

impl Duplex for TlsConn {
    type Reader = TlsReader;
    type Writer = TlsWriter;

    fn into_halves(self) -> (TlsReader, TlsWriter) {
        (self.reader, self.writer)
    }
}
