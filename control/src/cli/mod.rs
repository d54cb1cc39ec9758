//! The `skr8tr` operator CLI: its commands and dispatch to one module per command family. The
//! `skr8tr` binary (crate `skr8tr-bundle`) parses the command line, adding `dev`, and hands the
//! operator's commands to [`run`].
//!
//! ```text
//! check, keygen, sign, verify       no daemon            check.rs, keys.rs
//! up, down, scale                   Conductor, signed    cluster.rs
//! rollout                           Conductor, signed    rollout.rs
//! plan, rollback, promote           Conductor, signed    generations.rs
//! history                           Conductor, read-only generations.rs
//! status, nodes, list, lookup, ping read-only            inspect.rs
//! events                            Conductor, read-only events.rs
//! routes                            Tower, read-only     routes.rs
//! logs, exec                        Conductor, signed    workload.rs
//! ```
//! Shared pieces: the global options (global.rs), the request/reply door to the daemons
//! (remote.rs), aligned tables (table.rs) and where output and failures go (output.rs).
//!
//! Each command returns the process exit code it wants. The key-tool and `check` commands
//! return their errors to `main`, which prints them on one line; a daemon-facing command's
//! error is reported here, in one place ([`output::failure`]): `skr8tr: <command>: <error>`
//! on stderr (and a JSON error object with `--json`), exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use skr8tr_proto::name::{AppName, ReplicaId, ServiceName};

pub mod check;
pub mod cluster;
pub mod events;
pub mod generations;
pub mod global;
pub mod inspect;
pub mod keys;
pub mod output;
pub mod remote;
pub mod rollout;
pub mod routes;
pub mod table;
pub mod workload;

pub use global::GlobalArgs;

/// The operator's commands: everything the `skr8tr` binary does but `dev`.
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
    /// Run the apps of manifests: validate each file locally, then submit it to the conductor.
    Up {
        /// Manifest files (`.skr8tr`); nothing is sent unless all are valid.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Stop every replica of an app and forget it.
    Down {
        /// The app's name.
        app: AppName,
    },
    /// Set the number of replicas of an app.
    Scale {
        /// The app's name.
        app: AppName,
        /// Replicas wanted (0–10000).
        #[arg(value_parser = clap::value_parser!(u32).range(0..=10_000))]
        replicas: u32,
    },
    /// Roll an app to a new manifest, one replica at a time, and follow it to the end.
    ///
    /// Exit code 0 when complete, 1 when reverted or failed, 2 when still running at
    /// --wait-timeout-s (the rollout goes on).
    Rollout {
        /// A manifest with exactly one app.
        file: PathBuf,
        /// Return once the rollout has started instead of following it.
        #[arg(long)]
        detach: bool,
        /// How long to follow the rollout before giving up waiting.
        #[arg(
            long,
            value_name = "SECONDS",
            default_value_t = 300,
            value_parser = clap::value_parser!(u64).range(1..)
        )]
        wait_timeout_s: u64,
    },
    /// Show what `up` of the manifests would change (replicas, generation, exec, args, env and
    /// secret keys, routes…), changing nothing. Exit 0: no change, 1: changes, 2: an error.
    Plan {
        /// Manifest files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List an app's stored generations (the running one marked `*`).
    History {
        /// The app's name.
        app: AppName,
    },
    /// Go back: drop a running rollout or canary (the previous generation is restored), or
    /// roll to the spec of generation GEN (default: the one before the running one) through a
    /// normal, health-gated rollout, and follow it.
    Rollback {
        /// The app's name.
        app: AppName,
        /// The generation whose spec to roll to (see `skr8tr history`).
        generation: Option<u64>,
        /// Return once the rollback has started instead of following it.
        #[arg(long)]
        detach: bool,
        /// How long to follow it before giving up waiting.
        #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
        wait_timeout_s: u64,
    },
    /// Let a rollout waiting at its canaries (`rollout { canary N }`) go on, and follow it.
    Promote {
        /// The app's name.
        app: AppName,
        /// Return at once instead of following the rollout.
        #[arg(long)]
        detach: bool,
        /// How long to follow it before giving up waiting.
        #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
        wait_timeout_s: u64,
    },
    /// Show every app and its replicas (or one app's).
    Status {
        /// Only this app.
        app: Option<AppName>,
    },
    /// Show the live nodes and their load.
    Nodes,
    /// Show where replicas run (app, node, pid).
    List,
    /// Print an app's newest output lines.
    Logs {
        /// The app's name.
        app: AppName,
        /// A replica id (default: the app's first replica).
        #[arg(long)]
        replica: Option<ReplicaId>,
        /// Keep printing new lines as they come (every 500 ms) until interrupted.
        #[arg(short, long)]
        follow: bool,
    },
    /// Run a command beside one of an app's replicas (through `sh -c`, with its environment);
    /// exits with the command's exit code.
    Exec {
        /// The app's name.
        app: AppName,
        /// The command and its arguments, after `--` when they start with `-`.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Show what happened: placements, launches, exits with code or signal, health changes,
    /// rollout steps, node joins and losses, each with its time and reason (oldest first).
    Events {
        /// Keep printing new events as they happen (every 500 ms) until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Only this app's events.
        #[arg(long)]
        app: Option<AppName>,
    },
    /// Ask the Tower for one backend of a service.
    Lookup {
        /// The service (app) name.
        service: ServiceName,
    },
    /// Show a live route table with each route's source: the routes apps publish (the
    /// Tower's), or with `--ingress` one ingress's table in force (`flag`, `file`, `app:<name>`)
    /// and the app routes it leaves out.
    Routes {
        /// An ingress's admin listener (`HOST[:PORT]`, default port 9180).
        #[arg(long)]
        ingress: Option<String>,
    },
    /// Check that the conductor and the tower answer, with their round-trip times.
    Ping,
}

impl Command {
    /// The command's name as typed (for error messages).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Check { .. } => "check",
            Self::Keygen { .. } => "keygen",
            Self::Sign { .. } => "sign",
            Self::Verify { .. } => "verify",
            Self::Up { .. } => "up",
            Self::Down { .. } => "down",
            Self::Scale { .. } => "scale",
            Self::Rollout { .. } => "rollout",
            Self::Plan { .. } => "plan",
            Self::History { .. } => "history",
            Self::Rollback { .. } => "rollback",
            Self::Promote { .. } => "promote",
            Self::Status { .. } => "status",
            Self::Nodes => "nodes",
            Self::List => "list",
            Self::Logs { .. } => "logs",
            Self::Exec { .. } => "exec",
            Self::Events { .. } => "events",
            Self::Lookup { .. } => "lookup",
            Self::Routes { .. } => "routes",
            Self::Ping => "ping",
        }
    }
}

