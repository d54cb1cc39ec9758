//! The processes the runner starts, and how they are always stopped.
//!
//! ```text
//! Proc::spawn ─▶ child in a process group of its own ─▶ pgid in the REGISTRY
//!   drop / stop: SIGTERM to the group, wait, SIGKILL ─▶ removed from the REGISTRY
//! Ctrl-C / SIGTERM / SIGHUP ─▶ INTERRUPTED (every wait loop returns an error, guards unwind)
//!   second signal, or still running 20 s later ─▶ SIGKILL every registered group,
//!   delete every registered namespace, then the signal's default action
//! ```
//! Workloads (the replicas the node agents fork) live in process groups of their own; the
//! runner stops them through their agent (`--stop-workloads-on-exit`) and, as a net, kills
//! every replica it has seen that still runs `example-service` (see [`reap_workload`]).

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// Set by the first Ctrl-C/SIGTERM/SIGHUP.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Process groups and network namespaces to remove if the runner is interrupted.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    groups: Vec::new(),
    namespaces: Vec::new(),
});

#[derive(Debug)]
struct Registry {
    groups: Vec<i32>,
    namespaces: Vec<String>,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// True once the runner has been asked to stop.
#[must_use]
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// An error when the runner has been interrupted: every wait loop calls this.
///
/// # Errors
/// Ctrl-C (or SIGTERM/SIGHUP) was received.
pub fn check_interrupt() -> anyhow::Result<()> {
    if interrupted() {
        anyhow::bail!("interrupted");
    }
    Ok(())
}

/// Sleeps `d`, waking early (with an error) when interrupted.
///
/// # Errors
/// Interrupted.
pub fn sleep(d: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + d;
    loop {
        check_interrupt()?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Installs the Ctrl-C/SIGTERM/SIGHUP handling described in the module docs.
///
/// # Errors
/// The signal handlers cannot be installed.
pub fn install_signal_handling() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut first: Option<(i32, Instant)> = None;
            loop {
                for sig in signals.pending() {
                    if first.is_some() {
                        emergency_exit(sig);
                    }
                    eprintln!("\nskr8tr-loadtest: stopping (signal {sig}); again to kill at once");
                    INTERRUPTED.store(true, Ordering::SeqCst);
                    first = Some((sig, Instant::now()));
                }
                if let Some((sig, at)) = first
                    && at.elapsed() > Duration::from_secs(20)
                {
                    emergency_exit(sig);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// Kills whatever is still registered and ends the process with the signal's default action.
fn emergency_exit(sig: i32) {
    eprintln!("skr8tr-loadtest: killing everything it started");
    let (groups, namespaces) = {
        let r = registry();
        (r.groups.clone(), r.namespaces.clone())
    };
    for g in groups {
        signal_group(g, Signal::KILL);
    }
    for ns in namespaces {
        let _ = Command::new("ip")
            .args(["netns", "delete", &ns])
            .stderr(Stdio::null())
            .status();
    }
    let _ = signal_hook::low_level::emulate_default_handler(sig);
}

/// Records a namespace to delete if the runner is interrupted.
pub fn register_namespace(name: &str) {
    registry().namespaces.push(name.to_owned());
}

/// Forgets a namespace (it was deleted in order).
pub fn forget_namespace(name: &str) {
    registry().namespaces.retain(|n| n != name);
}

fn signal_group(pgid: i32, sig: Signal) -> bool {
    Pid::from_raw(pgid).is_some_and(|p| kill_process_group(p, sig).is_ok())
}

/// `kill -9 PID` (the process only).
///
/// # Errors
/// No such process, or not allowed.
pub fn kill9(pid: u32) -> anyhow::Result<()> {
    let raw = i32::try_from(pid).context("pid out of range")?;
    let p = Pid::from_raw(raw).context("pid 0")?;
    kill_process(p, Signal::KILL).with_context(|| format!("kill -9 {pid}"))
}

/// `kill -9 -PGID` (the whole process group).
///
/// # Errors
/// No such group, or not allowed.
pub fn kill9_group(pgid: u32) -> anyhow::Result<()> {
    let raw = i32::try_from(pgid).context("pgid out of range")?;
    let p = Pid::from_raw(raw).context("pgid 0")?;
    kill_process_group(p, Signal::KILL).with_context(|| format!("kill -9 -{pgid}"))
}

/// Whether a process exists (and is not a zombie).
#[must_use]
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// The live children of `ppid` (from `/proc/*/stat`).
#[must_use]
pub fn children_of(ppid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let (_, rest) = s.rsplit_once(") ")?;
                    let mut f = rest.split(' ');
                    let state = f.next()?;
                    (state != "Z").then(|| f.next()?.parse::<u32>().ok())?
                })
                == Some(ppid)
        })
        .collect()
}

/// Kills a replica the runner saw, if it still runs the example service: its process group
/// when it leads one, else the process.
pub fn reap_workload(pid: u32) {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    if !String::from_utf8_lossy(&cmdline).contains("example-service") || !alive(pid) {
        return;
    }
    let leads_group = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').nth(2).map(str::to_owned))
        })
        .is_some_and(|pgrp| pgrp == pid.to_string());
    let _ = if leads_group {
        kill9_group(pid)
    } else {
        kill9(pid)
    };
}

/// A child process in a process group of its own, stopped when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    pgid: i32,
}

impl Proc {
    /// Starts `cmd` with stdin closed and stdout/stderr appended to `log`.
    ///
    /// # Errors
    /// The log cannot be opened or the program cannot be started.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone().context("log file")?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // Registered while the lock is held, so an interrupt never misses a fresh child.
        let mut r = registry();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        let pgid = i32::try_from(child.id()).context("pid out of range")?;
        r.groups.push(pgid);
        Ok(Self { child, pgid })
    }

    /// The process id (also its process group id).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM to the group, without waiting (see [`Proc::stop`]).
    pub fn terminate(&mut self) {
        if self.pgid != 0 {
            signal_group(self.pgid, Signal::TERM);
        }
    }

    /// `kill -9` of the whole process group, and reaps it.
    pub fn kill9(mut self) {
        signal_group(self.pgid, Signal::KILL);
        let _ = self.child.wait();
        self.unregister();
    }

    /// SIGTERM to the group; SIGKILL after `grace`.
    pub fn stop(mut self, grace: Duration) {
        self.stop_in_place(grace);
    }

    fn stop_in_place(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_group(self.pgid, Signal::TERM);
            let until = Instant::now() + grace;
            while Instant::now() < until && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // The group may hold more than the leader (e.g. `ip netns exec` helpers).
        signal_group(self.pgid, Signal::KILL);
        let _ = self.child.wait();
        self.unregister();
    }

    fn unregister(&mut self) {
        let pgid = self.pgid;
        registry().groups.retain(|g| *g != pgid);
        self.pgid = 0;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.pgid != 0 {
            self.stop_in_place(Duration::from_secs(5));
        }
    }
}
