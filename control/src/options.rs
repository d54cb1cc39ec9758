//! The Tower's and the Conductor's own flags, shared by their daemons (`skr8tr_reg`,
//! `skr8tr_sched`) and `skr8tr_server`, which runs both: parsed by clap, checked, and applied
//! to a [`TowerConfig`] or [`ConductorConfig`]. Listen addresses and keys are each binary's
//! business; the node agent's flags are `skr8tr_node::agent::AgentOptions`. The two daemons'
//! whole command lines ([`TowerArgs`], [`ConductorArgs`]) are here too, so that `skr8tr man`
//! can print their man pages; the binaries only parse and run them.

use std::path::PathBuf;
use std::time::Duration;

use skr8tr_daemon::{KeyArgs, MeshKeyArgs};

use crate::conductor::server::ConductorConfig;
use crate::tower::server::TowerConfig;

/// A flag below its minimum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} must be at least {min}")]
pub struct OptionsError {
    pub flag: &'static str,
    pub min: u64,
}

fn at_least(flag: &'static str, value: u64, min: u64) -> Result<u64, OptionsError> {
    if value < min {
        Err(OptionsError { flag, min })
    } else {
        Ok(value)
    }
}

/// The Tower's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TowerOptions {
    /// Seconds a registration lives without a refresh.
    #[arg(long, default_value_t = 30)]
    pub ttl: u64,
}

impl TowerOptions {
    /// # Errors
    /// `--ttl` of 0.
    pub fn apply(&self, config: &mut TowerConfig) -> Result<(), OptionsError> {
        config.default_ttl = Duration::from_secs(at_least("--ttl", self.ttl, 1)?);
        Ok(())
    }
}

/// The Conductor's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ConductorOptions {
    /// A node silent this long is lost and its replicas are placed elsewhere.
    #[arg(long, default_value_t = 5000)]
    pub node_expiry_ms: u64,
    /// How long an EXEC may run.
    #[arg(long, default_value_t = 10_000)]
    pub exec_timeout_ms: u64,
}

impl ConductorOptions {
    /// # Errors
    /// `--node-expiry-ms` below 500 or `--exec-timeout-ms` of 0.
    pub fn apply(&self, config: &mut ConductorConfig) -> Result<(), OptionsError> {
        config.timings.node_expiry =
            Duration::from_millis(at_least("--node-expiry-ms", self.node_expiry_ms, 500)?);
        config.exec_timeout =
            Duration::from_millis(at_least("--exec-timeout-ms", self.exec_timeout_ms, 1)?);
        Ok(())
    }
}

/// The Conductor's default admin port (`/metrics`, `/healthz`, the status page).
pub const CONDUCTOR_ADMIN_PORT: u16 = 9181;
/// The Tower's default admin port (`/metrics`, `/healthz`).
pub const TOWER_ADMIN_PORT: u16 = 9182;

/// The skr8tr Tower: service registry with TTLs, round-robin LOOKUP and WATCH pushes.
#[derive(Debug, clap::Parser)]
#[command(name = "skr8tr_reg", version)]
pub struct TowerArgs {
    /// UDP address to listen on (`[HOST][:PORT]`, IPv4 or IPv6).
    #[arg(long, default_value = "0.0.0.0:7772")]
    pub listen: String,
    /// TCP address of the admin listener (`/metrics`, `/healthz`; read-only), or `off`.
    #[arg(long, default_value = "127.0.0.1:9182")]
    pub admin: String,
    #[command(flatten)]
    pub keys: MeshKeyArgs,
    #[command(flatten)]
    pub tower: TowerOptions,
}

/// The skr8tr Conductor: places replicas on nodes and keeps them running.
#[derive(Debug, clap::Parser)]
#[command(name = "skr8tr_sched", version)]
pub struct ConductorArgs {
    /// UDP address for operator commands (`[HOST][:PORT]`, IPv4 or IPv6).
    #[arg(long, default_value = "0.0.0.0:7771")]
    pub listen: String,
    /// UDP address for node heartbeats.
    #[arg(long, default_value = "0.0.0.0:7770")]
    pub heartbeat_listen: String,
    /// TCP address of the admin listener (`/metrics`, `/healthz`, the live status page at `/`;
    /// read-only), or `off`.
    #[arg(long, default_value = "127.0.0.1:9181")]
    pub admin: String,
    /// Where the durable state lives (created 0700).
    #[arg(long, default_value = "/var/lib/skr8tr/conductor")]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The Tower (`HOST[:PORT]`), asked during rollouts whether the edge routes to the new
    /// replicas before an old one is stopped.
    #[arg(long, default_value = "127.0.0.1:7772")]
    pub tower: String,
    #[command(flatten)]
    pub conductor: ConductorOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_land_in_the_configs_and_minimums_are_named() {
        let mut tower = TowerConfig::dev();
        TowerOptions { ttl: 7 }.apply(&mut tower).unwrap();
        assert_eq!(tower.default_ttl, Duration::from_secs(7));
        assert_eq!(
            TowerOptions { ttl: 0 }
                .apply(&mut tower)
                .unwrap_err()
                .to_string(),
            "--ttl must be at least 1"
        );

        let mut conductor = ConductorConfig::dev("/nonexistent");
        let opts = |node_expiry_ms, exec_timeout_ms| ConductorOptions {
            node_expiry_ms,
            exec_timeout_ms,
        };
        opts(800, 50).apply(&mut conductor).unwrap();
        assert_eq!(conductor.timings.node_expiry, Duration::from_millis(800));
        assert_eq!(conductor.exec_timeout, Duration::from_millis(50));
        let err = opts(499, 50).apply(&mut conductor).unwrap_err();
        assert_eq!(err.flag, "--node-expiry-ms");
        let err = opts(500, 0).apply(&mut conductor).unwrap_err();
        assert_eq!(err.to_string(), "--exec-timeout-ms must be at least 1");
    }
}
