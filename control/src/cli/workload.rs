//! `skr8tr logs APP [--replica ID] [-f]` and `skr8tr exec APP -- CMD…`: a replica's output
//! and a command run beside it. Both reveal workload output, so both are operator-signed.
//!
//! ```text
//! logs:     LOGS|app[|replica] ─▶ print the lines
//! logs -f:  every 500 ms, LOGS|app|<that replica> ─▶ print only lines not printed before
//! exec:     EXEC|app|cmd (sent once, never retried) ─▶ print output ─▶ exit with its code
//! ```
//! A LOGS reply holds the replica's newest lines (a ring of 200), so following is a matter of
//! finding where the new window overlaps the old one ([`new_lines`]). `logs -f` sticks to the
//! replica of its first reply; if that replica goes away and none was named, it moves on to the
//! app's current first replica and says so on stderr. EXEC is not idempotent: a lost reply
//! is reported, never resent.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use skr8tr_proto::name::{AppName, ReplicaId};
use skr8tr_proto::wire::{
    ConductorReply, ConductorRequest, ErrorCode, ExecReply, Exit, LogsReply, OneLine,
};

use super::global::GlobalArgs;
use super::output::{emit, print_json, print_text, success};
use super::remote::{Endpoint, unexpected};

/// How often `logs -f` asks for new lines.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// The lines of `next` that come after what `prev` already showed: `next` minus its longest
/// prefix that is a suffix of `prev`. With no overlap (more new lines than the ring holds, or
/// a different stream) every line of `next` is new.
#[must_use]
pub fn new_lines<'n>(prev: &[OneLine], next: &'n [OneLine]) -> &'n [OneLine] {
    let most = prev.len().min(next.len());
    let overlap = (0..=most)
        .rev()
        .find(|&k| prev.get(prev.len() - k..) == next.get(..k))
        .unwrap_or(0);
    next.get(overlap..).unwrap_or_default()
}

/// Lines as text, each ending in `\n`.
#[must_use]
pub fn lines_text(lines: &[OneLine]) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(line.as_str());
        out.push('\n');
    }
    out
}

/// The `--json` object of `logs` (with `-f`, one per batch of new lines).
#[must_use]
pub fn logs_json(app: &AppName, replica: &ReplicaId, lines: &[OneLine]) -> Value {
    success(
        "logs",
        json!({
            "app": app.as_str(),
            "replica": replica.as_str(),
            "lines": lines.iter().map(OneLine::as_str).collect::<Vec<_>>(),
        }),
    )
}

