//! The access log (`--access-log PATH`, `-` for standard output): one line per response,
//! written by a thread of its own so that a core never waits on a disk.
//!
//! ```text
//! core: response ─format─▶ per-core batch (RefCell<Vec<u8>>) ─every 50 ms or 32 KiB─▶ try_send
//!                                                   queue full? drop the batch, count its lines
//! writer thread: batches ─▶ BufWriter<file | stdout> ─flush when the queue is empty
//!                Reopen (SIGHUP, after logrotate moved the file) ─▶ open the path again
//! ```
//!
//! A line: `2026-11-26T07:00:00.123Z 10.0.0.7 "GET /api/x?q=1 HTTP/1.1" 200 0.412 /api 10.0.0.9:8080`
//! (time of the response, client address, request line, status, milliseconds from the complete
//! request head to the end of the response, route prefix, upstream or `-`). Owns formatting and
//! writing only; the proxy decides what a request's fields are.

use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// A file, appended to (created when missing), reopened on SIGHUP.
    File(PathBuf),
}

impl Target {
    /// `-` is standard output; anything else a path.
    #[must_use]
    pub fn parse(flag: &str) -> Self {
        if flag == "-" {
            Self::Stdout
        } else {
            Self::File(PathBuf::from(flag))
        }
    }
}

/// A batch is handed to the writer once it is this big (or at the next housekeeping tick).
const BATCH_BYTES: usize = 32 * 1024;
/// Batches waiting for the writer before cores start dropping lines.
const QUEUE_BATCHES: usize = 256;

enum Msg {
    Lines(Vec<u8>),
    Reopen,
    Stop,
}

/// The cores' side of the access log: a bounded queue to the writer thread.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: SyncSender<MsgBox>,
}

/// `Msg` behind a `Debug` impl (the queue is part of `Hub`'s and `Core`'s debug output).
struct MsgBox(Msg);

impl std::fmt::Debug for MsgBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// Why the access log could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the access log {}", path.display())]
pub struct OpenError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

fn open(target: &Target) -> Result<Box<dyn Write + Send>, OpenError> {
    match target {
        Target::Stdout => Ok(Box::new(io::stdout())),
        Target::File(path) => OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(|f: File| Box::new(f) as Box<dyn Write + Send>)
            .map_err(|source| OpenError {
                path: path.clone(),
                source,
            }),
    }
}

impl AccessLog {
    /// Opens `target` (so a bad path fails at start) and starts the writer thread.
    ///
    /// # Errors
    /// [`OpenError`]: the file cannot be opened for appending, or the thread cannot start.
    pub fn start(target: Target) -> Result<(Self, JoinHandle<()>), OpenError> {
        let out = open(&target)?;
        let (tx, rx) = sync_channel(QUEUE_BATCHES);
        let thread = std::thread::Builder::new()
            .name("ingress-access-log".into())
            .spawn(move || write_loop(&target, out, &rx))
            .map_err(|source| OpenError {
                path: PathBuf::from("<thread>"),
                source,
            })?;
        Ok((Self { tx }, thread))
    }

    /// Asks the writer to open the file again (after log rotation).
    pub fn reopen(&self) {
        let _ = self.tx.send(MsgBox(Msg::Reopen));
    }

    /// Asks the writer to write what it has and stop.
    pub fn stop(&self) {
        let _ = self.tx.send(MsgBox(Msg::Stop));
    }
}

fn write_loop(target: &Target, out: Box<dyn Write + Send>, rx: &Receiver<MsgBox>) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut failing = false;
    while let Ok(MsgBox(msg)) = rx.recv() {
        let mut next = Some(msg);
        // Write everything queued, then flush once.
        while let Some(msg) = next.take() {
            match msg {
                Msg::Lines(batch) => {
                    if let Err(e) = out.write_all(&batch) {
                        if !failing {
                            tracing::warn!(error = %e, "cannot write the access log; dropping lines");
                        }
                        failing = true;
                    }
                }
                Msg::Reopen => {
                    let _ = out.flush();
                    match open(target) {
                        Ok(new) => {
                            out = BufWriter::with_capacity(64 * 1024, new);
                            failing = false;
                            tracing::info!("access log reopened");
                        }
                        Err(e) => {
                            tracing::error!(error = %e, cause = %e.source, "access log not reopened; keeping the old file")
                        }
                    }
                }
                Msg::Stop => {
                    let _ = out.flush();
                    return;
                }
            }
            next = rx.try_recv().ok().map(|MsgBox(m)| m);
        }
        if out.flush().is_ok() {
            failing = false;
        }
    }
    let _ = out.flush();
}

/// One core's batch of lines.
#[derive(Debug)]
pub struct CoreLog {
    log: AccessLog,
    batch: RefCell<Vec<u8>>,
    lines: Cell<u64>,
}

