//! Where command results go: text or one JSON object on stdout, and the single place that turns
//! a failed command into its stderr line, its `--json` error object and exit code 1.
//!
//! ```text
//! Ok(code)  ─────────────────────────────────────▶ exit code (0 only on success)
//! Err(err)  ─▶ stderr "skr8tr: <command>: <err>"  ─▶ exit 1
//!            └▶ with --json, also stdout {"command","ok":false,"error":{"code","message"}}
//! ```
//! Every JSON object a command prints has `"command"` and `"ok"`; the rest is the command's
//! (keys come out sorted).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use super::remote::DaemonError;

/// Writes `text` to stdout as is.
///
/// # Errors
/// Stdout cannot be written (a closed pipe).
pub fn print_text(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// Writes `value` as one line of JSON to stdout.
///
/// # Errors
/// Stdout cannot be written.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    print_text(&format!("{value}\n"))
}

/// Prints the text or the JSON form of a result, as `--json` asks.
///
/// # Errors
/// Stdout cannot be written.
pub fn emit(
    json: bool,
    text: impl FnOnce() -> String,
    value: impl FnOnce() -> Value,
) -> anyhow::Result<()> {
    if json {
        print_json(&value())
    } else {
        print_text(&text())
    }
}

/// `{"command": <command>, "ok": true}` merged with `fields` (an object).
#[must_use]
pub fn success(command: &str, fields: Value) -> Value {
    let mut out = json!({ "command": command, "ok": true });
    if let (Some(out), Value::Object(fields)) = (out.as_object_mut(), fields) {
        out.extend(fields);
    }
    out
}

/// The stderr line for a failed command.
#[must_use]
pub fn error_line(command: &str, err: &anyhow::Error) -> String {
    format!("skr8tr: {command}: {err:#}")
}

/// The `--json` object for a failed command: the daemon's code when it refused, else the kind
/// of failure (`NO_REPLY`, `UNREACHABLE`, `BAD_REPLY`, …), or `ERROR` for a local problem.
#[must_use]
pub fn error_json(command: &str, err: &anyhow::Error) -> Value {
    let code = err
        .chain()
        .find_map(|e| e.downcast_ref::<DaemonError>())
        .map_or("ERROR", DaemonError::code);
    json!({
        "command": command,
        "ok": false,
        "error": { "code": code, "message": format!("{err:#}") },
    })
}

/// Reports a failed command on stderr (and stdout with `--json`) and gives exit code 1.
pub fn failure(command: &str, err: &anyhow::Error, json: bool) -> ExitCode {
    if json {
        // Nothing more can be reported if stdout is gone; stderr still says what failed.
        let _ = print_json(&error_json(command, err));
    }
    eprintln!("{}", error_line(command, err));
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;
    use skr8tr_proto::wire::{ErrorCode, ErrorReply, OneLine};

    fn not_found() -> anyhow::Error {
        DaemonError::Refused {
            reply: ErrorReply::new(ErrorCode::NotFound, OneLine::new("x").unwrap()),
            hint: "",
        }
        .into()
    }

    #[test]
    fn a_refusal_prints_command_code_and_detail() {
        assert_eq!(
            error_line("down", &not_found()),
            "skr8tr: down: NOT_FOUND: x"
        );
        assert_eq!(
            error_json("down", &not_found()),
            json!({"command": "down", "ok": false,
                   "error": {"code": "NOT_FOUND", "message": "NOT_FOUND: x"}})
        );
    }

    #[test]
    fn wrapped_and_local_errors_keep_their_chain() {
        let wrapped = not_found().context("api.skr8tr");
        assert_eq!(
            error_line("up", &wrapped),
            "skr8tr: up: api.skr8tr: NOT_FOUND: x"
        );
        assert_eq!(error_json("up", &wrapped)["error"]["code"], "NOT_FOUND");
        let local = anyhow::anyhow!("bad flag");
        assert_eq!(error_json("up", &local)["error"]["code"], "ERROR");
    }

    #[test]
    fn success_objects_carry_command_and_ok() {
        assert_eq!(
            success("down", json!({"app": "api"})),
            json!({"command": "down", "ok": true, "app": "api"})
        );
    }
}
