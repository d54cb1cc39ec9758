//! `skr8tr rollout FILE [--detach] [--wait-timeout-s N]`: rolls one app to a new spec and,
//! unless detached, follows it to the end.
//!
//! ```text
//! validate FILE (one app) ─▶ ROLLOUT|b64:<text> (signed) ─▶ OK|ROLLOUT|app
//!   └─ every 200 ms: ROLLOUT_STATUS|app ─▶ print a line when the progress changes
//!        complete, or canaries ready (`rollout { canary N }`) ─▶ exit 0
//!        reverted / failed ─▶ exit 1 with the reason
//!        still running at --wait-timeout-s ─▶ exit 2
//! ```
//! A status poll the Conductor does not answer is not fatal (it may be restarting, and it
//! finishes or reverts an interrupted rollout): the CLI says so once and keeps polling until the
//! deadline. [`Watch`] is the pure part: progress in, lines and a verdict out.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skr8tr_proto::name::AppName;
use skr8tr_proto::wire::{
    ConductorReply, ConductorRequest, ManifestSource, RolloutProgress, RolloutState,
};

use super::cluster::{load_single_app, report_invalid_rollout};
use super::global::GlobalArgs;
use super::output::{emit, print_json, print_text, success};
use super::remote::{Endpoint, unexpected};

/// How often the rollout's progress is asked for.
pub const POLL_EVERY: Duration = Duration::from_millis(200);

/// How many polls may say `none` (no rollout known) before the CLI concludes there is nothing
/// to roll: about two seconds, time for a Conductor that starts rollouts asynchronously.
const NONE_GRACE: u32 = 10;

/// Exit code when the rollout is still running at the deadline.
const EXIT_TIMEOUT: u8 = 2;

/// How a followed rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Complete,
    /// Its canaries are healthy beside the old set: it waits for `skr8tr promote`.
    CanaryReady,
    Reverted,
    Failed,
    /// The Conductor kept reporting no rollout for the app: nothing needed replacing.
    NothingToRoll,
}

impl Verdict {
    #[must_use]
    pub fn success(self) -> bool {
        matches!(
            self,
            Self::Complete | Self::CanaryReady | Self::NothingToRoll
        )
    }
}

/// Follows a rollout's progress reports.
#[derive(Debug, Default)]
pub struct Watch {
    last: Option<RolloutProgress>,
    nones: u32,
}

impl Watch {
    /// Takes one progress report: the line to print if it differs from the previous one, and
    /// the verdict once the rollout has ended.
    pub fn observe(&mut self, p: &RolloutProgress) -> (Option<String>, Option<Verdict>) {
        let changed = self.last.as_ref() != Some(p);
        self.last = Some(p.clone());
        let verdict = match p.state {
            RolloutState::Complete => Some(Verdict::Complete),
            RolloutState::Reverted => Some(Verdict::Reverted),
            RolloutState::Failed => Some(Verdict::Failed),
            RolloutState::Canary if p.total > 0 && p.done >= p.total => Some(Verdict::CanaryReady),
            RolloutState::Running | RolloutState::Canary | RolloutState::Reverting => None,
            RolloutState::None => {
                self.nones += 1;
                (self.nones >= NONE_GRACE).then_some(Verdict::NothingToRoll)
            }
        };
        if p.state != RolloutState::None {
            self.nones = 0;
        }
        let line = match (p.state, verdict) {
            (RolloutState::None, Some(_)) => Some(format!(
                "{}  no rollout: the conductor reports nothing to replace\n",
                p.app
            )),
            (RolloutState::None, None) => None,
            _ => changed.then(|| progress_line(p)),
        };
        (line, verdict)
    }

    /// The last report seen.
    #[must_use]
    pub fn last(&self) -> Option<&RolloutProgress> {
        self.last.as_ref()
    }
}

/// `api  running  1/3  waiting for api.g2.r2 to be healthy`.
#[must_use]
pub fn progress_line(p: &RolloutProgress) -> String {
    let mut line = format!("{}  {}  {}/{}", p.app, p.state, p.done, p.total);
    if !p.detail.as_str().is_empty() {
        line.push_str("  ");
        line.push_str(p.detail.as_str());
    }
    line.push('\n');
    line
}

/// The stderr reason for a rollout that did not succeed.
#[must_use]
pub fn failure_reason(p: &RolloutProgress) -> String {
    let mut reason = format!("{} {} ({}/{} replaced)", p.app, p.state, p.done, p.total);
    if !p.detail.as_str().is_empty() {
        reason.push_str(": ");
        reason.push_str(p.detail.as_str());
    }
    reason
}

