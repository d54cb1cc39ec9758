//! The node's system calls that std does not wrap: signalling a process group, `pidfd_open`,
//! `sysconf`, and the work a child does between fork and exec.
//!
//! This is the only module of the crate that contains `unsafe` code. Everything it exports is a
//! safe function; each `unsafe` block states why it is sound. Nothing here decides anything:
//! callers choose which signal to send and when.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The signals the node sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Self::Term => libc::SIGTERM,
            Self::Kill => libc::SIGKILL,
        }
    }
}

/// Sends `signal` to every process of the process group `pgid`.
///
/// Returns `Ok(false)` when the group no longer has any member (`ESRCH`), which callers treat as
/// "already gone", not as an error.
///
/// # Errors
/// Any other `kill(2)` failure (`EPERM`, `EINVAL`).
pub fn kill_group(pgid: u32, signal: Signal) -> io::Result<bool> {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    if pgid <= 1 {
        // `kill(-1, …)` would signal every process we may signal, and `kill(-0, …)` our own
        // group: never what a caller means.
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(-pgid, signal.raw()) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Whether the process group `pgid` still has a member (zombies included): `kill(-pgid, 0)`.
#[must_use]
pub fn group_alive(pgid: u32) -> bool {
    match libc::pid_t::try_from(pgid) {
        // SAFETY: kill(2) with signal 0 only checks for existence and permission.
        Ok(pgid) if pgid > 1 => unsafe { libc::kill(-pgid, 0) == 0 },
        _ => false,
    }
}

/// Opens a pidfd (`pidfd_open(2)`) for `pid`: a descriptor that becomes readable when the process
/// exits, whoever its parent is. The descriptor is close-on-exec (pidfds always are).
///
/// # Errors
/// `ESRCH` when no such process exists, `ENOSYS` on kernels older than 5.3.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: the pidfd_open system call takes a pid and a flags word and returns a new
    // descriptor or -1; no memory is shared with the kernel.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(rc).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: `fd` was just returned by the kernel, is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Registers a pidfd with the runtime's reactor, for readiness (= process exit) only.
///
/// # Errors
/// The reactor refused the descriptor.
///
/// # Panics
/// Outside a tokio runtime with I/O enabled (tokio's own rule for `AsyncFd`).
pub fn watch_pidfd(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` owns an open descriptor that nothing else closes, and its
    // `as_raw_fd` returns that same descriptor for as long as the `AsyncFd` owns it.
    Ok(unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `/proc/PID/stat` CPU times.
#[must_use]
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the C library.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(v).ok().filter(|&v| v > 0).unwrap_or(100)
}

/// The page size in bytes (`sysconf(_SC_PAGESIZE)`), the unit of RSS in `/proc/PID/stat`.
#[must_use]
pub fn page_size() -> u64 {
    // SAFETY: sysconf reads a constant of the C library.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(v).ok().filter(|&v| v > 0).unwrap_or(4096)
}

/// What a child does between fork and exec, beyond std's own setup (stdio, process group).
#[derive(Debug, Clone, Default)]
pub struct ChildSetup {
    /// `cgroup.procs` files, already opened for writing (close-on-exec) by the parent: the
    /// child writes `0` ("myself") into each, so it runs inside its cgroups from its first
    /// instruction after exec.
    pub cgroup_procs: Vec<RawFd>,
    /// `RLIMIT_DATA` (soft and hard) in bytes: the process's private writable memory (heap,
    /// anonymous mappings). Not `RLIMIT_AS`, which also counts address space that is only
    /// reserved (Go, the JVM and V8 reserve gigabytes up front and would fail to start).
    pub data_limit: Option<u64>,
}

/// Installs `setup` as a `pre_exec` hook on `cmd`, plus marking every descriptor above 2
/// close-on-exec (`close_range(3, ~0, CLOSE_RANGE_CLOEXEC)`), so that even a descriptor some
/// library opened without `O_CLOEXEC` does not leak into the workload.
///
/// A failure to join a cgroup or to set the rlimit makes `spawn` fail with that error, so the
/// caller can retry with weaker enforcement instead of reporting a limit that does not hold.
/// The descriptors in `setup.cgroup_procs` must stay open until `spawn` returns.
pub fn install_child_setup(cmd: &mut Command, setup: ChildSetup) {
    let closure = move || -> io::Result<()> {
        for &fd in &setup.cgroup_procs {
            // SAFETY: write(2) is async-signal-safe; the buffer is a static byte string and
            // `fd` is a descriptor the parent keeps open until spawn returns.
            let rc = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            if rc != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(bytes) = setup.data_limit {
            let limit = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            // SAFETY: setrlimit(2) is async-signal-safe and reads only the struct on our stack.
            let rc = unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: close_range(2) is a plain system call (async-signal-safe). With
        // CLOSE_RANGE_CLOEXEC it only sets flags, so std's own exec-error pipe keeps working.
        // Failure (kernel < 5.11) is ignored: everything the agent opens is O_CLOEXEC anyway.
        let _ = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
            )
        };
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec. It only calls write(2),
    // setrlimit(2) and close_range(2), which are async-signal-safe, reads errno, and does not
    // allocate, lock or touch state shared with other threads of the parent.
    unsafe {
        cmd.pre_exec(closure);
    }
}
