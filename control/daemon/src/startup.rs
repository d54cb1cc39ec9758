//! What every daemon binary's `main` shares (`skr8tr_reg`, `skr8tr_sched`, `skr8tr_node`,
//! `skr8tr_server`): the key flags and their loading, logging set-up, the shutdown signal and
//! the exit report.
//!
//! ```text
//! start(binary, main): init_logging ─▶ Args::parse ─▶ main(args) ─▶ exit status (error on stderr)
//!   main: args.keys.load() ─▶ AuthConfig ─▶ bind_policy(roles) ─▶ listen_addr … ─▶ run(daemon)
//!           daemon: serve(…) until shutdown_requested()
//! ```
//! What a daemon listens on and serves is its binary's business; this module decides nothing
//! about addresses (see [`crate::listen_addr`]) and reads no file but the keys.

use std::path::PathBuf;
use std::process::ExitCode;

use skr8tr_proto::auth::{AuthConfig, AuthConfigError};

/// The key flags of a daemon that verifies only mesh signatures (the Tower, the node agent).
#[derive(Debug, Clone, clap::Args)]
pub struct MeshKeyArgs {
    /// The mesh secret key (its public half beside it); without keys the daemon runs in dev
    /// mode on loopback only.
    #[arg(long, value_name = "FILE")]
    pub mesh_key: Option<PathBuf>,
    /// Listen on non-loopback addresses without authentication.
    #[arg(long)]
    pub insecure: bool,
}

/// The key flags of a daemon that also takes operator commands (the Conductor,
/// `skr8tr_server`).
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// An operator's public key (repeatable: several operators).
    #[arg(long = "pubkey", value_name = "FILE")]
    pub pubkeys: Vec<PathBuf>,
    #[command(flatten)]
    pub mesh: MeshKeyArgs,
}

/// The keys named by the flags could not be used.
#[derive(Debug, thiserror::Error)]
#[error("loading keys")]
pub struct KeysError(#[source] pub AuthConfigError);

impl MeshKeyArgs {
    /// Loads the mesh key, if one was given.
    ///
    /// # Errors
    /// [`KeysError`] naming the file and what is wrong with it.
    pub fn load(&self) -> Result<AuthConfig, KeysError> {
        AuthConfig::load(&[] as &[PathBuf], self.mesh_key.as_deref(), self.insecure)
            .map_err(KeysError)
    }
}

impl KeyArgs {
    /// Loads the operator keys and the mesh key given.
    ///
    /// # Errors
    /// [`KeysError`] naming the file and what is wrong with it.
    pub fn load(&self) -> Result<AuthConfig, KeysError> {
        AuthConfig::load(
            &self.pubkeys,
            self.mesh.mesh_key.as_deref(),
            self.mesh.insecure,
        )
        .map_err(KeysError)
    }
}

/// A daemon binary's `main`: sets up logging, parses the arguments `A`, runs `main` with them,
/// and turns its result into the exit status, an error reported in one line on stderr (with
/// its causes, `{:#}`) prefixed by `binary`.
pub fn start<A, E>(binary: &str, main: impl FnOnce(A) -> Result<(), E>) -> ExitCode
where
    A: clap::Parser,
    E: std::fmt::Display,
{
    crate::init_logging();
    match main(A::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{binary}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves when the daemon is asked to stop (SIGTERM or SIGINT), logs it and tells the service
/// manager (`STOPPING=1`, [`crate::supervisor`]). When the signal
/// handlers cannot be installed that is logged and it never resolves: the daemon runs until
/// killed.
#[cfg(feature = "runtime")]
pub async fn shutdown_requested() {
    match shutdown_signal().await {
        Ok(sig) => {
            tracing::info!(signal = sig, "shutting down");
            crate::supervisor::stopping();
        }
        Err(e) => {
            tracing::error!(error = %e, "no signal handler; running until killed");
            std::future::pending::<()>().await;
        }
    }
}

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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Tower {
        #[command(flatten)]
        keys: MeshKeyArgs,
    }

    #[derive(Debug, Parser)]
    struct Conductor {
        #[command(flatten)]
        keys: KeyArgs,
    }

    #[test]
    fn the_key_flags_parse_and_load() {
        let tower = Tower::try_parse_from(["t", "--insecure"]).unwrap();
        assert!(tower.keys.mesh_key.is_none() && tower.keys.insecure);
        assert!(tower.keys.load().unwrap().insecure());
        assert!(
            Tower::try_parse_from(["t", "--pubkey", "op.pub"]).is_err(),
            "the Tower takes no operator keys"
        );
        let conductor =
            Conductor::try_parse_from(["c", "--pubkey", "a.pub", "--pubkey", "b.pub"]).unwrap();
        assert_eq!(conductor.keys.pubkeys.len(), 2);
        assert!(!conductor.keys.mesh.insecure);
        let missing = Conductor::try_parse_from(["c", "--mesh-key", "/nonexistent/mesh.sec"])
            .unwrap()
            .keys
            .load()
            .unwrap_err();
        assert_eq!(missing.to_string(), "loading keys");
        assert!(std::error::Error::source(&missing).is_some());
    }
}
