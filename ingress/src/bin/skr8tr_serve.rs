//! `skr8tr_serve`: a static file server; the server is [`skr8tr_ingress::static_files::start`].

use anyhow::Context;
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use skr8tr_ingress::static_files::ServeArgs;

fn main() -> anyhow::Result<()> {
    skr8tr_daemon::init_logging();
    let config = ServeArgs::parse().into_config().context("bad flags")?;
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let handle =
        skr8tr_ingress::static_files::start(config).context("cannot start the file server")?;
    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, "stopping");
    }
    handle.stop();
    Ok(())
}
