//! The node agent binary under a stand-in systemd (`Type=notify`, SPEC §7.4): READY=1 with a
//! STATUS once listening, WATCHDOG=1 from the running loop, STOPPING=1 on SIGTERM.

use std::process::Command;
use std::time::Duration;

use skr8tr_daemon::supervisor::NotifyListener;

#[test]
fn the_node_agent_tells_systemd_it_is_ready_alive_and_stopping() {
    let state = tempfile::tempdir().unwrap();
    let run = NotifyListener::bind()
        .unwrap()
        .supervise(
            Command::new(env!("CARGO_BIN_EXE_skr8tr_node"))
                .args(["--listen", "127.0.0.1:0", "--metrics", "off"])
                .arg("--state-dir")
                .arg(state.path()),
            Duration::from_millis(200),
            Duration::from_secs(30),
        )
        .unwrap();
    run.check().unwrap();
    let status = run.ready_status().unwrap();
    assert!(
        status.starts_with("listening on udp 127.0.0.1:"),
        "{status}"
    );
}
