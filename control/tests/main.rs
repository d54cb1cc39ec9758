//! The `skr8tr` CLI's integration tests: each module runs the built binary
//! (`CARGO_BIN_EXE_skr8tr`) in a temporary directory and checks its output, exit code and files.

mod check;
mod keys;
