//! What a scenario found, and the results file: `loadtest/results/scenarios.md`.
//!
//! ```text
//! scenario ─▶ Outcome { load stats, measured figures, goal, verdict, notes } ─┐
//! run facts (date, machine, commit, command, load) ───────────────────────────┴─▶ markdown
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::load::Stats;

/// Whether a scenario reached its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    /// A figure with no goal to meet.
    Measured,
    /// Did not run (e.g. not root for the multi-host scenarios).
    Skipped,
    /// Failed to run to the end.
    Error,
}

impl Verdict {
    fn cell(self) -> &'static str {
        match self {
            Self::Met => "yes",
            Self::Missed => "**no**",
            Self::Measured => "—",
            Self::Skipped => "skipped",
            Self::Error => "**error**",
        }
    }

    /// Met when `ok`, else missed.
    #[must_use]
    pub fn of(ok: bool) -> Self {
        if ok { Self::Met } else { Self::Missed }
    }
}

/// One row of the results table, with its notes.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `a. rollout of 3 replicas`.
    pub name: String,
    pub load: Option<Stats>,
    /// The measured timings, e.g. `rollout 1.31 s`.
    pub measured: String,
    pub goal: String,
    pub verdict: Verdict,
    pub notes: Vec<String>,
}

impl Outcome {
    /// A row for a scenario that could not run to the end.
    #[must_use]
    pub fn error(name: &str, goal: &str, err: &anyhow::Error) -> Self {
        Self {
            name: name.into(),
            load: None,
            measured: "did not complete".into(),
            goal: goal.into(),
            verdict: Verdict::Error,
            notes: vec![format!("error: {err:#}")],
        }
    }

    /// A row for a scenario that was skipped, with the reason.
    #[must_use]
    pub fn skipped(name: &str, goal: &str, why: &str) -> Self {
        Self {
            name: name.into(),
            load: None,
            measured: "—".into(),
            goal: goal.into(),
            verdict: Verdict::Skipped,
            notes: vec![why.into()],
        }
    }

    /// One line for the console.
    #[must_use]
    pub fn summary(&self) -> String {
        let load = self.load.as_ref().map_or_else(String::new, |s| {
            format!(
                "{} requests, {} non-2xx, {} socket errors; ",
                s.requests, s.non_2xx, s.socket_errors
            )
        });
        format!(
            "{}: {}{} [goal: {}; met: {}]",
            self.name,
            load,
            self.measured,
            self.goal,
            self.verdict.cell().trim_matches('*')
        )
    }
}

/// `1.234 s` or `87 ms`.
#[must_use]
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn latency(s: &Stats) -> String {
    match (s.quantile(0.5), s.quantile(0.99)) {
        (Some(p50), Some(p99)) => format!("{:.1} / {:.1} ms", ms(p50), ms(p99)),
        _ => "—".into(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Facts about the run for the header.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub command: String,
    pub load: String,
    pub started_utc: String,
    /// When the release binaries were built, and whether a source changed since.
    pub binaries: String,
    pub wall: Duration,
    pub logs: String,
}

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `2026-01-01T12:00:00Z`.
#[must_use]
pub fn utc_now() -> String {
    run("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_else(|| "unknown".into())
}

/// Cores, CPU model, memory, kernel, load average.
#[must_use]
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024);
    let kernel = run("uname", &["-r"]).unwrap_or_default();
    format!("{cores} cores ({model}), {mem_mib} MiB RAM, Linux {kernel}")
}

/// The load average now (another benchmark may share the machine).
#[must_use]
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `abc1234` (with ` + uncommitted changes` when the tree is dirty).
#[must_use]
pub fn commit(repo: &Path) -> String {
    let dir = repo.display().to_string();
    let head = run("git", &["-C", &dir, "rev-parse", "--short", "HEAD"])
        .unwrap_or_else(|| "unknown".into());
    let dirty = run("git", &["-C", &dir, "status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head} + uncommitted changes")
    } else {
        head
    }
}

/// The whole results file.
#[must_use]
pub fn markdown(repo: &Path, facts: &RunFacts, outcomes: &[Outcome], load_before: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Operational scenarios under load\n");
    let _ = writeln!(
        md,
        "Written by the load-test runner (`loadtest/`, see its README). Every figure is one run \
         on the machine below; a mesh of the release binaries on this machine, fresh for each \
         scenario.\n"
    );
    let _ = writeln!(md, "- date (UTC): {}", facts.started_utc);
    let _ = writeln!(
        md,
        "- machine: {}; load average at start {} (the machine is shared: another benchmark \
         may have been running)",
        machine(),
        load_before
    );
    let _ = writeln!(md, "- commit: {}", commit(repo));
    let _ = writeln!(md, "- command: `{}`", facts.command);
    let _ = writeln!(md, "- release binaries: {}", facts.binaries);
    let _ = writeln!(md, "- load: {}", facts.load);
    let _ = writeln!(md, "- run time: {}", secs(facts.wall));
    let _ = writeln!(
        md,
        "- logs of this run: `{}` (not kept in git)\n",
        facts.logs
    );
    let _ = writeln!(
        md,
        "| scenario | requests | non-2xx | socket errors | p50 / p99 | measured | goal | met |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---|---|---|---|");
    for o in outcomes {
        let (req, non, sock, lat) = o.load.as_ref().map_or_else(
            || ("—".into(), "—".into(), "—".into(), "—".into()),
            |s| {
                (
                    s.requests.to_string(),
                    s.non_2xx.to_string(),
                    s.socket_errors.to_string(),
                    latency(s),
                )
            },
        );
        let _ = writeln!(
            md,
            "| {} | {req} | {non} | {sock} | {lat} | {} | {} | {} |",
            o.name,
            o.measured,
            o.goal,
            o.verdict.cell()
        );
    }
    let _ = writeln!(md, "\n## Notes\n");
    for o in outcomes {
        if o.notes.is_empty() {
            continue;
        }
        let _ = writeln!(md, "**{}**", o.name);
        for n in &o.notes {
            let _ = writeln!(md, "- {n}");
        }
        let _ = writeln!(md);
    }
    md
}
