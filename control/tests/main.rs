//! The control crate's integration tests: the `skr8tr` CLI run as a binary
//! (`CARGO_BIN_EXE_skr8tr`) in temporary directories, and the Tower and Conductor daemons
//! started in-process on loopback ephemeral ports (`util`).

// Test code may panic on anything unexpected: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod check;
mod cli_daemons;
mod conductor;
mod dev;
mod keys;
mod mesh;
mod server;
mod tower;
mod util;
