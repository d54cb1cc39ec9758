//! The `skr8tr` operator CLI: flag parsing and dispatch to one module per command family.
//!
//! Each command returns the process exit code it wants; errors that stop a command are
//! returned as `anyhow::Error` and printed by `main` on one line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;
pub mod keys;

/// skr8tr: run your own services on your own machines.
#[derive(Debug, Parser)]
#[command(name = "skr8tr", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate manifests without a cluster and print their normalised form.
    Check {
        /// Manifest files (`.skr8tr`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print secret values instead of `<redacted>`.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Generate an ML-DSA-65 key pair (operator key, or with --mesh the cluster's mesh key).
    Keygen {
        /// Generate the mesh key shared by the daemons of a cluster (`mesh.sec` / `mesh.pub`).
        #[arg(long)]
        mesh: bool,
        /// Directory to write both halves to (default: secret in ~/.skr8tr/, operator public key
        /// in the current directory as skrtrview.pub; mesh keys both in ~/.skr8tr/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Sign a command with a secret key and print the signed wire form `<cmd>|<ts>|<sig>`.
    Sign {
        /// The secret key file (4032 bytes).
        secret_key: PathBuf,
        /// The bare command, e.g. `EVICT|api-server`.
        command: String,
    },
    /// Verify a signed command against a public key: `VALID — bare command: …` or `INVALID: …`.
    Verify {
        /// The public key file (1952 bytes).
        public_key: PathBuf,
        /// The signed command `<cmd>|<ts>|<hex sig>`.
        signed: String,
    },
}

/// Parses `args` and runs the command.
///
/// # Errors
/// Whatever stopped the command; `main` prints it on one line and exits 1.
pub fn run<I, T>(args: I) -> anyhow::Result<ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Check {
            files,
            show_secrets,
        } => check::run(&files, show_secrets),
        Command::Keygen { mesh, out, force } => keys::keygen(mesh, out.as_deref(), force),
        Command::Sign {
            secret_key,
            command,
        } => keys::sign(&secret_key, &command),
        Command::Verify { public_key, signed } => keys::verify(&public_key, &signed),
    }
}
