//! A running replica process: waiting for it to end (as our child, or through a pidfd when it
//! was adopted after an agent restart), and stopping its whole process group.
//!
//! ```text
//! stop: SIGTERM → group ── leader exits within drain? ──▶ rest of group gets what is left
//!                                   │ no                   of drain, then SIGKILL → group
//!                                   ▼
//!                            SIGKILL → group, wait for the leader (reaped if ours)
//! ```
//! The process group id is the leader's pid (replicas start with `process_group(0)`); the
//! group number cannot be reused while any member lives, so signalling it is safe as long as
//! the group has members. This module does not decide *when* to stop (the replica task does).

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use crate::supervise::Termination;
use crate::sys::{self, Signal};

/// How often the rest of a process group is checked after its leader exited.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// The [`Termination`] an exit status stands for.
#[must_use]
pub fn termination_of(status: ExitStatus) -> Termination {
    match (status.code(), status.signal()) {
        (Some(code), _) => Termination::Code(code),
        (None, Some(signal)) => Termination::Signal(signal),
        (None, None) => Termination::Unknown,
    }
}

/// A handle to wait on a replica's leader process.
#[derive(Debug)]
pub enum ProcHandle {
    /// Started by this agent: waited for (and reaped) through tokio.
    Child(tokio::process::Child),
    /// Started by an earlier agent: watched through a pidfd; its exit status is not ours to
    /// read (its parent is init or a subreaper, which reaps it).
    Adopted(AsyncFd<OwnedFd>),
}

impl ProcHandle {
    /// Watches `pid`, not our child, through a pidfd.
    ///
    /// # Errors
    /// `pidfd_open` failed (no such process, kernel older than 5.3) or the runtime has no I/O
    /// driver.
    pub fn adopt(pid: u32) -> io::Result<Self> {
        let fd = sys::pidfd_open(pid)?;
        Ok(Self::Adopted(sys::watch_pidfd(fd)?))
    }

    /// Waits until the leader process has ended (and reaps it if it is our child). Calling it
    /// again after it returned returns the same termination at once.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait(&mut self) -> Termination {
        match self {
            Self::Child(child) => match child.wait().await {
                Ok(status) => termination_of(status),
                Err(e) => {
                    tracing::warn!(error = %e, "waiting for a child failed");
                    Termination::Unknown
                }
            },
            Self::Adopted(fd) => {
                // A pidfd is readable once the process has exited; the readiness is never
                // cleared, so later calls return at once.
                if let Err(e) = fd.readable().await {
                    tracing::warn!(error = %e, "waiting on a pidfd failed");
                }
                Termination::Unknown
            }
        }
    }
}

/// Stops the process group `pgid` whose leader is `handle`: SIGTERM to the group, `drain` for
/// the group to end, then SIGKILL to whatever is left. Returns how the leader ended.
///
/// # Cancel safety
/// Not cancel safe: a dropped future may leave the group signalled with SIGTERM only.
pub async fn stop_group(handle: &mut ProcHandle, pgid: u32, drain: Duration) -> Termination {
    let deadline = tokio::time::Instant::now() + drain;
    signal_group(pgid, Signal::Term);
    let termination = match tokio::time::timeout_at(deadline, handle.wait()).await {
        Ok(t) => t,
        Err(_) => {
            signal_group(pgid, Signal::Kill);
            return handle.wait().await;
        }
    };
    // The leader is gone; other members (a worker it forked) get the rest of the drain.
    while sys::group_alive(pgid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(GROUP_POLL).await;
    }
    kill_group_leftovers(pgid);
    termination
}

/// How long QEMU has after SIGTERM (once the guest ignored its power button for the drain).
const VM_TERM_GRACE: Duration = Duration::from_secs(5);

/// Stops a QEMU guest: presses its ACPI power button through `qmp` and gives it `drain` to
/// shut down; then [`stop_group`] (SIGTERM, which ends QEMU, then SIGKILL). Returns how QEMU
/// ended and whether the guest shut down by itself.
///
/// # Cancel safety
/// Not cancel safe, like [`stop_group`].
pub async fn stop_vm(
    handle: &mut ProcHandle,
    pgid: u32,
    qmp: &std::path::Path,
    drain: Duration,
) -> (Termination, bool) {
    match crate::qmp::powerdown(qmp).await {
        Ok(()) => {
            if let Ok(t) = tokio::time::timeout(drain, handle.wait()).await {
                kill_group_leftovers(pgid);
                return (t, true);
            }
            tracing::info!(
                pgid,
                "the guest did not power off within its drain; signalling QEMU"
            );
        }
        Err(e) => {
            tracing::warn!(pgid, socket = %qmp.display(), error = %e, "cannot press the guest's power button; signalling QEMU");
        }
    }
    (
        stop_group(
            handle,
            pgid,
            VM_TERM_GRACE.min(drain.max(Duration::from_millis(100))),
        )
        .await,
        false,
    )
}

/// SIGKILLs whatever remains of a group whose leader has ended, so a replica's helpers never
/// outlive it as orphans.
pub fn kill_group_leftovers(pgid: u32) {
    signal_group(pgid, Signal::Kill);
}

fn signal_group(pgid: u32, signal: Signal) {
    if let Err(e) = sys::kill_group(pgid, signal) {
        tracing::warn!(pgid, ?signal, error = %e, "cannot signal process group");
    }
}
