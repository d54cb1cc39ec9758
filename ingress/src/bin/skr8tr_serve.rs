//! `skr8tr_serve`: a static file server; the server is [`skr8tr_ingress::static_files::start`].

use std::process::ExitCode;

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use skr8tr_ingress::static_files::ServeArgs;

fn main() -> ExitCode {
    skr8tr_daemon::start("skr8tr_serve", run)
}

fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.into_config().context("bad flags")?;
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let handle =
        skr8tr_ingress::static_files::start(config).context("cannot start the file server")?;
    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, "stopping");
    }
    handle.stop();
    Ok(())
}
