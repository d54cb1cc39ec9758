//! The daemon-facing `skr8tr` commands run as a binary against fake daemons: a thread with a
//! UDP socket on 127.0.0.1:0 that records every datagram and answers from a script
//! ([`fake::Fake`]). Each test checks what the CLI sent (signed or not, exact text), what it
//! printed, and its exit code.
//!
//! The CLI runs with `HOME` set to an empty temporary directory (so no operator key is picked
//! up by default) and without the `SKR8TR_*` variables, unless a test sets them.

mod cluster;
mod fake;
mod inspect;
mod workload;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use skr8tr_proto::auth::{SigningKey, VerifyingKey};

/// A `skr8tr` command with a clean environment, run in (and with `HOME` at) `home`.
pub fn skr8tr(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skr8tr"));
    cmd.args(args)
        .current_dir(home)
        .env("HOME", home)
        .env_remove("SKR8TR_CONDUCTOR")
        .env_remove("SKR8TR_TOWER");
    cmd
}

/// Runs `skr8tr ARGS…` to completion.
pub fn run(home: &Path, args: &[&str]) -> Output {
    skr8tr(home, args).output().expect("the skr8tr binary runs")
}

/// Starts `skr8tr ARGS…` with stdout and stderr piped (for commands that keep running).
pub fn spawn(home: &Path, args: &[&str]) -> Child {
    skr8tr(home, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the skr8tr binary starts")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// A fresh operator key pair, the secret half saved (mode 0600) as `dir/op.sec`.
pub fn operator_key(dir: &Path) -> (std::path::PathBuf, VerifyingKey) {
    let (secret, public) = SigningKey::generate().expect("a key pair");
    let path = dir.join("op.sec");
    secret.save(&path, false).expect("the key is saved");
    (path, public)
}
