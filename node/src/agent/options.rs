//! The node agent's own flags, shared by `skr8tr_node` and `skr8tr_server` (which runs an agent
//! beside the Tower and the Conductor): parsed by clap, checked and applied to an
//! [`AgentConfig`]. Where the agent listens, which Conductor and Tower it reports to and which
//! keys it holds are each binary's business; `skr8tr_node`'s whole command line ([`NodeArgs`])
//! is here too, so that `skr8tr man` can print its man page.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use skr8tr_daemon::{AddressError, MeshKeyArgs};
use skr8tr_proto::name::{NameError, NodeId};

use super::{AgentConfig, DEFAULT_METRICS_PORT};
use crate::config::VmAccel;

/// The agent's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentOptions {
    /// The address replicas are registered at [default: the local address of the route to
    /// the Tower].
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<String>,
    /// TCP address of the Prometheus endpoint (`GET /metrics`), or `off`.
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub metrics: String,
    /// Use this node id instead of the one kept in the state directory.
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// Milliseconds between heartbeats to the Conductor.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub heartbeat_ms: u64,
    /// On SIGTERM/SIGINT, stop the workloads instead of leaving them to the next agent.
    #[arg(long)]
    pub stop_workloads_on_exit: bool,
    /// GPUs this node offers to `gpu N` apps [default: the /dev/nvidiaN devices found].
    #[arg(long, value_name = "N")]
    pub gpus: Option<u32>,
    /// How QEMU runs `type vm` guests: KVM when /dev/kvm opens (else TCG), KVM only, or TCG.
    #[arg(long, value_enum, default_value_t = VmAccel::Auto)]
    pub vm_accel: VmAccel,
}

/// A flag the agent cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("--advertise: {0}")]
    Advertise(AddressError),
    #[error("--advertise {0}: give an address the Tower's clients can reach")]
    AdvertiseUnspecified(IpAddr),
    #[error("--node-id: {0}")]
    NodeId(NameError),
    #[error("--heartbeat-ms must be at least 1")]
    Heartbeat,
    #[error("--metrics: {0}")]
    MetricsAddress(AddressError),
    #[error("cannot serve metrics on tcp {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl AgentOptions {
    /// Checks the flags and sets them on `config`; binds the metrics listener unless `off`.
    ///
    /// # Errors
    /// The first flag that is wrong, named.
    pub fn apply(self, config: &mut AgentConfig) -> Result<(), OptionsError> {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        if self.heartbeat_ms == 0 {
            return Err(OptionsError::Heartbeat);
        }
        if let Some(a) = self.advertise.as_deref() {
            let ip = skr8tr_daemon::parse_host_port(a, lo, 0)
                .map_err(OptionsError::Advertise)?
                .ip();
            if ip.is_unspecified() {
                return Err(OptionsError::AdvertiseUnspecified(ip));
            }
            config.advertise = Some(ip);
        }
        if let Some(id) = self.node_id {
            config.node_id = Some(NodeId::new(id).map_err(OptionsError::NodeId)?);
        }
        config.heartbeat = Duration::from_millis(self.heartbeat_ms);
        config.stop_workloads_on_exit = self.stop_workloads_on_exit;
        config.gpus = self.gpus;
        config.engine.vm_accel = self.vm_accel;
        if self.metrics != "off" {
            let addr = skr8tr_daemon::parse_host_port(&self.metrics, lo, DEFAULT_METRICS_PORT)
                .map_err(OptionsError::MetricsAddress)?;
            let listener = std::net::TcpListener::bind(addr)
                .map_err(|source| OptionsError::Metrics { addr, source })?;
            config.metrics = Some(listener);
        }
        Ok(())
    }
}

/// The skr8tr node agent: runs the replicas the Conductor places here.
///
/// On SIGTERM/SIGINT it stops taking requests and leaves the workloads running; the next agent
/// started on the same --state-dir adopts them (an agent upgrade does not restart services).
/// With --stop-workloads-on-exit it stops them instead, each deregistered from the Tower first.
#[derive(Debug, clap::Parser)]
#[command(name = "skr8tr_node", version)]
pub struct NodeArgs {
    /// UDP address of the command socket (`[HOST][:PORT]`, IPv4 or IPv6).
    #[arg(long, default_value = "0.0.0.0:7775")]
    pub listen: String,
    /// The Conductor's heartbeat socket (`HOST[:PORT]`, port 7770 by default).
    #[arg(long, default_value = "127.0.0.1:7770")]
    pub conductor: String,
    /// The Tower (`HOST[:PORT]`, port 7772 by default).
    #[arg(long, default_value = "127.0.0.1:7772")]
    pub tower: String,
    /// Where the node keeps its id, its replicas' records (for adoption) and their logs.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/skr8tr/node")]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub keys: MeshKeyArgs,
    #[command(flatten)]
    pub agent: AgentOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> AgentOptions {
        AgentOptions {
            advertise: None,
            metrics: "off".into(),
            node_id: None,
            heartbeat_ms: 1000,
            stop_workloads_on_exit: false,
            gpus: None,
            vm_accel: VmAccel::Auto,
        }
    }

    #[test]
    fn flags_land_in_the_config() {
        let mut config = AgentConfig::new("/nonexistent");
        AgentOptions {
            advertise: Some("10.0.0.7".into()),
            metrics: "127.0.0.1:0".into(),
            node_id: Some("edge-1".into()),
            heartbeat_ms: 250,
            stop_workloads_on_exit: true,
            gpus: Some(2),
            vm_accel: VmAccel::Tcg,
        }
        .apply(&mut config)
        .unwrap();
        assert_eq!(config.gpus, Some(2));
        assert_eq!(config.engine.vm_accel, VmAccel::Tcg);
        assert_eq!(config.advertise, Some("10.0.0.7".parse().unwrap()));
        assert_eq!(config.node_id.as_ref().map(NodeId::as_str), Some("edge-1"));
        assert_eq!(config.heartbeat, Duration::from_millis(250));
        assert!(config.stop_workloads_on_exit);
        assert!(config.metrics.is_some());
    }

    #[test]
    fn wrong_flags_are_named() {
        let cases: [(AgentOptions, &str); 4] = [
            (
                AgentOptions {
                    heartbeat_ms: 0,
                    ..options()
                },
                "--heartbeat-ms",
            ),
            (
                AgentOptions {
                    advertise: Some("0.0.0.0".into()),
                    ..options()
                },
                "--advertise 0.0.0.0",
            ),
            (
                AgentOptions {
                    node_id: Some("bad|id".into()),
                    ..options()
                },
                "--node-id",
            ),
            (
                AgentOptions {
                    metrics: "host:notaport".into(),
                    ..options()
                },
                "--metrics",
            ),
        ];
        for (opts, flag) in cases {
            let mut config = AgentConfig::new("/nonexistent");
            let err = opts.apply(&mut config).unwrap_err().to_string();
            assert!(err.starts_with(flag), "{err}");
        }
    }
}
