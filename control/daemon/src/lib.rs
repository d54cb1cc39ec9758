//! What every skr8tr control daemon (Tower, Conductor, node agent) shares, so that they read
//! alike: the runtime choice (io_uring through tokio-uring, or the epoll fallback), a UDP
//! endpoint that works on either, the bind policy of SPEC §3, shutdown signals, and logging.
//!
//! It owns no protocol logic: daemons decode datagrams with `skr8tr_proto::wire` and decide
//! what to answer themselves. Everything here runs on one thread: tasks are spawned with
//! [`spawn`] (`spawn_local` underneath) under both drivers.

mod call;
mod driver;
mod gate;
mod logging;
mod policy;
mod udp;

pub use call::{CallError, Patience, call, notify};
pub use driver::{Driver, FORCE_EPOLL_VAR, run, run_with, spawn};
pub use gate::{Admission, Gate};
pub use logging::init_logging;
pub use policy::{AddressError, listen_addr, parse_host_port};
pub use udp::UdpEndpoint;

/// Resolves when the process receives SIGTERM or SIGINT.
///
/// # Errors
/// When the signal handlers cannot be installed.
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
