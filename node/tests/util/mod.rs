//! Helpers of the node integration tests: an engine on a temporary state directory, app
//! builders, an event recorder, and polling with a deadline (never a fixed sleep).

#![allow(dead_code)]
// each test module uses a different subset
// Helpers run only inside tests, where a panic is the failure report (clippy's
// allow-unwrap-in-tests covers `#[test]` functions, not their helpers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skr8tr_node::{Engine, EngineConfig, Event, Events, Termination};
use skr8tr_proto::manifest::{App, RestartPolicy};
use skr8tr_proto::name::{AppName, ReplicaId};
use tempfile::TempDir;

pub mod conductor;
pub mod daemons;

/// Generous upper bound for anything a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn rid(s: &str) -> ReplicaId {
    ReplicaId::new(s).unwrap()
}

/// An app running `exec args…`, with `restart never` unless changed.
pub fn app(name: &str, exec: &str, args: &[&str]) -> App {
    let mut a = App::with_defaults(AppName::new(name).unwrap(), Some(exec.to_owned()));
    a.args = args.iter().map(|s| (*s).to_owned()).collect();
    a.restart = RestartPolicy::Never;
    a.drain = Duration::from_millis(500);
    a
}

/// `sh -c script` as an app.
pub fn sh(name: &str, script: &str) -> App {
    app(name, "/bin/sh", &["-c", script])
}

/// What the recorder keeps of an event (gates are released at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Started {
        replica: String,
        pid: u32,
        adopted: bool,
    },
    Healthy {
        replica: String,
        port: Option<u16>,
    },
    Unhealthy {
        replica: String,
    },
    Stopping {
        replica: String,
    },
    Exited {
        replica: String,
        termination: Termination,
        restarting: bool,
    },
}

impl Seen {
    pub fn replica(&self) -> &str {
        match self {
            Self::Started { replica, .. }
            | Self::Healthy { replica, .. }
            | Self::Unhealthy { replica }
            | Self::Stopping { replica }
            | Self::Exited { replica, .. } => replica,
        }
    }
}

/// Records every event of an engine.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    pub fn spawn(mut events: Events) -> Self {
        let rec = Self::default();
        let inner = rec.0.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let seen = match event {
                    Event::Started {
                        replica,
                        pid,
                        adopted,
                        ..
                    } => Seen::Started {
                        replica: replica.to_string(),
                        pid,
                        adopted,
                    },
                    Event::Healthy { replica, port, .. } => Seen::Healthy {
                        replica: replica.to_string(),
                        port,
                    },
                    Event::Unhealthy { replica, .. } => Seen::Unhealthy {
                        replica: replica.to_string(),
                    },
                    Event::Stopping { replica, gate, .. } => {
                        gate.release();
                        Seen::Stopping {
                            replica: replica.to_string(),
                        }
                    }
                    Event::Exited {
                        replica,
                        termination,
                        restart_in,
                        ..
                    } => Seen::Exited {
                        replica: replica.to_string(),
                        termination,
                        restarting: restart_in.is_some(),
                    },
                };
                inner.lock().unwrap().push(seen);
            }
        });
        rec
    }

    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    pub fn of(&self, replica: &str) -> Vec<Seen> {
        self.all()
            .into_iter()
            .filter(|s| s.replica() == replica)
            .collect()
    }

    pub fn count(&self, f: impl Fn(&Seen) -> bool) -> usize {
        self.all().iter().filter(|s| f(s)).count()
    }

    /// Waits until an event matching `f` was recorded; returns it.
    pub async fn wait_for(&self, f: impl Fn(&Seen) -> bool) -> Seen {
        let mut found = None;
        let ok = eventually(|| {
            found = self.all().into_iter().find(|s| f(s));
            found.is_some()
        })
        .await;
        assert!(
            ok,
            "no matching event within {PATIENCE:?}; saw {:?}",
            self.all()
        );
        found.unwrap()
    }
}

/// An engine on a fresh state directory, with its events recorded.
pub struct Node {
    pub engine: Engine,
    pub events: Recorder,
    pub dir: TempDir,
    _cleanup: Cleanup,
}

/// SIGKILLs the process groups of an engine's replicas when dropped, so a failing test
/// leaves no process behind.
pub struct Cleanup(pub Engine);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for s in self.0.status() {
            if let Some(pid) = s.pid {
                let _ = std::process::Command::new("kill")
                    .args(["-9", "--", &format!("-{pid}")])
                    .status();
            }
        }
    }
}

pub fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.stop_gate_timeout = Duration::from_millis(200);
    c
}

pub async fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let (engine, events, report) = Engine::start(config(dir.path())).await.unwrap();
    assert!(report.adopted.is_empty() && report.forgotten.is_empty());
    Node {
        _cleanup: Cleanup(engine.clone()),
        engine,
        events: Recorder::spawn(events),
        dir,
    }
}

/// Polls `f` every 20 ms until it holds or [`PATIENCE`] passes.
pub async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `fut` with the [`PATIENCE`] bound.
pub async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .expect("took longer than PATIENCE")
}

/// The process is gone or a zombie (ended, not yet reaped by whoever its parent is now).
pub fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The process no longer exists at all (reaped).
pub fn reaped(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A tiny HTTP server answering every request with `status`, on an ephemeral port.
pub async fn http_server(status: u16) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}