/// `skr8tr logs APP [--replica ID] [-f]`.
///
/// # Errors
/// The Conductor refused (no such app or replica, unauthorized) or did not answer (without
/// `-f`; with it, the CLI keeps asking); stdout gone.
pub fn run_logs(
    global: &GlobalArgs,
    app: &AppName,
    replica: Option<&ReplicaId>,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    let conductor = Endpoint::conductor(global, true)?;
    let mut following: Option<ReplicaId> = replica.cloned();
    let mut shown: Vec<OneLine> = Vec::new();
    let mut warned = false;
    let mut lost = false;
    loop {
        let req = ConductorRequest::Logs {
            app: app.clone(),
            replica: following.clone(),
        };
        match conductor.ask_conductor(&req) {
            Ok(ConductorReply::Logs(LogsReply {
                replica: from,
                lines,
            })) => {
                if following.as_ref() != Some(&from) {
                    if lost {
                        eprintln!("skr8tr: logs: now following replica {from}");
                    }
                    following = Some(from.clone());
                    shown.clear();
                }
                lost = false;
                let fresh = new_lines(&shown, &lines);
                if !fresh.is_empty() || !follow {
                    if global.json {
                        print_json(&logs_json(app, &from, fresh))?;
                    } else {
                        print_text(&lines_text(fresh))?;
                    }
                }
                shown = lines;
                warned = false;
            }
            Ok(other) => return Err(unexpected("conductor", "LOGS", &other).into()),
            // The replica followed without being named is gone (replaced, scaled down):
            // follow whichever replica the app has now.
            Err(e)
                if follow
                    && replica.is_none()
                    && following.is_some()
                    && e.refusal() == Some(ErrorCode::NotFound) =>
            {
                eprintln!(
                    "skr8tr: logs: replica {} is gone",
                    following.as_ref().map_or("", ReplicaId::as_str)
                );
                following = None;
                lost = true;
                continue;
            }
            Err(e) if follow && e.is_no_reply() => {
                if !warned {
                    eprintln!("skr8tr: logs: {e}; still trying");
                    warned = true;
                }
            }
            Err(e) => return Err(e.into()),
        }
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}

/// The command line `exec` sends: the words joined by spaces, run by `sh -c` on the node.
#[must_use]
pub fn command_line(words: &[String]) -> String {
    words.join(" ")
}

/// The process exit code for a remote exit status: the code itself, or 128 + the signal as a
/// shell reports a killed command.
#[must_use]
pub fn exit_code_for(exit: Exit) -> u8 {
    match exit {
        Exit::Code(code) => code,
        Exit::Signal(signal) => 128_u8.saturating_add(signal),
        Exit::OomKilled => 128 + 9,
    }
}

/// The `--json` object of `exec`.
#[must_use]
pub fn exec_json(app: &AppName, reply: &ExecReply) -> Value {
    let (code, signal) = match reply.exit {
        Exit::Code(code) => (Some(code), None),
        Exit::Signal(signal) => (None, Some(signal)),
        Exit::OomKilled => (None, Some(9)),
    };
    let mut v = success(
        "exec",
        json!({
            "app": app.as_str(),
            "replica": reply.replica.as_str(),
            "exit_code": code,
            "signal": signal,
            "output": reply.output,
        }),
    );
    v["ok"] = json!(reply.exit.success());
    v
}

/// `skr8tr exec APP -- CMD…`: prints the command's output and exits with its exit code.
///
/// # Errors
/// The Conductor refused or did not answer (the command may or may not have run: EXEC is not
/// resent); bad flags; stdout gone.
pub fn run_exec(global: &GlobalArgs, app: &AppName, words: &[String]) -> anyhow::Result<ExitCode> {
    let conductor = Endpoint::conductor(global, true)?;
    let req = ConductorRequest::Exec {
        app: app.clone(),
        cmd: command_line(words),
    };
    let reply = match conductor.ask_conductor(&req)? {
        ConductorReply::Exec(reply) => reply,
        other => return Err(unexpected("conductor", "EXEC", &other).into()),
    };
    emit(
        global.json,
        || reply.output.clone(),
        || exec_json(app, &reply),
    )?;
    if let Exit::Signal(signal) = reply.exit {
        eprintln!(
            "skr8tr: exec: the command was killed by signal {signal} on {}",
            reply.replica
        );
    }
    Ok(ExitCode::from(exit_code_for(reply.exit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(words: &[&str]) -> Vec<OneLine> {
        words.iter().map(|w| OneLine::new(*w).unwrap()).collect()
    }

    #[test]
    fn only_lines_past_the_overlap_are_new() {
        let a = lines(&["a", "b"]);
        assert_eq!(new_lines(&[], &a), &a[..]);
        assert_eq!(new_lines(&a, &a), &[] as &[OneLine]);
        let grown = lines(&["a", "b", "c"]);
        assert_eq!(new_lines(&a, &grown), &lines(&["c"])[..]);
        // The ring dropped its oldest line and got two new ones.
        let slid = lines(&["b", "c", "d"]);
        assert_eq!(new_lines(&grown, &slid), &lines(&["d"])[..]);
        // Repeated lines: the longest overlap wins.
        let prev = lines(&["x", "y", "x"]);
        let next = lines(&["y", "x", "z"]);
        assert_eq!(new_lines(&prev, &next), &lines(&["z"])[..]);
        // No overlap at all: everything is new.
        assert_eq!(new_lines(&a, &lines(&["q"])), &lines(&["q"])[..]);
        assert_eq!(new_lines(&a, &[]), &[] as &[OneLine]);
    }

    #[test]
    fn logs_text_and_json() {
        assert_eq!(lines_text(&lines(&["one", "", "three"])), "one\n\nthree\n");
        assert_eq!(lines_text(&[]), "");
        let app = AppName::new("api").unwrap();
        let replica = ReplicaId::new("api.g1.r2").unwrap();
        assert_eq!(
            logs_json(&app, &replica, &lines(&["x|y"])),
            json!({"command": "logs", "ok": true, "app": "api", "replica": "api.g1.r2",
                   "lines": ["x|y"]})
        );
    }

    #[test]
    fn exec_exit_codes_follow_the_remote_command() {
        assert_eq!(exit_code_for(Exit::Code(0)), 0);
        assert_eq!(exit_code_for(Exit::Code(3)), 3);
        assert_eq!(exit_code_for(Exit::Code(255)), 255);
        assert_eq!(exit_code_for(Exit::Signal(9)), 137);
        assert_eq!(exit_code_for(Exit::Signal(200)), 255);
        assert_eq!(
            command_line(&["ls".into(), "-l".into(), "/data | wc".into()]),
            "ls -l /data | wc"
        );
    }

    #[test]
    fn exec_json_has_code_or_signal() {
        let app = AppName::new("api").unwrap();
        let reply = ExecReply {
            replica: ReplicaId::new("api.g1.r1").unwrap(),
            exit: Exit::Code(0),
            output: "12\n".into(),
        };
        assert_eq!(
            exec_json(&app, &reply),
            json!({"command": "exec", "ok": true, "app": "api", "replica": "api.g1.r1",
                   "exit_code": 0, "signal": null, "output": "12\n"})
        );
        let killed = ExecReply {
            exit: Exit::Signal(9),
            ..reply
        };
        let v = exec_json(&app, &killed);
        assert_eq!(v["ok"], false);
        assert_eq!(v["signal"], 9);
        assert_eq!(v["exit_code"], Value::Null);
    }
}