/// Runs one operator command with the global options.
///
/// # Errors
/// Whatever stopped a key-tool or `check` command; `main` prints it on one line and exits 1. A
/// daemon-facing command reports its own failure ([`output::failure`]) and returns exit code 1.
pub fn run(g: &GlobalArgs, command: &Command) -> anyhow::Result<ExitCode> {
    let name = command.name();
    let result = match command {
        Command::Check {
            files,
            show_secrets,
        } => return check::run(files, *show_secrets),
        Command::Keygen { mesh, out, force } => {
            return keys::keygen(*mesh, out.as_deref(), *force);
        }
        Command::Sign {
            secret_key,
            command,
        } => return keys::sign(secret_key, command),
        Command::Verify { public_key, signed } => return keys::verify(public_key, signed),
        Command::Up { files } => cluster::run_up(g, files),
        Command::Down { app } => cluster::run_down(g, app),
        Command::Scale { app, replicas } => cluster::run_scale(g, app, *replicas),
        Command::Rollout {
            file,
            detach,
            wait_timeout_s,
        } => rollout::run(g, file, *detach, *wait_timeout_s),
        Command::Plan { files } => return generations::run_plan(g, files),
        Command::History { app } => generations::run_history(g, app),
        Command::Rollback {
            app,
            generation,
            detach,
            wait_timeout_s,
        } => generations::run_rollback(g, app, *generation, *detach, *wait_timeout_s),
        Command::Promote {
            app,
            detach,
            wait_timeout_s,
        } => generations::run_promote(g, app, *detach, *wait_timeout_s),
        Command::Status { app } => inspect::run_status(g, app.as_ref()),
        Command::Nodes => inspect::run_nodes(g),
        Command::List => inspect::run_list(g),
        Command::Logs {
            app,
            replica,
            follow,
        } => workload::run_logs(g, app, replica.as_ref(), *follow),
        Command::Exec { app, command } => workload::run_exec(g, app, command),
        Command::Events { follow, app } => events::run(g, *follow, app.as_ref()),
        Command::Lookup { service } => inspect::run_lookup(g, service),
        Command::Routes { ingress } => routes::run(g, ingress.as_deref()),
        Command::Ping => inspect::run_ping(g),
    };
    Ok(result.unwrap_or_else(|err| output::failure(name, &err, g.json)))
}

#[cfg(test)]
mod tests;
