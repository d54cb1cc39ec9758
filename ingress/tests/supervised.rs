//! The ingress binary under a stand-in systemd (`Type=notify`, SPEC §7.4), on both drivers:
//! READY=1 with a STATUS once every core listens, WATCHDOG=1 while every core's housekeeping
//! turns, STOPPING=1 when SIGTERM starts the drain.

use std::process::Command;
use std::time::Duration;

use skr8tr_daemon::supervisor::NotifyListener;

fn supervised(epoll: bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skr8tr_ingress"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "off",
        "--threads",
        "2",
    ])
    .args(["--route", "/:web", "--backend", "web=127.0.0.1:9"])
    .env("SKR8TR_FORCE_EPOLL", if epoll { "1" } else { "0" });
    let run = NotifyListener::bind()
        .unwrap()
        .supervise(
            &mut cmd,
            Duration::from_millis(400),
            Duration::from_secs(30),
        )
        .unwrap();
    run.check().unwrap();
    let status = run.ready_status().unwrap();
    assert!(
        status.starts_with("listening on tcp 127.0.0.1:") && status.ends_with("(2 cores)"),
        "{status}"
    );
}

#[test]
fn the_ingress_tells_systemd_it_is_ready_alive_and_stopping_io_uring() {
    supervised(false);
}

#[test]
fn the_ingress_tells_systemd_it_is_ready_alive_and_stopping_epoll() {
    supervised(true);
}
