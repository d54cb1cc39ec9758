//! The daemons' stderr as a log shipper or a log file sees it (issue 14 §8): with
//! `SKR8TR_LOG_FORMAT=json` every line is one JSON object; in text, a file gets no ANSI escapes.
//! The Tower runs under the stand-in service manager, which starts and stops it cleanly.

use std::process::{Command, Stdio};
use std::time::Duration;

use skr8tr_daemon::supervisor::NotifyListener;

/// What the Tower wrote on stderr (a file, not a terminal) over one start and SIGTERM.
fn tower_stderr(format: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skr8tr_reg"));
    cmd.args(["--listen", "127.0.0.1:0", "--admin", "off"])
        .env_remove("SKR8TR_LOG_FORMAT")
        .env("SKR8TR_LOG", "info")
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    if let Some(format) = format {
        cmd.env("SKR8TR_LOG_FORMAT", format);
    }
    let run = NotifyListener::bind()
        .unwrap()
        .supervise(
            &mut cmd,
            Duration::from_millis(200),
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    std::fs::read_to_string(log).unwrap()
}

#[test]
fn json_logs_are_one_object_per_line() {
    let stderr = tower_stderr(Some("json"));
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let ready = lines
        .iter()
        .find(|l| l["message"] == "tower ready")
        .unwrap_or_else(|| panic!("no tower ready in {stderr}"));
    assert_eq!(ready["level"], "INFO");
    assert!(ready["listen"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(lines.iter().any(|l| l["signal"] == "SIGTERM"), "{stderr}");
}

#[test]
fn text_logs_to_a_file_carry_no_escape_codes() {
    let stderr = tower_stderr(None);
    assert!(stderr.contains("tower ready"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}
