//! Telling the service manager (systemd, `Type=notify`) how the daemon is: `READY=1` with a
//! one-line `STATUS=` once every event loop runs with its sockets bound, `WATCHDOG=1` while
//! every loop keeps turning, `STOPPING=1` on shutdown (SPEC §7.4). Without `NOTIFY_SOCKET` in
//! the environment everything here is a no-op.
//!
//! ```text
//! each event loop ──beat() every period/4──▶ its Heartbeat ◀──every period── watcher thread
//!   first beat of every loop: READY=1 + STATUS=…;   afterwards: WATCHDOG=1 only if every loop
//!   advanced since the last look (a stuck loop stops the pings and systemd restarts the daemon)
//! ```
//! The period is half of `WATCHDOG_USEC` (when `WATCHDOG_PID` is unset or is this process).
//! The protocol is a few lines over a Unix datagram socket (a path, or `@name` for the
//! abstract namespace), so no crate is needed for it.
//!
//! Owns only the notification: what a daemon reports in `STATUS=` is its binary's business.

use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The service manager's socket variable.
pub const NOTIFY_SOCKET_VAR: &str = "NOTIFY_SOCKET";

/// Where notifications go, from `NOTIFY_SOCKET`; `None` when unset, empty or not a Unix socket
/// address.
fn notify_addr(value: Option<&str>) -> Option<SocketAddr> {
    match value? {
        "" => None,
        v if v.starts_with('@') => SocketAddr::from_abstract_name(&v.as_bytes()[1..]).ok(),
        v if v.starts_with('/') => SocketAddr::from_pathname(v).ok(),
        _ => None,
    }
}

/// Sends one notification (`READY=1`, `STATUS=…`, lines joined by `\n`) to the service manager;
/// nothing without `NOTIFY_SOCKET`. A send that fails is logged at debug level: the daemon
/// runs on without its supervisor's bookkeeping rather than stopping.
pub fn notify(state: &str) {
    let Some(addr) = notify_addr(std::env::var(NOTIFY_SOCKET_VAR).ok().as_deref()) else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|s| s.send_to_addr(state.as_bytes(), &addr));
    if let Err(e) = sent {
        tracing::debug!(error = %e, "cannot notify the service manager");
    }
}

