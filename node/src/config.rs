//! The engine's settings ([`EngineConfig`]): where it keeps its files, how fast it probes and
//! reads logs, its restart back-off, how long a stop waits for the glue, which cgroups it
//! uses, and how many ended replicas it remembers. Read by the engine and by every replica
//! task; decides nothing itself.

use std::path::PathBuf;
use std::time::Duration;

use crate::limits::CgroupMode;
use crate::supervise::BackoffPolicy;

/// The engine's settings; [`EngineConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `--state-dir`: replica records, node id, replica logs, relative volumes.
    pub state_dir: PathBuf,
    /// Probe interval until a replica's first passing probe.
    pub fast_probe: Duration,
    /// How often each replica's log file is read into its ring.
    pub log_poll: Duration,
    pub backoff: BackoffPolicy,
    /// Longest wait for the glue to release a `Stopping` event's gate.
    pub stop_gate_timeout: Duration,
    pub cgroups: CgroupMode,
    /// Ended replicas kept for `status` and `logs` (the oldest are forgotten first).
    pub keep_finished: usize,
    /// `--vm-accel`: how QEMU runs guests.
    pub vm_accel: VmAccel,
}

/// How QEMU runs `type vm` guests (`--vm-accel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum VmAccel {
    /// KVM when `/dev/kvm` can be opened, falling back to TCG if KVM fails to start; TCG
    /// without it.
    #[default]
    Auto,
    /// KVM only (a guest that cannot have it does not start).
    Kvm,
    /// TCG, QEMU's emulator: slower, but needs nothing of the host (or of a nested KVM that
    /// misbehaves).
    Tcg,
}

impl EngineConfig {
    #[must_use]
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            fast_probe: Duration::from_millis(10),
            log_poll: Duration::from_millis(100),
            backoff: BackoffPolicy::default(),
            stop_gate_timeout: Duration::from_secs(1),
            cgroups: CgroupMode::Auto,
            keep_finished: 64,
            vm_accel: VmAccel::Auto,
        }
    }
}
