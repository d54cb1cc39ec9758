//! `EXEC`: one shell command run with a replica's environment, its combined output captured
//! (capped at [`MAX_OUTPUT`]) and the whole command killed at a timeout.
//!
//! The command runs as `sh -c CMD` in its own process group, set up like every workload
//! process (`spawn::shell_command`), with stdout and stderr on one pipe so their
//! order is kept. Output past the cap is read and dropped, so a chatty command
//! never blocks on a full pipe. This module does not choose the replica or check authorisation
//! (the daemon glue does both).

use std::ffi::OsString;
use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::process::{kill_group_leftovers, termination_of};
use crate::spawn;
use crate::supervise::Termination;

/// Most output bytes kept.
pub const MAX_OUTPUT: usize = 32 * 1024;

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code; `None` when it was killed by a signal (or at the timeout).
    pub exit_code: Option<i32>,
    pub termination: Termination,
    /// stdout and stderr interleaved, lossily decoded, at most [`MAX_OUTPUT`] bytes.
    pub output: String,
    /// More output than [`MAX_OUTPUT`] was produced.
    pub truncated: bool,
    /// The timeout passed and the command's process group was killed.
    pub timed_out: bool,
}

/// Why a command could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot create the output pipe")]
    Pipe(#[source] io::Error),
    #[error("cannot start sh")]
    Spawn(#[source] io::Error),
}

/// Runs `sh -c command` with exactly `env`, for at most `timeout`.
///
/// # Errors
/// [`ExecError`] when the pipe or the shell cannot be created; everything after that
/// (non-zero exit, timeout) is reported in the [`ExecOutput`].
///
/// # Cancel safety
/// Not cancel safe: a dropped future leaves the command running to completion on its own.
pub async fn run(
    env: &[(String, OsString)],
    command: &str,
    timeout: Duration,
) -> Result<ExecOutput, ExecError> {
    let (reader, writer) = io::pipe().map_err(ExecError::Pipe)?;
    let writer2 = writer.try_clone().map_err(ExecError::Pipe)?;
    let mut child = spawn::shell_command(command, env, writer, writer2)
        .spawn()
        .map_err(ExecError::Spawn)?;
    // The command (holding our copies of the write end) is dropped with this statement, so
    // EOF comes when the command's side closes.
    let pgid = child.id();
    let mut reader =
        tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into()).map_err(ExecError::Pipe)?;

    let mut output = Vec::new();
    let mut truncated = false;
    let collect = async {
        let mut chunk = [0u8; 8192];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = MAX_OUTPUT - output.len();
                    if n > room {
                        truncated = true;
                    }
                    output.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
    };
    let finished = tokio::time::timeout(timeout, async {
        let (status, ()) = tokio::join!(child.wait(), collect);
        status
    })
    .await;
    let (termination, timed_out) = match finished {
        Ok(Ok(status)) => (termination_of(status), false),
        Ok(Err(_)) => (Termination::Unknown, false),
        Err(_) => {
            if let Some(pgid) = pgid {
                kill_group_leftovers(pgid);
            }
            let t = child
                .wait()
                .await
                .map_or(Termination::Unknown, termination_of);
            (t, true)
        }
    };
    if let Some(pgid) = pgid {
        // Background jobs the command left behind do not outlive it.
        kill_group_leftovers(pgid);
    }
    let exit_code = match termination {
        Termination::Code(c) if !timed_out => Some(c),
        _ => None,
    };
    Ok(ExecOutput {
        exit_code,
        termination,
        output: String::from_utf8_lossy(&output).into_owned(),
        truncated,
        timed_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, OsString)> {
        vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("GREETING".into(), "hello".into()),
        ]
    }

    #[tokio::test]
    async fn output_exit_code_and_environment() {
        let out = run(
            &env(),
            "echo $GREETING; echo err >&2; exit 3",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.output, "hello\nerr\n");
        assert!(!out.truncated && !out.timed_out);
    }

    #[tokio::test]
    async fn output_is_capped() {
        let out = run(
            &env(),
            "head -c 100000 /dev/zero | tr '\\0' x",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code, Some(0));
        assert_eq!(out.output.len(), MAX_OUTPUT);
        assert!(out.truncated);
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_command() {
        let start = std::time::Instant::now();
        let out = run(
            &env(),
            "echo started; sleep 30 & sleep 30; echo never",
            Duration::from_millis(300),
        )
        .await
        .unwrap();
        assert!(out.timed_out);
        assert_eq!(out.exit_code, None);
        assert_eq!(out.termination, Termination::Signal(9));
        assert_eq!(out.output, "started\n");
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