/// One response, as the proxy knows it.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The client's address (canonical IP text).
    pub client: &'a str,
    /// `METHOD TARGET` of the request (empty when it did not parse).
    pub request: &'a str,
    /// The request's HTTP minor version.
    pub minor: u8,
    /// The status sent (0: none).
    pub status: u16,
    /// From the complete request head to the end of the response.
    pub elapsed: Duration,
    /// The route's prefix (`none`: no route).
    pub route: &'a str,
    /// The upstream that answered, if any.
    pub upstream: Option<SocketAddr>,
}

impl CoreLog {
    /// A core's batch feeding `log`.
    #[must_use]
    pub fn new(log: AccessLog) -> Self {
        Self {
            log,
            batch: RefCell::new(Vec::with_capacity(BATCH_BYTES + 1024)),
            lines: Cell::new(0),
        }
    }

    /// Appends one line; hands the batch over once it is big. Returns the lines dropped
    /// because the writer is behind.
    pub fn push(&self, e: &Entry<'_>) -> u64 {
        let full = {
            let mut b = self.batch.borrow_mut();
            format_line(&mut b, SystemTime::now(), e);
            b.len() >= BATCH_BYTES
        };
        self.lines.set(self.lines.get() + 1);
        if full { self.flush() } else { 0 }
    }

    /// Hands the batch to the writer (never waits). Returns the lines dropped.
    pub fn flush(&self) -> u64 {
        let mut b = self.batch.borrow_mut();
        if b.is_empty() {
            return 0;
        }
        let lines = self.lines.replace(0);
        let batch = std::mem::replace(&mut *b, Vec::with_capacity(BATCH_BYTES + 1024));
        match self.log.tx.try_send(MsgBox(Msg::Lines(batch))) {
            Ok(()) => 0,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => lines,
        }
    }
}

/// Formats one line of `e` at `now` into `out`.
pub fn format_line(out: &mut Vec<u8>, now: SystemTime, e: &Entry<'_>) {
    let _ = write!(
        out,
        "{} {} \"",
        humantime::format_rfc3339_millis(now),
        e.client
    );
    // The request target is the client's text: keep the line one line with one quoted field.
    for &b in e.request.as_bytes() {
        match b {
            b'"' | b'\\' | 0..=0x1f | 0x7f.. => {
                let _ = write!(out, "\\x{b:02x}");
            }
            _ => out.push(b),
        }
    }
    if e.request.is_empty() {
        out.extend_from_slice(b"-\"");
    } else {
        let _ = write!(out, " HTTP/1.{}\"", e.minor);
    }
    let _ = write!(
        out,
        " {} {:.3} {} ",
        e.status,
        e.elapsed.as_secs_f64() * 1000.0,
        e.route
    );
    match e.upstream {
        Some(addr) => {
            let _ = writeln!(out, "{addr}");
        }
        None => out.extend_from_slice(b"-\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_every_field_and_escapes_the_target() {
        let mut out = Vec::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        let entry = Entry {
            client: "10.0.0.7",
            request: "GET /a\"b\\c\u{1}",
            minor: 1,
            status: 200,
            elapsed: Duration::from_micros(412),
            route: "/api",
            upstream: Some("10.0.0.9:8080".parse().unwrap()),
        };
        format_line(&mut out, now, &entry);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "2026-11-18T11:06:40.123Z 10.0.0.7 \"GET /a\\x22b\\x5cc\\x01 HTTP/1.1\" 200 0.412 /api 10.0.0.9:8080\n"
        );
        out.clear();
        format_line(
            &mut out,
            now,
            &Entry {
                upstream: None,
                status: 404,
                route: "none",
                ..entry
            },
        );
        assert!(String::from_utf8_lossy(&out).ends_with("\" 404 0.412 none -\n"));
        out.clear();
        let unparsed = Entry {
            request: "",
            status: 400,
            ..entry
        };
        format_line(&mut out, now, &unparsed);
        assert!(String::from_utf8_lossy(&out).contains(" 10.0.0.7 \"-\" 400 "));
    }

    #[test]
    fn batches_reach_the_file_and_a_full_queue_drops_instead_of_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let (log, thread) = AccessLog::start(Target::File(path.clone())).unwrap();
        let core = CoreLog::new(log.clone());
        let entry = Entry {
            client: "127.0.0.1",
            request: "GET /",
            minor: 1,
            status: 200,
            elapsed: Duration::from_millis(1),
            route: "/",
            upstream: None,
        };
        for _ in 0..1000 {
            core.push(&entry);
        }
        core.flush();
        log.stop();
        thread.join().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1000);
        // The writer is gone: a flush drops its lines and says how many.
        core.push(&entry);
        core.push(&entry);
        assert_eq!(core.flush(), 2);
    }
}
