//! Byte streams read and written with owned `Vec` buffers, as monoio's I/O wants them: reading
//! once into a buffer's spare capacity, writing a buffer whole, and the [`Source`] / [`Sink`] /
//! [`Duplex`] traits that let the proxy, the TLS layer and the static file server treat a TCP
//! stream, a TLS connection and their halves alike.
//!
//! Owns buffer handling at the socket only: no HTTP, no framing (bodies are relayed by
//! `proxy::body`), no timeouts (callers bound each call).

use std::io;

use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;

/// Free space ensured before each read.
pub const READ_CHUNK: usize = 16 * 1024;

/// Reads once into the spare capacity of `buf` (at least `READ_CHUNK` bytes of it); returns the
/// byte count (0: end of stream).
///
/// # Errors
/// The read's I/O error.
///
/// # Cancel safety
/// Not cancel safe: dropped mid-read, `buf` is left empty and the stream must not be read again.
pub async fn read_more<S: AsyncReadRent>(s: &mut S, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < READ_CHUNK {
        buf.reserve(READ_CHUNK);
    }
    let b = std::mem::take(buf);
    let (len, cap) = (b.len(), b.capacity());
    let (res, slice) = s.read(b.slice_mut(len..cap)).await;
    *buf = slice.into_inner();
    res
}

/// Writes all of `buf` and clears it (keeping its capacity).
///
/// # Errors
/// The write's I/O error.
pub async fn write_all<S: AsyncWriteRent>(s: &mut S, buf: &mut Vec<u8>) -> io::Result<()> {
    let b = std::mem::take(buf);
    let (res, mut b) = s.write_all(b).await;
    b.clear();
    *buf = b;
    res.map(|_| ())
}

/// Writes all of `buf`, keeping its contents (for a request head that may be sent again).
///
/// # Errors
/// The write's I/O error.
pub async fn write_all_keep<S: AsyncWriteRent>(s: &mut S, buf: &mut Vec<u8>) -> io::Result<()> {
    let b = std::mem::take(buf);
    let (res, b) = s.write_all(b).await;
    *buf = b;
    res.map(|_| ())
}

/// A byte stream the proxy reads with `Vec` buffers: a TCP stream or its read half (through
/// [`read_more`]), or a TLS connection or its read half (`crate::tls`).
#[allow(
    async_fn_in_trait,
    reason = "the proxy runs on thread-per-core runtimes: its futures are never sent"
)]
pub trait Source {
    /// Reads once, appending to `buf`; returns the byte count (0: end of stream).
    ///
    /// # Errors
    /// The read's I/O error (for TLS, also a protocol error as `InvalidData`).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped mid-read, the stream must not be read again.
    async fn read_more(&mut self, buf: &mut Vec<u8>) -> io::Result<usize>;
}

/// A byte stream the proxy writes with `Vec` buffers.
#[allow(
    async_fn_in_trait,
    reason = "the proxy runs on thread-per-core runtimes: its futures are never sent"
)]
pub trait Sink {
    /// Writes all of `buf` and clears it (keeping its capacity).
    ///
    /// # Errors
    /// The write's I/O error.
    async fn write_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<()>;

    /// Ends the writing direction (TCP FIN; for TLS, close_notify first).
    ///
    /// # Errors
    /// The write's I/O error.
    async fn close_write(&mut self) -> io::Result<()>;
}

/// A client connection: read and written in turn, and split in two for a tunnel.
pub trait Duplex: Source + Sink {
    /// The reading half.
    type Reader: Source;
    /// The writing half.
    type Writer: Sink;

    /// Splits the connection so both directions can be relayed at once.
    fn into_halves(self) -> (Self::Reader, Self::Writer);
}

impl<S: AsyncReadRent> Source for S {
    async fn read_more(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        read_more(self, buf).await
    }
}

impl<S: AsyncWriteRent> Sink for S {
    async fn write_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        write_all(self, buf).await
    }

    async fn close_write(&mut self) -> io::Result<()> {
        self.shutdown().await
    }
}

impl Duplex for TcpStream {
    type Reader = OwnedReadHalf<TcpStream>;
    type Writer = OwnedWriteHalf<TcpStream>;

    fn into_halves(self) -> (Self::Reader, Self::Writer) {
        self.into_split()
    }
}
