//! Moving bytes: reading into the spare capacity of a buffer, writing a buffer whole, relaying
//! a body in its framing through bounded buffers, and the two-way tunnel after a 101.
//!
//! A body of any size passes through two buffers of a few tens of KiB: what was read and not
//! yet framed (`src_buf`) and what is ready to write (`out`). Chunked bodies are decoded and,
//! when the receiver reads chunked, re-encoded (extensions and trailers dropped).

use std::io;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;

use crate::http::{CHUNK_END, ChunkedDecoder, HttpError, LAST_CHUNK, encode_chunk_header};

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

/// How a relayed body is delimited, and how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked on the source; re-encoded chunked on the destination when `reencode`, raw
    /// otherwise.
    Chunked { reencode: bool },
    /// Until the source closes.
    UntilClose,
}

/// Why a relay stopped.
#[derive(Debug)]
pub enum RelayError {
    /// Reading the source failed.
    Source(io::Error),
    /// The source closed before the body ended.
    SourceClosed,
    /// Writing the destination failed.
    Destination(io::Error),
    /// The source's chunked framing is malformed.
    Framing(HttpError),
}

/// Relays one body from `src` to `dst`. `src_buf` holds bytes already read from `src` (and
/// keeps any bytes after the body); `out` may already hold bytes to write first (a head).
///
/// # Errors
/// See [`RelayError`]; `out` is written before any read, so the head goes out even when the
/// body then fails.
pub async fn relay<R: Source, W: Sink>(
    mode: BodyMode,
    src: &mut R,
    src_buf: &mut Vec<u8>,
    dst: &mut W,
    out: &mut Vec<u8>,
    idle: Duration,
) -> Result<(), RelayError> {
    let mut remaining = match mode {
        BodyMode::Length(n) => n,
        _ => 0,
    };
    let mut decoder = ChunkedDecoder::new();
    loop {
        let done = match mode {
            BodyMode::Length(_) => {
                let take =
                    usize::try_from(remaining).map_or(src_buf.len(), |r| r.min(src_buf.len()));
                if take > 0 && out.is_empty() && take == src_buf.len() {
                    std::mem::swap(out, src_buf);
                } else if take > 0 {
                    out.extend_from_slice(&src_buf[..take]);
                    src_buf.drain(..take);
                }
                remaining -= take as u64;
                remaining == 0
            }
            BodyMode::UntilClose => {
                if out.is_empty() {
                    std::mem::swap(out, src_buf);
                } else {
                    out.extend_from_slice(src_buf);
                    src_buf.clear();
                }
                false
            }
            BodyMode::Chunked { reencode } => {
                let mut pos = 0;
                loop {
                    let (used, data) = decoder
                        .decode(&src_buf[pos..])
                        .map_err(RelayError::Framing)?;
                    if let Some(r) = data {
                        let piece = &src_buf[pos + r.start..pos + r.end];
                        if reencode {
                            encode_chunk_header(out, piece.len());
                            out.extend_from_slice(piece);
                            out.extend_from_slice(CHUNK_END);
                        } else {
                            out.extend_from_slice(piece);
                        }
                    }
                    pos += used;
                    if used == 0 || decoder.is_done() {
                        break;
                    }
                }
                src_buf.drain(..pos);
                if decoder.is_done() && reencode {
                    out.extend_from_slice(LAST_CHUNK);
                }
                decoder.is_done()
            }
        };
        if !out.is_empty() {
            match monoio::time::timeout(idle, dst.write_buf(out)).await {
                Ok(r) => r.map_err(RelayError::Destination)?,
                Err(_) => return Err(RelayError::Destination(stalled())),
            }
        }
        if done {
            return Ok(());
        }
        match monoio::time::timeout(idle, src.read_more(src_buf)).await {
            Ok(Ok(0)) if mode == BodyMode::UntilClose => return Ok(()),
            Ok(Ok(0)) => return Err(RelayError::SourceClosed),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(RelayError::Source(e)),
            Err(_) => return Err(RelayError::Source(stalled())),
        }
    }
}

/// The error a body that made no progress for the idle timeout ends with.
fn stalled() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "body made no progress within the idle timeout",
    )
}

/// Tunnels bytes both ways between `client` and `upstream` until both directions end; each
/// direction's end is passed on as a write shutdown.
pub async fn tunnel<C: Duplex>(client: C, upstream: TcpStream) {
    let (mut cr, mut cw) = client.into_halves();
    let (mut ur, mut uw) = upstream.into_halves();
    monoio::join!(pipe(&mut cr, &mut uw), pipe(&mut ur, &mut cw));
}

async fn pipe<R: Source, W: Sink>(r: &mut R, w: &mut W) {
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        match r.read_more(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if w.write_buf(&mut buf).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = w.close_write().await;
}
