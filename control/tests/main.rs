//! The control crate's integration tests: the Tower and Conductor daemons started in-process
//! on loopback ephemeral ports (`util`). The `skr8tr` CLI run as a binary is tested with it, in
//! `skr8tr-bundle`.

// Test code may panic on anything unexpected: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conductor;
mod logs;
mod routes;
mod supervised;
mod tower;
mod util;
