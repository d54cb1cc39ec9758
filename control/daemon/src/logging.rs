//! Structured logs to stderr (tracing). The filter comes from `SKR8TR_LOG` (then `RUST_LOG`),
//! default `info`. Never pass a secret to a log macro: the types that hold secrets print
//! `<redacted>`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber once; later calls (tests starting several daemons in one
/// process) are no-ops.
pub fn init_logging() {
    let filter = std::env::var("SKR8TR_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
