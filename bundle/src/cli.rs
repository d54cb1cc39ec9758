//! The `skr8tr` command line: the global options, the operator's commands
//! ([`skr8tr_control::cli::Command`], run by [`skr8tr_control::cli::run`]) and the two commands
//! that need the whole mesh in this binary: `dev` ([`crate::dev`]), `completions` and `man`
//! (every binary's page: [`crate::manual`]), and the hidden
//! `example-service` that `dev` deploys (this very binary, so that `skr8tr dev` needs nothing
//! else on disk).
//!
//! It owns parsing and dispatch only; what each command does lives with the command.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use skr8tr_control::cli::{self as operator, GlobalArgs};

use crate::dev::{self, DevOptions};
use crate::manual;

/// skr8tr: run your own services on your own machines.
#[derive(Debug, Parser)]
#[command(name = "skr8tr", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Operator(operator::Command),
    /// Run a whole mesh in this process (Tower, Conductor, a node) and deploy the manifests
    /// (default: the bundled example service); Ctrl-C stops everything it started.
    Dev {
        /// Manifest files to deploy (default: the bundled example service).
        files: Vec<PathBuf>,
        /// The Tower's UDP port.
        #[arg(long, default_value_t = 7772)]
        tower_port: u16,
        /// The Conductor's UDP command port (its heartbeat port is the next one down).
        #[arg(long, default_value_t = 7771)]
        conductor_port: u16,
        /// The node agent's UDP port.
        #[arg(long, default_value_t = 7775)]
        node_port: u16,
        /// The ingress's HTTP port.
        #[arg(long, default_value_t = 8080)]
        ingress_port: u16,
        /// Seconds to wait for every replica to become healthy.
        #[arg(long, default_value_t = 30)]
        ready_timeout_s: u64,
        /// Stop again as soon as everything is deployed and healthy (for scripts and tests).
        #[arg(long)]
        exit_when_ready: bool,
    },
    /// Print the shell completion script (e.g. `skr8tr completions bash >
    /// /etc/bash_completion.d/skr8tr`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a man page in roff (`skr8tr man skr8tr_node | man -l -`).
    Man {
        /// The binary whose page to print.
        #[arg(default_value = "skr8tr")]
        binary: manual::Binary,
    },
    /// The example HTTP service that `skr8tr dev` deploys (answers with its replica id).
    #[command(hide = true)]
    ExampleService {
        /// Arguments of the service (`--port N`; default from `PORT`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
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
        Command::Operator(command) => operator::run(&cli.global, &command),
        Command::Dev {
            files,
            tower_port,
            conductor_port,
            node_port,
            ingress_port,
            ready_timeout_s,
            exit_when_ready,
        } => dev::run(DevOptions {
            files,
            tower_port,
            conductor_port,
            heartbeat_port: conductor_port.saturating_sub(1),
            node_port,
            ingress_port,
            ready_timeout: Duration::from_secs(ready_timeout_s),
            exit_when_ready,
        }),
        Command::Completions { shell } => {
            manual::completions(shell, &mut std::io::stdout().lock());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { binary } => {
            manual::man(binary, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ExampleService { args } => {
            skr8tr_example_service::main_with_args(args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("skr8tr").chain(args.iter().copied()))
    }

    #[test]
    fn dev_takes_files_and_ports() {
        let cli = parse(&[
            "dev",
            "a.skr8tr",
            "--ingress-port",
            "9000",
            "--exit-when-ready",
        ])
        .expect("valid");
        match cli.command {
            Command::Dev {
                files,
                ingress_port,
                exit_when_ready,
                conductor_port,
                ..
            } => {
                assert_eq!(files, vec![PathBuf::from("a.skr8tr")]);
                assert_eq!((ingress_port, conductor_port), (9000, 7771));
                assert!(exit_when_ready);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn operator_commands_and_global_options_pass_through() {
        let cli = parse(&["--json", "status", "api", "--conductor", "10.0.0.5:9"]).expect("valid");
        assert!(cli.global.json);
        assert_eq!(cli.global.conductor, "10.0.0.5:9");
        assert!(matches!(
            cli.command,
            Command::Operator(operator::Command::Status { app: Some(ref a) }) if a.as_str() == "api"
        ));
    }

    #[test]
    fn example_service_takes_its_own_flags() {
        let cli = parse(&["example-service", "--port", "7"]).expect("valid");
        assert!(
            matches!(cli.command, Command::ExampleService { ref args } if args == &["--port", "7"])
        );
    }

    #[test]
    fn completions_and_man_take_a_shell_and_a_binary() {
        let cli = parse(&["completions", "zsh"]).expect("valid");
        assert!(matches!(
            cli.command,
            Command::Completions {
                shell: clap_complete::Shell::Zsh
            }
        ));
        let cli = parse(&["man", "skr8tr_node"]).expect("valid");
        assert!(matches!(
            cli.command,
            Command::Man {
                binary: manual::Binary::Node
            }
        ));
        let cli = parse(&["man"]).expect("valid");
        assert!(matches!(
            cli.command,
            Command::Man {
                binary: manual::Binary::Skr8tr
            }
        ));
        assert!(parse(&["man", "skr8tr_nope"]).is_err());
        assert!(parse(&["completions", "tcsh"]).is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
