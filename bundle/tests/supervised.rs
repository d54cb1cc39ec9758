//! `skr8tr_server` under a stand-in systemd (`Type=notify`, SPEC §7.4): READY=1 with a STATUS
//! once its three daemons listen, WATCHDOG=1 while all three event loops turn, STOPPING=1 on
//! SIGTERM.

use std::process::Command;
use std::time::Duration;

use skr8tr_daemon::supervisor::NotifyListener;

#[test]
fn the_server_tells_systemd_it_is_ready_alive_and_stopping() {
    let state = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skr8tr_server"));
    for flag in [
        "--tower-listen",
        "--conductor-listen",
        "--heartbeat-listen",
        "--node-listen",
    ] {
        cmd.args([flag, "127.0.0.1:0"]);
    }
    cmd.args([
        "--metrics",
        "off",
        "--admin",
        "127.0.0.1:0",
        "--tower-admin",
        "off",
    ])
    .arg("--state-dir")
    .arg(state.path());
    let run = NotifyListener::bind()
        .unwrap()
        .supervise(
            &mut cmd,
            Duration::from_millis(200),
            Duration::from_secs(30),
        )
        .unwrap();
    run.check().unwrap();
    let status = run.ready_status().unwrap();
    for part in ["tower on udp 127.0.0.1:", "conductor on udp", "node on udp"] {
        assert!(status.contains(part), "{part} in {status}");
    }
}
