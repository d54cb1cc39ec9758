//! Shell completions and man pages (SPEC §7.4), generated from the same clap definitions the
//! binaries parse with, so they cannot drift from the flags: `skr8tr completions SHELL`
//! (clap_complete) and `skr8tr man [BINARY]` (clap_mangen, roff on stdout: `skr8tr man
//! skr8tr_node | man -l -`, or `> skr8tr_node.1` for a package).
//!
//! Every daemon's command line is a `clap::Parser` in its library crate (`TowerArgs`,
//! `ConductorArgs`, `NodeArgs`, `ServerArgs`, `IngressArgs`, `ServeArgs`), which is why this
//! binary can print their pages; this module only renders them.

use std::io::Write;

use clap::{CommandFactory as _, ValueEnum};

/// The binaries skr8tr ships, each with its man page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Binary {
    /// The operator CLI.
    #[value(name = "skr8tr")]
    Skr8tr,
    /// The Tower.
    #[value(name = "skr8tr_reg")]
    Reg,
    /// The Conductor.
    #[value(name = "skr8tr_sched")]
    Sched,
    /// The node agent.
    #[value(name = "skr8tr_node")]
    Node,
    /// Tower, Conductor and node agent in one process.
    #[value(name = "skr8tr_server")]
    Server,
    /// The edge proxy.
    #[value(name = "skr8tr_ingress")]
    Ingress,
    /// The static file server.
    #[value(name = "skr8tr_serve")]
    Serve,
}

impl Binary {
    /// The binary's command line, as it parses it.
    #[must_use]
    pub fn command(self) -> clap::Command {
        match self {
            Self::Skr8tr => crate::cli::Cli::command(),
            Self::Reg => skr8tr_control::options::TowerArgs::command(),
            Self::Sched => skr8tr_control::options::ConductorArgs::command(),
            Self::Node => skr8tr_node::agent::NodeArgs::command(),
            Self::Server => crate::plane::ServerArgs::command(),
            Self::Ingress => skr8tr_ingress::IngressArgs::command(),
            Self::Serve => skr8tr_ingress::static_files::ServeArgs::command(),
        }
    }
}

/// Writes `binary`'s man page (section 1, roff) to `out`.
///
/// # Errors
/// Writing to `out` failed.
pub fn man(binary: Binary, out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(binary.command()).render(out)
}

/// Writes the `skr8tr` CLI's completion script for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut crate::cli::Cli::command(), "skr8tr", out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binary_has_a_page_under_its_own_name_listing_its_flags() {
        let flags = [
            (Binary::Skr8tr, "completions"),
            (Binary::Reg, "mesh\\-key"),
            (Binary::Sched, "heartbeat\\-listen"),
            (Binary::Node, "stop\\-workloads\\-on\\-exit"),
            (Binary::Server, "node\\-listen"),
            (Binary::Ingress, "routes\\-file"),
            (Binary::Serve, "listen"),
        ];
        assert_eq!(flags.len(), Binary::value_variants().len());
        for (binary, flag) in flags {
            let mut page = Vec::new();
            man(binary, &mut page).expect("render");
            let page = String::from_utf8(page).expect("utf-8");
            let name = binary
                .to_possible_value()
                .expect("a name")
                .get_name()
                .to_owned();
            assert_eq!(binary.command().get_name(), name);
            assert!(
                page.contains(&format!("\n.TH {name} 1 ")),
                "{name}: no title line"
            );
            assert!(page.contains(flag), "{name} page lacks {flag}");
        }
    }

    #[test]
    fn completions_know_the_commands_in_every_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            completions(shell, &mut script);
            let script = String::from_utf8(script).expect("utf-8");
            for word in ["rollout", "keygen", "completions", "--conductor"] {
                assert!(script.contains(word), "{shell:?} lacks {word}");
            }
        }
    }
}
