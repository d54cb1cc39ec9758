//! Replica output: each replica writes stdout and stderr straight into its own log file
//! (`O_APPEND`, never a pipe to the agent, so it outlives an agent restart without SIGPIPE), and
//! the agent tails that file into a ring of the newest [`RING_LINES`] lines.
//!
//! ```text
//! replica ──write(O_APPEND)──▶ logs/REPLICA.log ──LogTail::poll──▶ LogRing (200 lines)
//!                                    │ over 1 MiB after a poll: truncated in place
//!                                    ▼ (copytruncate: the ring already holds the tail)
//! ```
//!
//! The ring outlives the process (a crash can be read) and is rebuilt from the file when a
//! replica is adopted after an agent restart. Lines longer than [`MAX_LINE`] bytes are cut;
//! bytes that are not UTF-8 are replaced. This module owns the file-tailing and the ring, not
//! the decision of when to poll (the replica task polls every 100 ms, and `logs` on demand).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Lines kept per replica.
pub const RING_LINES: usize = 200;
/// Longest line kept, in bytes; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 4096;
/// A log file larger than this after a poll is truncated.
pub const TRUNCATE_AT: u64 = 1 << 20;
/// Most bytes one poll reads, so a chatty replica cannot stall the agent's thread.
const MAX_READ_PER_POLL: u64 = 4 << 20;

/// Why a log file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open log file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Opens (creating, mode 0600) a replica's log file for appending, as the child's stdout/stderr.
///
/// # Errors
/// [`LogError::Open`] when the file cannot be created or opened.
pub fn open_for_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// Appends one line written by the agent itself (exit notices, restart failures) to a log file.
/// Best effort: a failure is only traced.
pub fn append_note(path: &Path, note: &str) {
    let result = open_for_append(path)
        .map_err(io::Error::other)
        .and_then(|mut f| writeln!(f, "[skr8tr-node] {note}"));
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "cannot append to log file");
    }
}

/// The newest [`RING_LINES`] lines, fed with raw bytes.
#[derive(Debug, Clone, Default)]
pub struct LogRing {
    lines: VecDeque<String>,
    partial: Vec<u8>,
    /// The current line passed [`MAX_LINE`] and was already emitted; drop bytes until `\n`.
    discarding: bool,
}

impl LogRing {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; complete lines enter the ring, an unfinished last line waits for more.
    pub fn push_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (piece, rest, complete) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if !self.discarding {
                let room = MAX_LINE - self.partial.len();
                self.partial
                    .extend_from_slice(&piece[..piece.len().min(room)]);
                if piece.len() > room || (self.partial.len() == MAX_LINE && !complete) {
                    self.emit_partial();
                    self.discarding = true;
                }
            }
            if complete {
                if self.discarding {
                    self.discarding = false;
                } else {
                    self.emit_partial();
                }
            }
        }
    }

    /// Emits an unfinished last line (the process ended without a final newline).
    pub fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            self.emit_partial();
        }
        self.discarding = false;
    }

    /// The lines, oldest first.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }

    fn emit_partial(&mut self) {
        let mut bytes = std::mem::take(&mut self.partial);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let line = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        if self.lines.len() == RING_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

/// Follows one log file into a [`LogRing`].
#[derive(Debug, Clone)]
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    ring: LogRing,
}

impl LogTail {
    /// Tails `path` from its current end (a new replica: what was there is an earlier run's).
    /// A missing file counts as empty.
    #[must_use]
    pub fn from_end(path: &Path) -> Self {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        Self {
            path: path.to_path_buf(),
            offset,
            ring: LogRing::new(),
        }
    }

    /// Tails `path` from its start, so the ring is rebuilt from what the file holds (an adopted
    /// replica, or one whose earlier runs should show).
    #[must_use]
    pub fn from_start(path: &Path) -> Self {
        let mut tail = Self {
            path: path.to_path_buf(),
            offset: 0,
            ring: LogRing::new(),
        };
        if let Ok(len) = std::fs::metadata(path).map(|m| m.len()) {
            // Only the last part can matter: 200 lines of at most 4 KiB.
            let keep = (RING_LINES * (MAX_LINE + 1)) as u64;
            if len > keep {
                tail.offset = len - keep;
                tail.ring.discarding = true; // skip the first, probably partial, line
            }
        }
        tail.poll();
        tail
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was appended since the last poll; truncates the file when it grew past
    /// [`TRUNCATE_AT`]. I/O errors (the file removed, for instance) are traced and skipped.
    pub fn poll(&mut self) {
        if let Err(e) = self.poll_inner()
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::debug!(path = %self.path.display(), error = %e, "log poll failed");
        }
    }

