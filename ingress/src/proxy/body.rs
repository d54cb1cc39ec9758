//! Relaying a body in its framing through bounded buffers, and the two-way tunnel after a 101.
//!
//! A body of any size passes through two buffers of a few tens of KiB: what was read and not
//! yet framed (`src_buf`) and what is ready to write (`out`). Chunked bodies are decoded and,
//! when the receiver reads chunked, re-encoded (extensions and trailers dropped). The socket
//! reads and writes underneath are `crate::stream`'s.

use std::io;
use std::time::Duration;

use monoio::net::TcpStream;

use crate::http::{CHUNK_END, ChunkedDecoder, HttpError, LAST_CHUNK, encode_chunk_header};
use crate::stream::{Duplex, READ_CHUNK, Sink, Source};

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
    /// A chunked body's data grew past the limit given to [`relay`].
    TooLarge,
}

/// Relays one body from `src` to `dst`. `src_buf` holds bytes already read from `src` (and
/// keeps any bytes after the body); `out` may already hold bytes to write first (a head). A
/// chunked body whose data passes `max_data` bytes stops with [`RelayError::TooLarge`] before
/// the piece that passed it is written.
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
    max_data: u64,
) -> Result<(), RelayError> {
    let mut data_seen: u64 = 0;
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
                        data_seen = data_seen.saturating_add(piece.len() as u64);
                        if data_seen > max_data {
                            return Err(RelayError::TooLarge);
                        }
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
