//! `skr8tr-loadtest`: skr8tr's operational promises (issue 5, SPEC §5–§6) measured under
//! constant HTTP load through the ingress, on meshes of the release binaries.
//!
//! ```text
//! cargo build --release --locked            (the runner builds nothing itself)
//! cargo run --release --locked -p skr8tr-loadtest -- all      (or scenario names)
//!   for each scenario: fresh mesh (Tower, Conductor, 2 nodes, ingress / → api) as child
//!   process groups, logs in /tmp/skr8tr-loadtest-*/ ─▶ load ─▶ event ─▶ figures
//!   ─▶ loadtest/results/scenarios.md
//! ```
//! Modules: `procs` (children, Ctrl-C, cleanup), `mesh` (starting and asking the daemons),
//! `load` (the HTTP client threads), `scenarios` (a–f), `multihost` (g), `report` (the file).

mod load;
mod mesh;
mod multihost;
mod procs;
mod report;
mod scenarios;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};

use crate::load::LoadSpec;
use crate::mesh::{Env, Layout};
use crate::report::{Outcome, RunFacts, Verdict};
use crate::scenarios::{Ctx, row};

/// The binaries every scenario runs.
const BINARIES: &[&str] = &[
    "skr8tr",
    "skr8tr_reg",
    "skr8tr_sched",
    "skr8tr_node",
    "skr8tr_ingress",
];

/// The source folders each binary is built from: a binary is stale when one of them changed
/// after it was linked (cargo relinks only what depends on a change).
const SOURCES: &[(&str, &[&str])] = &[
    (
        "skr8tr",
        &["bundle", "control", "node", "ingress", "examples/service"],
    ),
    ("skr8tr_reg", &["control"]),
    ("skr8tr_sched", &["control"]),
    ("skr8tr_node", &["node", "control/proto", "control/daemon"]),
    (
        "skr8tr_ingress",
        &["ingress", "control/proto", "control/daemon"],
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Scenario {
    /// Every scenario below, in order.
    All,
    /// a. Rollout of 3 replicas under load (goal: 0 failed, ≤ 3 s).
    Rollout,
    /// b. kill -9 of one replica under load: failures, replacement time.
    ReplicaKill,
    /// c. kill -9 of a node agent and its workloads: time until every replica serves again.
    NodeLoss,
    /// d. kill -9 + restart of the Conductor, then of the Tower (goal: 0 failed).
    Restarts,
    /// e. Autoscale from 1 to max 3 under CPU load and back to min 1.
    Autoscale,
    /// f. Rollout to a version that never gets healthy: reverted, 0 failed.
    BrokenRollout,
    /// g. Three hosts from network namespaces (root): a–d and a partition.
    MultiHost,
    /// h. `skr8tr up` of 3 replicas on an idle mesh → first 200 through the ingress, 3
    /// registered, 3 healthy (5 rounds, polled every ~1 ms; goal ≤ 50 ms to the first 200).
    Up,
}

/// Runs skr8tr's operational scenarios under load and writes loadtest/results/scenarios.md.
#[derive(Debug, Parser)]
#[command(name = "skr8tr-loadtest")]
struct Args {
    /// Scenarios to run.
    #[arg(value_enum, default_value = "all")]
    scenarios: Vec<Scenario>,
    /// Total request rate of the scenario load (requests per second over all connections).
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
    /// Keep-alive client connections (one thread each).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Rate of `/cpu?ms=20` requests in the autoscale scenario.
    #[arg(long, default_value_t = 80.0)]
    cpu_rate: f64,
    /// Where the release binaries are (default: `<repository>/target/release`).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The results file (default: `<repository>/loadtest/results/scenarios.md`).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skr8tr-loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

fn find_binaries(args: &Args, repo: &Path) -> anyhow::Result<PathBuf> {
    let dir = args.bin_dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| repo.join("target"), PathBuf::from)
            .join("release")
    });
    let missing: Vec<&str> = BINARIES
        .iter()
        .copied()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing release binaries in {}: {}\nbuild them first: cargo build --release --locked",
            dir.display(),
            missing.join(", ")
        );
    }
    Ok(dir)
}

/// The oldest modification time of the binaries.
fn built_at(dir: &Path) -> Option<SystemTime> {
    BINARIES
        .iter()
        .filter_map(|b| std::fs::metadata(dir.join(b)).ok()?.modified().ok())
        .min()
}

/// A Rust source or manifest of the daemons changed after `t` (the binaries are stale).
fn newer_source(dir: &Path, t: SystemTime) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            if path.file_name().is_some_and(|n| n != "target")
                && let Some(found) = newer_source(&path, t)
            {
                return Some(found);
            }
        } else if path.extension().is_some_and(|e| e == "rs" || e == "toml")
            && meta.modified().is_ok_and(|m| m > t)
        {
            return Some(path);
        }
    }
    None
}

