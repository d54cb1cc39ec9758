//! Runtime selection: io_uring (tokio-uring) by default, the tokio epoll runtime when io_uring
//! is unavailable (old kernel, `io_uring_disabled`, a seccomp filter) or when
//! `SKR8TR_FORCE_EPOLL=1` asks for it. The choice is logged once at start.
//!
//! Both drivers are one current-thread tokio runtime underneath (tokio-uring builds on one), so
//! tokio timers, processes, signals and `spawn_local` work the same under each; only the UDP
//! endpoint differs.

use std::future::Future;

/// Set to `1` to run on epoll even where io_uring works (tests cover both drivers this way).
pub const FORCE_EPOLL_VAR: &str = "SKR8TR_FORCE_EPOLL";

/// Submission-queue entries for the io_uring instance: a control daemon has a handful of
/// sockets in flight, and a small ring keeps its memory small.
const URING_ENTRIES: u32 = 64;

/// Which I/O driver a daemon runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    IoUring,
    Epoll,
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::IoUring => "io_uring",
            Self::Epoll => "epoll",
        })
    }
}

fn force_epoll() -> bool {
    std::env::var(FORCE_EPOLL_VAR).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Runs `main` to completion on io_uring if possible, else on epoll, and logs which.
///
/// # Errors
/// When neither runtime can be built (the epoll one fails only if the process is out of
/// descriptors or memory).
pub fn run<F, Fut, T>(daemon: &str, main: F) -> std::io::Result<T>
where
    F: FnOnce(Driver) -> Fut,
    Fut: Future<Output = T>,
{
    run_with(daemon, force_epoll(), main)
}

/// [`run`] with the epoll choice made by the caller instead of the environment (tests).
///
/// # Errors
/// As [`run`].
pub fn run_with<F, Fut, T>(daemon: &str, epoll: bool, main: F) -> std::io::Result<T>
where
    F: FnOnce(Driver) -> Fut,
    Fut: Future<Output = T>,
{
    if !epoll {
        match tokio_uring::Runtime::new(tokio_uring::builder().entries(URING_ENTRIES)) {
            Ok(rt) => {
                tracing::info!(daemon, driver = "io_uring", "runtime started");
                return Ok(rt.block_on(main(Driver::IoUring)));
            }
            Err(err) => {
                tracing::warn!(daemon, driver = "epoll", error = %err, "io_uring unavailable, falling back to epoll");
            }
        }
    } else {
        tracing::info!(
            daemon,
            driver = "epoll",
            "io_uring disabled by {FORCE_EPOLL_VAR}"
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    tracing::info!(daemon, driver = "epoll", "runtime started");
    Ok(local.block_on(&rt, main(Driver::Epoll)))
}

/// Spawns a task on the current daemon's thread (either driver).
pub fn spawn<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    tokio::task::spawn_local(task)
}