    fn poll_inner(&mut self) -> io::Result<()> {
        let mut file = match File::options().read(true).write(true).open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(&self.path)?,
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            // Truncated behind our back: start over from its start.
            self.offset = 0;
        }
        if len > self.offset {
            file.seek(SeekFrom::Start(self.offset))?;
            let mut buf = Vec::new();
            let n = (&mut file).take(MAX_READ_PER_POLL).read_to_end(&mut buf)?;
            self.offset += n as u64;
            self.ring.push_bytes(&buf);
        }
        if self.offset > TRUNCATE_AT && self.offset >= len {
            // copytruncate: whatever the replica wrote between our read and this call is lost,
            // which is the known price of not holding a pipe to it.
            file.set_len(0)?;
            self.offset = 0;
        }
        Ok(())
    }

    /// Polls once more and emits an unfinished last line: the process ended.
    pub fn finish(&mut self) {
        self.poll();
        self.ring.flush_partial();
    }

    /// The ring's lines, oldest first.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.ring.lines()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_splits_lines_across_pushes() {
        let mut r = LogRing::new();
        r.push_bytes(b"one\ntw");
        assert_eq!(r.lines(), ["one"]);
        r.push_bytes(b"o\r\nthree");
        assert_eq!(r.lines(), ["one", "two"]);
        r.flush_partial();
        assert_eq!(r.lines(), ["one", "two", "three"]);
        r.push_bytes(b"four\n\n");
        assert_eq!(r.lines(), ["one", "two", "three", "four", ""]);
    }

    #[test]
    fn ring_keeps_the_newest_lines() {
        let mut r = LogRing::new();
        for i in 0..250 {
            r.push_bytes(format!("line {i}\n").as_bytes());
        }
        let lines = r.lines();
        assert_eq!(lines.len(), RING_LINES);
        assert_eq!(lines[0], "line 50");
        assert_eq!(lines[RING_LINES - 1], "line 249");
    }

    #[test]
    fn long_lines_are_cut_once() {
        let mut r = LogRing::new();
        let long = vec![b'x'; MAX_LINE * 3];
        r.push_bytes(&long[..MAX_LINE + 10]);
        r.push_bytes(&long[..MAX_LINE]);
        r.push_bytes(b"tail\nnext\n");
        let lines = r.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(lines[1], "next");
        // Exactly MAX_LINE bytes then newline: one line, nothing dropped after.
        let mut r = LogRing::new();
        let mut exact = vec![b'y'; MAX_LINE];
        exact.extend_from_slice(b"\nz\n");
        r.push_bytes(&exact);
        assert_eq!(r.lines().len(), 2);
        assert_eq!(r.lines()[1], "z");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut r = LogRing::new();
        r.push_bytes(b"a\xffb\n");
        assert_eq!(r.lines(), ["a\u{fffd}b"]);
    }

    #[test]
    fn tail_follows_rebuilds_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let mut f = open_for_append(&path).unwrap();
        writeln!(f, "before").unwrap();
        let mut tail = LogTail::from_end(&path);
        writeln!(f, "after").unwrap();
        tail.poll();
        assert_eq!(tail.lines(), ["after"]);
        assert_eq!(LogTail::from_start(&path).lines(), ["before", "after"]);

        let big = "z".repeat(1000);
        for _ in 0..1100 {
            writeln!(f, "{big}").unwrap();
        }
        tail.poll();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "truncated");
        writeln!(f, "fresh").unwrap(); // O_APPEND: lands at the new end
        append_note(&path, "note");
        tail.finish();
        let lines = tail.lines();
        assert_eq!(lines.len(), RING_LINES);
        assert_eq!(&lines[RING_LINES - 2..], ["fresh", "[skr8tr-node] note"]);
    }

    #[test]
    fn rebuild_of_a_big_file_reads_only_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let mut f = open_for_append(&path).unwrap();
        for i in 0..3000 {
            writeln!(f, "{i:04}{}", "-".repeat(1000)).unwrap();
        }
        let lines = LogTail::from_start(&path).lines();
        assert_eq!(lines.len(), RING_LINES);
        assert!(lines[RING_LINES - 1].starts_with("2999"));
        assert!(lines[0].starts_with("2800"));
    }
}
