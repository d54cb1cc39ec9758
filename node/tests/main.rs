//! Integration tests of the node engine and the agent daemon: real processes (`/bin/true`,
//! `/bin/false`, `sleep`, `sh -c` scripts), each test on its own state directory and ephemeral
//! ports; the agent tests run the real daemon and the real Tower on loopback, the cluster
//! tests the real Conductor as well.

mod util;

mod adopt;
mod agent;
mod cluster;
mod health;
mod launch;
mod limits;
mod logs_exec;
mod restart;
mod stop;
mod supervised;
mod uring;