/// The `--json` object for a followed rollout.
#[must_use]
pub fn rollout_json(
    app: &AppName,
    last: Option<&RolloutProgress>,
    ok: bool,
    timed_out: bool,
) -> Value {
    let mut v = success(
        "rollout",
        json!({
            "app": app.as_str(),
            "detached": false,
            "timed_out": timed_out,
            "state": last.map(|p| p.state.keyword()),
            "done": last.map(|p| p.done),
            "total": last.map(|p| p.total),
            "detail": last.map(|p| p.detail.as_str()),
        }),
    );
    v["ok"] = json!(ok);
    v
}

/// `skr8tr rollout FILE`.
///
/// # Errors
/// The Conductor refused the rollout or a status poll; bad flags; stdout gone.
pub fn run(
    global: &GlobalArgs,
    file: &Path,
    detach: bool,
    wait_timeout_s: u64,
) -> anyhow::Result<ExitCode> {
    let (local, _) = match load_single_app(file) {
        Ok(loaded) => loaded,
        Err(problems) => return Ok(report_invalid_rollout(&problems)),
    };
    let mut conductor = Endpoint::conductor(global, true)?;
    let req = ConductorRequest::Rollout(ManifestSource::Inline(local.text));
    let app = match conductor.ask_conductor(&req)? {
        ConductorReply::RolloutStarted(started) => started,
        other => return Err(unexpected("conductor", "ROLLOUT", &other).into()),
    };
    if detach {
        emit(
            global.json,
            || format!("{app}  rollout started (`skr8tr status` shows its progress)\n"),
            || {
                success(
                    "rollout",
                    json!({ "app": app.as_str(), "detached": true, "state": "running" }),
                )
            },
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if !global.json {
        print_text(&format!("{app}  rollout started\n"))?;
    }
    follow(global, &mut conductor, &app, wait_timeout_s, "rollout")
}

/// Follows the rollout of `app` until it ends (or its canaries are ready), printing a line
/// per change of its progress; the exit code says how it ended (`command` names the command
/// in its JSON and messages).
///
/// # Errors
/// The Conductor refused a status poll; stdout gone.
pub fn follow(
    global: &GlobalArgs,
    conductor: &mut Endpoint,
    app: &AppName,
    wait_timeout_s: u64,
    command: &'static str,
) -> anyhow::Result<ExitCode> {
    let deadline = Instant::now() + Duration::from_secs(wait_timeout_s);
    let mut watch = Watch::default();
    let mut warned = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return timed_out(global, app, watch.last(), wait_timeout_s, command);
        }
        conductor.set_timeout(global.timeout().min(left));
        match conductor.ask_conductor(&ConductorRequest::RolloutStatus(app.clone())) {
            Ok(ConductorReply::RolloutStatus(p)) => {
                let (line, verdict) = watch.observe(&p);
                if let (Some(line), false) = (line, global.json) {
                    print_text(&line)?;
                }
                if let Some(verdict) = verdict {
                    return finished(global, app, &p, verdict, command);
                }
            }
            Ok(other) => return Err(unexpected("conductor", "ROLLOUT_STATUS", &other).into()),
            Err(e) if e.is_no_reply() => {
                if !warned {
                    eprintln!("skr8tr: {command}: {e}; still waiting");
                    warned = true;
                }
            }
            Err(e) => return Err(e.into()),
        }
        std::thread::sleep(POLL_EVERY.min(deadline.saturating_duration_since(Instant::now())));
    }
}

fn finished(
    global: &GlobalArgs,
    app: &AppName,
    p: &RolloutProgress,
    verdict: Verdict,
    command: &'static str,
) -> anyhow::Result<ExitCode> {
    if global.json {
        let mut v = rollout_json(app, Some(p), verdict.success(), false);
        v["command"] = json!(command);
        print_json(&v)?;
    }
    if verdict == Verdict::CanaryReady && !global.json {
        print_text(&format!(
            "{app}  canary ready beside the old replicas: `skr8tr promote {app}` goes on, `skr8tr rollback {app}` drops it\n"
        ))?;
    }
    if verdict.success() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("skr8tr: {command}: {}", failure_reason(p));
        Ok(ExitCode::FAILURE)
    }
}