/// `built 2026-01-01T12:00:00Z; no source changed since` (or which one did).
fn binaries_fact(repo: &Path, bins: &Path) -> String {
    let Some(t) = built_at(bins) else {
        return "build time unknown".into();
    };
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let when = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .map_or_else(
            || format!("@{secs}"),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        );
    let stale = SOURCES.iter().find_map(|(bin, dirs)| {
        let linked = std::fs::metadata(bins.join(bin)).ok()?.modified().ok()?;
        dirs.iter()
            .find_map(|d| newer_source(&repo.join(d), linked))
    });
    match stale {
        None => format!("built {when}; no daemon source changed since"),
        Some(p) => {
            eprintln!(
                "skr8tr-loadtest: warning: {} is newer than the release binaries; \
                 rebuild with: cargo build --release --locked",
                p.display()
            );
            format!(
                "built {when}; **stale**: {} changed since",
                p.strip_prefix(repo).unwrap_or(&p).display()
            )
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    procs::install_signal_handling()?;
    let repo = repo_root();
    let bins = find_binaries(&args, &repo)?;
    let work = tempfile::Builder::new()
        .prefix("skr8tr-loadtest-")
        .tempdir()
        .context("creating the run directory")?
        .keep();
    let binaries = binaries_fact(&repo, &bins);
    let env = Env { bins, work };
    let spec = LoadSpec {
        threads: args.connections.max(1),
        rate: args.rate,
        path: "/".into(),
    };
    let cpu = LoadSpec {
        threads: 4,
        rate: args.cpu_rate,
        path: "/cpu?ms=20".into(),
    };
    let mut wanted: Vec<Scenario> = args.scenarios.clone();
    if wanted.contains(&Scenario::All) {
        wanted = Scenario::value_variants()
            .iter()
            .copied()
            .filter(|s| *s != Scenario::All)
            .collect();
    }
    wanted.sort_unstable();
    wanted.dedup();

    let command = format!(
        "cargo run --release --locked -p skr8tr-loadtest --{}",
        std::env::args()
            .skip(1)
            .map(|a| format!(" {a}"))
            .collect::<String>()
    );
    let started_utc = report::utc_now();
    let load_before = report::loadavg();
    let started = Instant::now();
    eprintln!(
        "skr8tr-loadtest: binaries from {}, logs in {}",
        env.bins.display(),
        env.work.display()
    );
    let layout = || Layout::loopback(2);
    let ctx = Ctx {
        env: &env,
        layout: &layout,
        multi_host: false,
        spec: spec.clone(),
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for s in wanted {
        if procs::interrupted() {
            break;
        }
        eprintln!("skr8tr-loadtest: scenario {s:?}");
        let rows = match s {
            Scenario::All => Vec::new(),
            Scenario::Rollout => vec![row(
                &ctx.name('a', "rollout of 3 replicas"),
                "0 failed, ≤ 3 s",
                || scenarios::rollout(&ctx),
            )],
            Scenario::ReplicaKill => vec![row(
                &ctx.name('b', "kill -9 of one replica"),
                "failures counted",
                || scenarios::replica_kill(&ctx),
            )],
            Scenario::NodeLoss => vec![row(
                &ctx.name('c', "node loss (agent + workloads kill -9)"),
                "≤ 6 s",
                || scenarios::node_loss(&ctx),
            )],
            Scenario::Restarts => scenarios::restarts(&ctx),
            Scenario::Autoscale => vec![row(
                &ctx.name('e', "autoscale 1 → 3 → 1"),
                "grows to max under load, back to min after; 0 failed",
                || scenarios::autoscale(&ctx, &cpu),
            )],
            Scenario::BrokenRollout => vec![row(
                &ctx.name('f', "rollout to a broken version"),
                "reverted, 0 failed",
                || scenarios::broken_rollout(&ctx),
            )],
            Scenario::MultiHost => multihost::run(&env, &spec),
            Scenario::Up => vec![row(
                &ctx.name('h', "`skr8tr up` of 3 replicas → first 200"),
                "first 200 ≤ 50 ms (SPEC §6); 3 registered ≤ 100 ms (issue 3)",
                || scenarios::up(&ctx),
            )],
        };
        for r in &rows {
            eprintln!("  {}", r.summary());
        }
        outcomes.extend(rows);
    }

    let facts = RunFacts {
        command,
        load: format!(
            "{} through the ingress (1 ingress thread), a client of our own; modest on purpose: 2 cores, shared",
            spec.describe()
        ),
        started_utc,
        binaries,
        wall: started.elapsed(),
        logs: env.work.display().to_string(),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| repo.join("loadtest/results/scenarios.md"));
    if procs::interrupted() {
        eprintln!(
            "skr8tr-loadtest: interrupted; {} not written",
            out.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let md = report::markdown(&repo, &facts, &outcomes, &load_before);
    std::fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("skr8tr-loadtest: wrote {}", out.display());
    print!("{md}");
    let errors = outcomes.iter().any(|o| o.verdict == Verdict::Error);
    Ok(if errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
