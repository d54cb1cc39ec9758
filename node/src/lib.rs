//! The skr8tr node agent: the daemon glue ([`agent`]: command socket, heartbeats, Tower
//! registration, metrics) around the engine that turns an app spec into supervised processes.
//!
//! ```text
//! agent (daemon glue: UDP commands, HEARTBEAT/DIED, REGISTER/DEREGISTER, /metrics)
//!   │ drives
//!   ▼
//! Engine (facade for the daemon glue: launch, kill, status, logs, exec, node_stats, Events)
//!   ├── config    EngineConfig: the engine's settings
//!   ├── replica   one replica: the one start path (first launch and restarts), its view,
//!   │     │       and its task: select! over exit, probes, back-off, logs, commands
//!   │     ├── spawn      App → command plan → build steps → fork+exec (own group, limits)
//!   │     ├── limits     cgroup v2 / cgroup v1 / rlimit, and which one applied
//!   │     ├── supervise  the replica lifecycle state machine and back-off (pure)
//!   │     ├── health     HTTP/TCP probes and their verdicts
//!   │     ├── process    waiting (child or pidfd) and group stop: SIGTERM, drain, SIGKILL
//!   │     └── logs       per-replica log file → ring of the newest 200 lines
//!   ├── records   replica records on disk (app as manifest text; adoption after an agent
//!   │             restart) and the stable node id
//!   ├── stats     node and per-replica CPU% / memory from /proc
//!   ├── exec      `sh -c` in a replica's environment, output capped, timeout
//!   └── sys       the only unsafe code: signals, pidfd, pre-exec setup
//! ```
//! Imports point down this tree: the engine uses `replica`, `replica` never uses the engine.
//! The engine does not speak the UDP protocol, sign, register with the Tower or report to the
//! Conductor: [`agent`] does those, driven by the engine's [`Event`]s. Everything here runs on
//! a current-thread tokio runtime (tokio-uring's included) and starts no thread.

pub mod agent;
mod config;
pub mod engine;
pub mod events;
pub mod exec;
pub mod health;
pub mod limits;
pub mod logs;
pub mod ports;
pub mod process;
mod qmp;
pub mod records;
mod replica;
pub mod spawn;
pub mod stats;
pub mod supervise;
mod sys;

pub use agent::{AgentConfig, AgentError, AgentExit};
pub use engine::{
    Engine, EngineConfig, EngineError, ExecRequestError, KillOutcome, LaunchError, Launched,
    ReplicaStatus, StartReport, VmAccel,
};
pub use events::{Event, Events, StopGate};
pub use exec::ExecOutput;
pub use limits::{AppliedLimits, CgroupMode, LimitEnforcement};
pub use spawn::SpawnError;
pub use stats::NodeStats;
pub use supervise::{BackoffPolicy, Phase, Termination};
