//! `skr8tr_ingress`: flags, logging and the exit report (`skr8tr_daemon::start`; the log
//! filter is `SKR8TR_LOG`, alias `RUST_LOG`) and signals; the proxy is
//! [`skr8tr_ingress::start`]; the service manager hears READY once every core beats, WATCHDOG
//! while they all do, STOPPING on drain (`skr8tr_daemon::supervisor`); a listening socket
//! systemd passes (`LISTEN_FDS`, `skr8tr-ingress.socket`) is served instead of `--listen`, so a
//! restart drops no connection. SIGHUP re-reads the routes file and the TLS certificate and
//! reopens the access log; SIGTERM/SIGINT drain and exit.

use std::process::ExitCode;

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use skr8tr_ingress::IngressArgs;

fn main() -> ExitCode {
    skr8tr_daemon::start("skr8tr_ingress", run)
}

fn run(args: IngressArgs) -> anyhow::Result<()> {
    let config = args.into_config().context("bad flags")?;
    let mut signals =
        Signals::new([SIGHUP, SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let inherited =
        skr8tr_ingress::runtime::activated_listener().context("cannot start the ingress")?;
    if inherited.is_some() {
        tracing::info!("serving the socket the service manager passed (--listen ignored)");
    }
    let handle = skr8tr_ingress::start_on(config, inherited).context("cannot start the ingress")?;
    let status = format!(
        "listening on tcp {} ({} cores)",
        handle.local_addr(),
        handle.heartbeats().len()
    );
    skr8tr_daemon::supervisor::watch(handle.heartbeats(), status)
        .context("cannot start the service-manager watcher")?;
    for signal in signals.forever() {
        if signal == SIGHUP {
            if let Err(e) = handle.reload_routes() {
                tracing::error!(error = %format!("{e:#}"), cause = ?std::error::Error::source(&e).map(ToString::to_string), "routes not reloaded; keeping the old ones");
            }
            handle.reopen_access_log();
            if let Err(e) = handle.reload_tls() {
                let e = anyhow::Error::from(e);
                tracing::error!(error = %format!("{e:#}"), "TLS certificate not reloaded; keeping the old one");
            }
        } else {
            tracing::info!(signal, "draining");
            skr8tr_daemon::supervisor::stopping();
            handle.drain();
            break;
        }
    }
    handle.wait();
    tracing::info!("stopped");
    Ok(())
}