/// The daemon is shutting down (`STOPPING=1`).
pub fn stopping() {
    notify("STOPPING=1");
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when the watchdog is meant for
/// this process (`WATCHDOG_PID` unset or equal to `pid`).
fn watchdog_period_of(
    usec: Option<&str>,
    watchdog_pid: Option<&str>,
    pid: u32,
) -> Option<Duration> {
    if let Some(p) = watchdog_pid
        && p.trim().parse::<u32>().ok() != Some(pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

/// The watchdog period for this process, `None` when the service manager wants no pings.
#[must_use]
pub fn watchdog_period() -> Option<Duration> {
    watchdog_period_of(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// One event loop's heartbeat counter (each of the ingress's cores, each of the server's three
/// daemons, a single daemon's one runtime), beaten from inside that loop.
#[derive(Debug, Default)]
pub struct Heartbeat(AtomicU64);

impl Heartbeat {
    /// A counter at zero (the loop has not turned yet).
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The loop is turning (call from inside that loop only).
    pub fn beat(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn snapshot(loops: &[Arc<Heartbeat>]) -> Vec<u64> {
    loops.iter().map(|h| h.0.load(Ordering::Relaxed)).collect()
}

/// Every loop has beaten at least once: the daemon is up.
fn all_started(now: &[u64]) -> bool {
    now.iter().all(|&n| n > 0)
}

/// Every loop has beaten since `before`: the daemon is alive.
fn all_advanced(before: &[u64], now: &[u64]) -> bool {
    before.len() == now.len() && before.iter().zip(now).all(|(b, n)| n > b)
}

/// How often a loop beats: four times per watchdog period, so the watcher sees every loop
/// advance even when its own wake-ups and the loop's drift apart.
#[must_use]
pub fn beat_interval(period: Duration) -> Duration {
    (period / 4).max(Duration::from_millis(1))
}

/// Starts the watcher thread when a service manager listens (`NOTIFY_SOCKET`): it sends
/// `READY=1` and `STATUS=<status>` once every one of `loops` has beaten, then, when the
/// watchdog is on, `WATCHDOG=1` each period in which every loop beat. Returns at once; without
/// a service manager it starts nothing.
///
/// # Errors
/// When the thread cannot be started.
pub fn watch(loops: Vec<Arc<Heartbeat>>, status: String) -> std::io::Result<()> {
    if notify_addr(std::env::var(NOTIFY_SOCKET_VAR).ok().as_deref()).is_none() {
        return Ok(());
    }
    let period = watchdog_period();
    std::thread::Builder::new()
        .name("sd-notify".into())
        .spawn(move || {
            let poll = period.map_or(Duration::from_millis(10), beat_interval);
            while !all_started(&snapshot(&loops)) {
                std::thread::sleep(poll.min(Duration::from_millis(10)));
            }
            notify(&format!("READY=1\nSTATUS={status}"));
            let Some(period) = period else { return };
            let mut before = snapshot(&loops);
            loop {
                std::thread::sleep(period);
                let now = snapshot(&loops);
                if all_advanced(&before, &now) {
                    notify("WATCHDOG=1");
                }
                before = now;
            }
        })
        .map(drop)
}

/// The control daemons' beat: a task on the daemon's own runtime (one thread, so it runs only
/// while the event loop turns) that beats `heart` at once, then every
/// [`beat_interval`] while the watchdog is on.
#[cfg(feature = "runtime")]
pub async fn beat(heart: Arc<Heartbeat>) {
    heart.beat();
    let Some(period) = watchdog_period() else {
        return;
    };
    let mut tick = tokio::time::interval(beat_interval(period));
    loop {
        tick.tick().await;
        heart.beat();
    }
}

/// A single-runtime daemon is up (call inside its runtime once its sockets are bound): starts
/// the watcher and the beat for one loop, reporting `status` with `READY=1`.
#[cfg(feature = "runtime")]
pub fn ready(status: String) {
    let heart = Heartbeat::new();
    if let Err(e) = watch(vec![Arc::clone(&heart)], status) {
        tracing::warn!(error = %e, "cannot start the service-manager watcher");
        return;
    }
    crate::spawn(beat(heart));
}

/// A stand-in service manager for tests of the daemon binaries (feature `notify-listener`): a
/// Unix datagram socket to name in the daemon's `NOTIFY_SOCKET`, and the messages it received.
#[cfg(feature = "notify-listener")]
#[derive(Debug)]
pub struct NotifyListener {
    dir: std::path::PathBuf,
    socket: UnixDatagram,
    received: Vec<String>,
}

#[cfg(feature = "notify-listener")]
impl NotifyListener {
    /// Binds a fresh socket in a directory of its own under the temporary directory.
    ///
    /// # Errors
    /// The directory or the socket cannot be made.
    pub fn bind() -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "skr8tr-notify-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let socket = UnixDatagram::bind(dir.join("notify"))?;
        Ok(Self {
            dir,
            socket,
            received: Vec::new(),
        })
    }

    /// The value for `NOTIFY_SOCKET`.
    #[must_use]
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.join("notify")
    }

    /// Waits until a message holding the line `line` arrives (or `patience` passes without one)
    /// and returns every message received so far.
    ///
    /// # Errors
    /// `TimedOut` with the messages received, or the socket's error.
    pub fn wait_for(&mut self, line: &str, patience: Duration) -> std::io::Result<&[String]> {
        let deadline = std::time::Instant::now() + patience;
        let has = |m: &String| m.lines().any(|l| l == line);
        while !self.received.iter().any(has) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no {line} in {:?}", self.received),
                ));
            }
            self.socket.set_read_timeout(Some(left))?;
            let mut buf = [0u8; 4096];
            match self.socket.recv(&mut buf) {
                Ok(n) => self
                    .received
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(&self.received)
    }
}

/// What a daemon told its stand-in service manager over one supervised run.
#[cfg(feature = "notify-listener")]
#[derive(Debug)]
pub struct SupervisedRun {
    /// Every message, in order of arrival.
    pub messages: Vec<String>,
    /// How the daemon exited after SIGTERM.
    pub status: std::process::ExitStatus,
}

#[cfg(feature = "notify-listener")]
impl SupervisedRun {
    /// The index of the first message holding the line `line`.
    #[must_use]
    pub fn position(&self, line: &str) -> Option<usize> {
        self.messages
            .iter()
            .position(|m| m.lines().any(|l| l == line))
    }

    /// The `STATUS=` sent with `READY=1`.
    #[must_use]
    pub fn ready_status(&self) -> Option<&str> {
        let ready = self.messages.get(self.position("READY=1")?)?;
        ready.lines().find_map(|l| l.strip_prefix("STATUS="))
    }

    /// What systemd needs from a `Type=notify` daemon with a watchdog: `READY=1` with a
    /// `STATUS=` first, `WATCHDOG=1` only after it, `STOPPING=1` after that, a clean exit.
    ///
    /// # Errors
    /// What is missing or out of order, with every message.
    pub fn check(&self) -> Result<(), String> {
        let at = |line| self.position(line);
        let fail = |what: &str| Err(format!("{what}: {:?} ({})", self.messages, self.status));
        match (at("READY=1"), at("WATCHDOG=1"), at("STOPPING=1")) {
            (Some(0), Some(w), Some(s)) if w > 0 && s > w => {}
            _ => return fail("READY=1, WATCHDOG=1, STOPPING=1 not in that order"),
        }
        if self.ready_status().is_none_or(str::is_empty) {
            return fail("no STATUS= with READY=1");
        }
        if !self.status.success() {
            return fail("did not exit cleanly on SIGTERM");
        }
        Ok(())
    }
}

#[cfg(feature = "notify-listener")]
impl NotifyListener {
    /// Runs the daemon `cmd` under this stand-in service manager (with `WATCHDOG_USEC` set to
    /// `watchdog`): waits for `READY=1`, then for `WATCHDOG=1`, sends SIGTERM (with `kill`),
    /// waits for `STOPPING=1` and the exit. Each wait gives up after `patience`; the daemon is
    /// killed if any fails.
    ///
    /// # Errors
    /// A message that did not come (naming what did), or the daemon could not be run.
    pub fn supervise(
        mut self,
        cmd: &mut std::process::Command,
        watchdog: Duration,
        patience: Duration,
    ) -> std::io::Result<SupervisedRun> {
        let mut child = cmd
            .env(NOTIFY_SOCKET_VAR, self.path())
            .env("WATCHDOG_USEC", watchdog.as_micros().to_string())
            .env_remove("WATCHDOG_PID")
            .spawn()?;
        let waited = ["READY=1", "WATCHDOG=1"]
            .into_iter()
            .try_for_each(|line| self.wait_for(line, patience).map(drop))
            .and_then(|()| {
                let sent = std::process::Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()?;
                if !sent.success() {
                    return Err(std::io::Error::other("kill -TERM failed"));
                }
                self.wait_for("STOPPING=1", patience).map(drop)
            });
        if let Err(e) = waited {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        let status = child.wait()?;
        Ok(SupervisedRun {
            messages: std::mem::take(&mut self.received),
            status,
        })
    }
}

#[cfg(feature = "notify-listener")]
impl Drop for NotifyListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_paths_and_abstract_names() {
        assert!(notify_addr(None).is_none());
        assert!(notify_addr(Some("")).is_none());
        assert!(notify_addr(Some("relative/path")).is_none());
        let path = notify_addr(Some("/run/systemd/notify")).expect("a path");
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let abs = notify_addr(Some("@skr8tr/notify")).expect("an abstract name");
        assert_eq!(abs.as_abstract_name(), Some(&b"skr8tr/notify"[..]));
    }

    #[test]
    fn the_watchdog_period_is_half_the_timeout_for_this_process_only() {
        let table: [(Option<&str>, Option<&str>, Option<Duration>); 7] = [
            (None, None, None),
            (Some("2000000"), None, Some(Duration::from_secs(1))),
            (Some("2000000"), Some("42"), Some(Duration::from_secs(1))),
            (Some("2000000"), Some("43"), None),
            (Some("0"), None, None),
            (Some("soon"), None, None),
            (Some("1"), None, Some(Duration::from_millis(1))),
        ];
        for (usec, pid, want) in table {
            assert_eq!(watchdog_period_of(usec, pid, 42), want, "{usec:?} {pid:?}");
        }
    }

    #[test]
    fn ready_when_every_loop_started_alive_when_every_loop_advanced() {
        assert!(!all_started(&[0]));
        assert!(!all_started(&[3, 0, 1]));
        assert!(all_started(&[1, 5, 2]));
        assert!(all_advanced(&[1, 1], &[2, 5]));
        assert!(!all_advanced(&[1, 1], &[2, 1]), "one core stuck");
        assert!(!all_advanced(&[1], &[2, 2]), "a different set of loops");
        let loops = [Heartbeat::new(), Heartbeat::new()];
        loops[1].beat();
        assert_eq!(snapshot(&loops), vec![0, 1]);
    }
}
