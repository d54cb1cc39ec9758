//! `skr8tr man` and `skr8tr completions` as an operator (or a package build) uses them: every
//! binary's page renders with `man -l -` without a single groff warning, and the bash script
//! loads into bash and completes `skr8tr`.

use std::io::Write as _;
use std::process::{Command, Stdio};

const BINARIES: [&str; 7] = [
    "skr8tr",
    "skr8tr_reg",
    "skr8tr_sched",
    "skr8tr_node",
    "skr8tr_server",
    "skr8tr_ingress",
    "skr8tr_serve",
];

fn skr8tr(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_skr8tr"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn found(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn every_man_page_renders_with_man_without_warnings() {
    if !found("man") {
        eprintln!("skipped: no `man` on this machine (Debian: man-db)");
        return;
    }
    for binary in BINARIES {
        let page = skr8tr(&["man", binary]);
        let mut man = Command::new("man")
            .args(["--warnings", "-l", "-"])
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        man.stdin.take().unwrap().write_all(&page).unwrap();
        let out = man.wait_with_output().unwrap();
        let (text, warnings) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success() && warnings.is_empty(),
            "{binary}: {warnings}"
        );
        assert!(
            text.contains("NAME") && text.contains(binary),
            "{binary}: {text}"
        );
        assert!(text.contains("--version"), "{binary}: no options rendered");
    }
}

#[test]
fn the_bash_completion_loads_and_completes_skr8tr() {
    if !found("bash") {
        eprintln!("skipped: no bash");
        return;
    }
    let script = String::from_utf8(skr8tr(&["completions", "bash"])).unwrap();
    let out = Command::new("bash")
        .args(["-c", &format!("{script}\ncomplete -p skr8tr")])
        .output()
        .unwrap();
    let registered = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && registered.contains("skr8tr"),
        "{registered} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
