//! The real Conductor (`skr8tr_control::conductor::server::run`) for the cluster tests, on two
//! fixed loopback ports below the kernel's ephemeral range, so that it can be stopped and
//! started again on the same ports (a Conductor restart the nodes keep reporting to), with its
//! state directory kept across restarts.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use skr8tr_control::conductor::server::{ConductorConfig, run as run_conductor};
use skr8tr_control::conductor::state::Timings;
use skr8tr_daemon::UdpEndpoint;
use skr8tr_proto::wire::{
    ConductorReply, ConductorRequest, ManifestSource, Message, ReplicaStatus,
};
use tokio::sync::oneshot;

use super::PATIENCE;
use super::daemons::{ask, wait_answer};

/// A running Conductor: `cmd` takes operator commands, `heartbeats` the nodes' reports.
pub struct Conductor {
    pub cmd: SocketAddr,
    pub heartbeats: SocketAddr,
    state_dir: PathBuf,
    tower: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Conductor {
    /// A Conductor with its state under `state_dir`, asking `tower` during rollouts, on two
    /// free fixed ports.
    pub fn start(state_dir: &Path, tower: SocketAddr) -> Self {
        // A process-wide counter: the tests of this binary run in parallel and must never probe
        // the same ports.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let seed = std::process::id() as usize;
        for _ in 0..200 {
            let i = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = 20_000 + (seed * 13 + i * 2) % 12_000;
            let port = u16::try_from(port).unwrap();
            let cmd = SocketAddr::from(([127, 0, 0, 1], port));
            let heartbeats = SocketAddr::from(([127, 0, 0, 1], port + 1));
            // Probe both ports first: the daemon's thread cannot hand a bind error back.
            let free = UdpSocket::bind(cmd).is_ok() && UdpSocket::bind(heartbeats).is_ok();
            if free {
                return Self::start_at(state_dir, tower, cmd, heartbeats);
            }
        }
        panic!("no free ports for a restartable Conductor");
    }

    fn start_at(state_dir: &Path, tower: SocketAddr, cmd: SocketAddr, hb: SocketAddr) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let dir = state_dir.to_path_buf();
        let thread = std::thread::spawn(move || {
            skr8tr_daemon::run_with("conductor", false, |driver| async move {
                let commands = UdpEndpoint::bind(driver, cmd).unwrap();
                let heartbeats = UdpEndpoint::bind(driver, hb).unwrap();
                let mut config = ConductorConfig::dev(dir);
                config.timings = Timings {
                    node_expiry: Duration::from_millis(1500),
                    launch_grace: Duration::from_secs(3),
                };
                config.tower = Some(tower);
                run_conductor(driver, commands, heartbeats, config, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            })
            .unwrap();
        });
        wait_answer(cmd, "PING");
        Self {
            cmd,
            heartbeats: hb,
            state_dir: state_dir.to_path_buf(),
            tower,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops this Conductor and starts a new one on the same ports and state directory.
    pub fn restart(&mut self) {
        self.stop();
        *self = self.start_again();
    }

    /// Stops this Conductor (as a crash would: its state stays on disk).
    pub fn stop(&mut self) {
        self.shutdown();
    }

    /// A new Conductor on the ports and state directory of this stopped one.
    pub fn start_again(&self) -> Self {
        Self::start_at(&self.state_dir, self.tower, self.cmd, self.heartbeats)
    }

    /// `SUBMIT` of the manifest text inline; the answer.
    pub fn submit(&self, manifest: &str) -> String {
        let request = ConductorRequest::Submit(ManifestSource::Inline(manifest.to_owned()));
        ask(self.cmd, &request.encode())
    }

    /// `STATUS` of every app (or one).
    pub fn status(&self, app: Option<&str>) -> Vec<ReplicaStatus> {
        let text = match app {
            Some(app) => format!("STATUS|{app}"),
            None => "STATUS".to_owned(),
        };
        match ConductorReply::decode(ask(self.cmd, &text).as_bytes()).unwrap() {
            ConductorReply::Status(s) => s,
            other => panic!("STATUS answered {other:?}"),
        }
    }

    /// Waits until `n` nodes are live.
    pub fn wait_nodes(&self, n: usize) {
        let want = format!("OK|NODES|{n}|");
        assert!(
            super::daemons::until(|| ask(self.cmd, "NODES").starts_with(&want)),
            "{n} nodes never joined within {PATIENCE:?}"
        );
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Conductor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
