//! The few words of QEMU's monitor protocol (QMP) the node speaks: after the greeting,
//! `qmp_capabilities`, then `system_powerdown`, which presses the guest's ACPI power button so
//! that it shuts down cleanly before it is signalled.
//!
//! Owns the exchange only (one JSON object per line, events interleaved); when to press and
//! what follows is `process::stop_vm`'s.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;

/// The longest the whole exchange may take.
const PATIENCE: Duration = Duration::from_secs(2);

/// Presses the power button of the guest whose QMP socket is `socket`.
///
/// # Errors
/// The socket cannot be reached, QEMU answers with an error, or it takes longer than 2 s.
pub async fn powerdown(socket: &Path) -> io::Result<()> {
    tokio::time::timeout(PATIENCE, exchange(socket))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "QMP did not answer in time"))?
}

async fn exchange(socket: &Path) -> io::Result<()> {
    let stream = UnixStream::connect(socket).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = lines.next_line().await?.unwrap_or_default();
    if !greeting.contains("\"QMP\"") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a QMP greeting",
        ));
    }
    for command in ["qmp_capabilities", "system_powerdown"] {
        write
            .write_all(format!("{{\"execute\":\"{command}\"}}\n").as_bytes())
            .await?;
        answer(&mut lines, command).await?;
    }
    Ok(())
}

/// Reads lines until the reply to `command` (events such as `POWERDOWN` may come first).
async fn answer(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    command: &str,
) -> io::Result<()> {
    loop {
        let Some(line) = lines.next_line().await? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("QMP closed before answering {command}"),
            ));
        };
        if line.contains("\"return\"") {
            return Ok(());
        }
        if line.contains("\"error\"") {
            return Err(io::Error::other(format!("QMP refused {command}: {line}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

    /// A stand-in QEMU: greets, then answers each command, with an event before the second.
    async fn fake_qemu(listener: tokio::net::UnixListener, fail: bool) -> Vec<String> {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        let mut text = String::new();
        while got.len() < 2 {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            while let Some(i) = text.find('\n') {
                let line: String = text.drain(..=i).collect();
                got.push(line.trim().to_owned());
                let reply: &[u8] = match (got.len(), fail) {
                    (2, true) => b"{\"error\": {\"class\": \"GenericError\"}}\r\n",
                    (2, false) => b"{\"event\": \"POWERDOWN\"}\r\n{\"return\": {}}\r\n",
                    _ => b"{\"return\": {}}\r\n",
                };
                s.write_all(reply).await.unwrap();
            }
        }
        got
    }

    #[tokio::test]
    async fn presses_the_power_button_after_the_capabilities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.qmp");
        let server = tokio::spawn(fake_qemu(
            tokio::net::UnixListener::bind(&path).unwrap(),
            false,
        ));
        powerdown(&path).await.unwrap();
        assert_eq!(
            server.await.unwrap(),
            [
                "{\"execute\":\"qmp_capabilities\"}",
                "{\"execute\":\"system_powerdown\"}"
            ]
        );
    }

    #[tokio::test]
    async fn an_error_or_no_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.qmp");
        let server = tokio::spawn(fake_qemu(
            tokio::net::UnixListener::bind(&path).unwrap(),
            true,
        ));
        assert!(powerdown(&path).await.is_err());
        let _ = server.await;
        assert!(powerdown(&dir.path().join("none.qmp")).await.is_err());
    }
}