fn timed_out(
    global: &GlobalArgs,
    app: &AppName,
    last: Option<&RolloutProgress>,
    wait_timeout_s: u64,
    command: &'static str,
) -> anyhow::Result<ExitCode> {
    if global.json {
        let mut v = rollout_json(app, last, false, true);
        v["command"] = json!(command);
        print_json(&v)?;
    }
    let state = last.map_or_else(|| format!("{app}: no progress report"), failure_reason);
    eprintln!(
        "skr8tr: {command}: gave up waiting after {wait_timeout_s} s (--wait-timeout-s): {state}; \
         the rollout goes on"
    );
    Ok(ExitCode::from(EXIT_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skr8tr_proto::wire::OneLine;

    fn progress(
        app: &AppName,
        state: RolloutState,
        done: u32,
        total: u32,
        detail: &str,
    ) -> RolloutProgress {
        RolloutProgress {
            app: app.clone(),
            state,
            done,
            total,
            detail: OneLine::new(detail).unwrap(),
        }
    }

    fn api() -> AppName {
        AppName::new("api").unwrap()
    }

    #[test]
    fn a_line_is_printed_only_when_the_progress_changes() {
        let mut w = Watch::default();
        let p1 = progress(
            &api(),
            RolloutState::Running,
            1,
            3,
            "waiting for api.g2.r2 to be healthy",
        );
        assert_eq!(
            w.observe(&p1),
            (
                Some("api  running  1/3  waiting for api.g2.r2 to be healthy\n".to_owned()),
                None
            )
        );
        assert_eq!(w.observe(&p1), (None, None));
        let p2 = progress(&api(), RolloutState::Running, 2, 3, "");
        assert_eq!(
            w.observe(&p2),
            (Some("api  running  2/3\n".to_owned()), None)
        );
        let done = progress(&api(), RolloutState::Complete, 3, 3, "");
        assert_eq!(
            w.observe(&done),
            (
                Some("api  complete  3/3\n".to_owned()),
                Some(Verdict::Complete)
            )
        );
        assert_eq!(w.last(), Some(&done));
    }

    #[test]
    fn reverted_and_failed_end_the_watch_with_their_reason() {
        let mut w = Watch::default();
        let reverting = progress(&api(), RolloutState::Reverting, 1, 3, "api.g2.r2 unhealthy");
        assert_eq!(w.observe(&reverting).1, None);
        let reverted = progress(
            &api(),
            RolloutState::Reverted,
            1,
            3,
            "api.g2.r2 not healthy within 60s",
        );
        assert_eq!(w.observe(&reverted).1, Some(Verdict::Reverted));
        assert!(!Verdict::Reverted.success());
        assert_eq!(
            failure_reason(&reverted),
            "api reverted (1/3 replaced): api.g2.r2 not healthy within 60s"
        );
        let failed = progress(&api(), RolloutState::Failed, 0, 3, "");
        assert_eq!(Watch::default().observe(&failed).1, Some(Verdict::Failed));
        assert_eq!(failure_reason(&failed), "api failed (0/3 replaced)");
    }

    #[test]
    fn none_is_waited_out_briefly_then_means_nothing_to_roll() {
        let mut w = Watch::default();
        let none = progress(&api(), RolloutState::None, 0, 0, "");
        for _ in 1..NONE_GRACE {
            assert_eq!(w.observe(&none), (None, None));
        }
        let (line, verdict) = w.observe(&none);
        assert_eq!(verdict, Some(Verdict::NothingToRoll));
        assert!(line.unwrap().contains("no rollout"));
        assert!(Verdict::NothingToRoll.success());

        // A rollout that shows up within the grace resets it.
        let mut w = Watch::default();
        w.observe(&none);
        let running = progress(&api(), RolloutState::Running, 0, 1, "");
        assert!(w.observe(&running).0.is_some());
        for _ in 1..NONE_GRACE {
            assert_eq!(w.observe(&none).1, None);
        }
    }

    #[test]
    fn json_carries_the_last_progress() {
        let p = progress(&api(), RolloutState::Reverted, 1, 3, "why");
        let v = rollout_json(&api(), Some(&p), false, false);
        assert_eq!(
            v,
            json!({"command": "rollout", "ok": false, "app": "api", "detached": false,
                   "timed_out": false, "state": "reverted", "done": 1, "total": 3,
                   "detail": "why"})
        );
        let v = rollout_json(&api(), None, false, true);
        assert_eq!(v["timed_out"], true);
        assert_eq!(v["state"], Value::Null);
    }
}
