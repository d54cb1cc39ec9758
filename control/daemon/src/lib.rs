//! What every skr8tr daemon shares, so that they read alike: logging (`SKR8TR_LOG`), the bind
//! policy of SPEC §3 and the host arguments, the gate every datagram passes, the exit report;
//! and, for the control daemons (Tower, Conductor, node agent; feature `runtime`, on by
//! default), the runtime choice (io_uring through tokio-uring, or the epoll fallback), a UDP
//! endpoint that works on either, calls to other daemons, and shutdown signals. The ingress
//! and the static file server run on monoio and take only the first part
//! (`default-features = false`), without tokio.
//!
//! It owns no protocol logic: daemons decode datagrams with `skr8tr_proto::wire` and decide
//! what to answer themselves. Everything on the runtime runs on one thread: tasks are spawned
//! with `spawn` (`spawn_local` underneath) under both drivers.

#[cfg(feature = "runtime")]
mod call;
#[cfg(feature = "runtime")]
mod driver;
mod gate;
mod logging;
mod policy;
#[cfg(feature = "runtime")]
mod udp;

#[cfg(feature = "runtime")]
pub use call::{CallError, Patience, call, notify};
#[cfg(feature = "runtime")]
pub use driver::{Driver, FORCE_EPOLL_VAR, run, run_with, spawn};
pub use gate::{Admission, Gate};
pub use logging::init_logging;
pub use policy::{AddressError, listen_addr, parse_host_port};
#[cfg(feature = "runtime")]
pub use udp::UdpEndpoint;

/// Resolves when the process receives SIGTERM or SIGINT.
///
/// # Errors
/// When the signal handlers cannot be installed.
#[cfg(feature = "runtime")]
pub async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        _ = int.recv() => Ok("SIGINT"),
    }
}

/// A daemon binary's exit: success, or its error reported in one line on stderr (with its
/// causes, `{:#}`), prefixed by the binary's name.
pub fn exit_code(
    daemon: &str,
    result: Result<(), impl std::fmt::Display>,
) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{daemon}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
