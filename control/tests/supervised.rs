//! The Tower and Conductor binaries under a stand-in systemd (`Type=notify`, SPEC §7.4):
//! READY=1 with a STATUS once listening, WATCHDOG=1 from the running loop, STOPPING=1 on
//! SIGTERM.

use std::process::Command;
use std::time::Duration;

use skr8tr_daemon::supervisor::NotifyListener;

const WATCHDOG: Duration = Duration::from_millis(200);
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn the_tower_tells_systemd_it_is_ready_alive_and_stopping() {
    let run = NotifyListener::bind()
        .unwrap()
        .supervise(
            Command::new(env!("CARGO_BIN_EXE_skr8tr_reg")).args([
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
            ]),
            WATCHDOG,
            PATIENCE,
        )
        .unwrap();
    run.check().unwrap();
    let status = run.ready_status().unwrap();
    assert!(
        status.starts_with("listening on udp 127.0.0.1:"),
        "{status}"
    );
}

#[test]
fn the_conductor_tells_systemd_it_is_ready_alive_and_stopping() {
    let state = tempfile::tempdir().unwrap();
    let run = NotifyListener::bind()
        .unwrap()
        .supervise(
            Command::new(env!("CARGO_BIN_EXE_skr8tr_sched"))
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    "--heartbeat-listen",
                    "127.0.0.1:0",
                    "--admin",
                    "127.0.0.1:0",
                ])
                .arg("--state-dir")
                .arg(state.path()),
            WATCHDOG,
            PATIENCE,
        )
        .unwrap();
    run.check().unwrap();
    let status = run.ready_status().unwrap();
    assert!(
        status.starts_with("commands on udp 127.0.0.1:") && status.contains("heartbeats on udp"),
        "{status}"
    );
}
