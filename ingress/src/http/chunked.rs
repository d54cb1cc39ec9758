//! Chunked transfer coding (RFC 9112 §7.1): a streaming decoder that never buffers data, and
//! the few bytes an encoder writes around each piece.
//!
//! The decoder is strict: chunk sizes are 1–16 hex digits followed by optional extensions and
//! CRLF; data must be followed by CRLF; trailer fields are read and dropped (bounded in size).
//! It keeps only a state and a counter, so a body of any length passes through it in pieces.

use std::ops::Range;

use super::{HttpError, MAX_HEAD_BYTES};

/// Ends the data of one chunk.
pub const CHUNK_END: &[u8] = b"\r\n";
/// The last chunk with an empty trailer section: the end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Longest chunk-extension accepted on one size line.
const MAX_EXT_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
    Done,
}

/// Streaming decoder of one chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    remaining: u64,
    digits: u8,
    line: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            state: State::Size,
            remaining: 0,
            digits: 0,
            line: 0,
        }
    }

    /// Whether the last chunk and the trailer section have been read.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads framing from `input` up to the next piece of data. Returns how many bytes of
    /// `input` were consumed and, if the step ended on data, its range within `input` (included
    /// in the consumed count). Call again with the rest of the input; `(0, None)` before
    /// [`ChunkedDecoder::is_done`] means more input is needed.
    ///
    /// # Errors
    /// [`HttpError::BadChunk`] for any framing error; the body is unusable after it.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Range<usize>>), HttpError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Size => {
                    if let Some(v) = hex_value(b) {
                        if self.digits == 16 {
                            return Err(HttpError::BadChunk);
                        }
                        self.remaining = (self.remaining << 4) | u64::from(v);
                        self.digits += 1;
                    } else if self.digits == 0 {
                        return Err(HttpError::BadChunk);
                    } else if b == b';' {
                        self.state = State::Ext;
                        self.line = 0;
                    } else if b == b'\r' {
                        self.state = State::SizeLf;
                    } else {
                        return Err(HttpError::BadChunk);
                    }
                }
                State::Ext => {
                    self.line += 1;
                    if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b'\n' || b == 0 || self.line > MAX_EXT_BYTES {
                        return Err(HttpError::BadChunk);
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(HttpError::BadChunk);
                    }
                    self.state = if self.remaining == 0 {
                        self.line = 0;
                        State::TrailerStart
                    } else {
                        State::Data
                    };
                }
                State::Data => {
                    let avail = input.len() - i;
                    let n = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok((i + n, Some(i..i + n)));
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(HttpError::BadChunk);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(HttpError::BadChunk);
                    }
                    self.state = State::Size;
                    self.digits = 0;
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::FinalLf;
                    } else {
                        self.state = State::TrailerLine;
                        continue;
                    }
                }
                State::TrailerLine => {
                    self.line += 1;
                    if b == b'\r' {
                        self.state = State::TrailerLf;
                    } else if b == b'\n' || b == 0 || self.line > MAX_HEAD_BYTES {
                        return Err(HttpError::BadChunk);
                    }
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(HttpError::BadChunk);
                    }
                    self.state = State::TrailerStart;
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err(HttpError::BadChunk);
                    }
                    self.state = State::Done;
                    return Ok((i + 1, None));
                }
                State::Done => return Ok((i, None)),
            }
            i += 1;
        }
        Ok((i, None))
    }
}

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends the size line of a chunk of `len` bytes (`len` must not be 0: that is [`LAST_CHUNK`]).
pub fn encode_chunk_header(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = len;
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}
