//! The real Tower, the real Conductor and real node agents on loopback: what the Conductor
//! decides about replicas that ended (finished jobs, `restart never`), across agent and
//! Conductor restarts. Each workload appends a line to a file per run, so a test counts runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use skr8tr_proto::wire::{Exit, LimitMechanism, ReplicaState, ReplicaStatus};

use crate::util::conductor::Conductor;
use crate::util::daemons::{Agent, AgentOptions, Tower, until};

/// How long a test watches for a run that must not happen: many reconcile passes (250 ms
/// each) and node heartbeats (100 ms), beyond the Conductor's launch grace (3 s).
const WATCH: Duration = Duration::from_secs(5);

fn runs(file: &Path) -> usize {
    std::fs::read_to_string(file).map_or(0, |t| t.lines().count())
}

/// Fails as soon as `file` holds more than `n` runs, within [`WATCH`].
fn stays_at(file: &Path, n: usize, what: &str) {
    let deadline = Instant::now() + WATCH;
    while Instant::now() < deadline {
        let seen = runs(file);
        assert!(seen <= n, "{what}: {seen} runs, expected {n}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(runs(file), n, "{what}");
}

fn agent(tower: &Tower, conductor: &Conductor, dir: &Path) -> Agent {
    let mut opts = AgentOptions::new(tower, dir);
    opts.conductor = Some(conductor.heartbeats);
    opts.stop_workloads_on_exit = false;
    Agent::start(opts)
}

/// A manifest whose app appends `run` to `file`, then runs `then` (shell).
fn appender(name: &str, kind_and_policy: &str, file: &Path, then: &str) -> String {
    format!(
        "app {name}\n{kind_and_policy}  exec /bin/sh\n  args -c \"echo run >> {} && {then}\"\n",
        file.display()
    )
}

fn ended(status: &[ReplicaStatus], app: &str) -> bool {
    status.iter().any(|r| {
        r.app.as_str() == app && matches!(r.state, ReplicaState::Exited | ReplicaState::Failed)
    })
}

/// A Tower and a Conductor on a fresh directory, and the file the workloads count runs in.
struct Cluster {
    dir: tempfile::TempDir,
    file: PathBuf,
    tower: Tower,
    conductor: Conductor,
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tower = Tower::start(None);
        let conductor = Conductor::start(&dir.path().join("conductor"), tower.addr);
        Self {
            file: dir.path().join("runs"),
            dir,
            tower,
            conductor,
        }
    }

    /// The node agent on the cluster's one node directory (a second call after dropping the
    /// first is an agent restart).
    fn node(&self) -> Agent {
        agent(&self.tower, &self.conductor, &self.dir.path().join("node"))
    }

    /// SUBMIT of `manifest`, which must be accepted.
    fn submit(&self, app: &str, manifest: &str) {
        let reply = self.conductor.submit(manifest);
        assert!(
            reply.starts_with(&format!("OK|SUBMITTED|{app}|")),
            "{reply}"
        );
    }

    /// Submits the job `once` (one run appends one line) and waits until it ran and the
    /// Conductor shows it ended.
    fn run_job_once(&self) {
        self.conductor.wait_nodes(1);
        self.submit(
            "once",
            &appender("once", "  type job\n", &self.file, "true"),
        );
        assert!(until(|| runs(&self.file) == 1), "the job never ran");
        assert!(until(|| ended(
            &self.conductor.status(Some("once")),
            "once"
        )));
    }
}

#[test]
fn a_finished_job_does_not_run_again_after_a_node_agent_restart() {
    let c = Cluster::start();
    let first = c.node();
    c.run_job_once();
    drop(first);
    let _second = c.node();
    stays_at(&c.file, 1, "after the agent restart");
    let status = c.conductor.status(Some("once"));
    assert!(
        status.iter().any(|r| r.exit == Some(Exit::Code(0))),
        "status shows the run's exit code: {status:?}"
    );
}

#[test]
fn a_finished_job_does_not_run_again_after_a_conductor_restart() {
    let mut c = Cluster::start();
    let _node = c.node();
    c.run_job_once();
    c.conductor.restart();
    c.conductor.wait_nodes(1);
    stays_at(&c.file, 1, "after the Conductor restart");
    let status = c.conductor.status(Some("once"));
    assert!(ended(&status, "once"), "{status:?}");
}

#[test]
fn a_dead_restart_never_app_is_not_placed_again() {
    let c = Cluster::start();
    let _node = c.node();
    c.conductor.wait_nodes(1);
    c.submit(
        "brittle",
        &appender("brittle", "  restart never\n", &c.file, "exit 3"),
    );
    assert!(until(|| runs(&c.file) >= 1), "the app never ran");
    stays_at(&c.file, 1, "a `restart never` app that died");
    let failed_with_3 = |r: &ReplicaStatus| {
        r.app.as_str() == "brittle"
            && r.state == ReplicaState::Failed
            && r.exit == Some(Exit::Code(3))
    };
    let status = c.conductor.status(Some("brittle"));
    assert!(status.iter().any(failed_with_3), "{status:?}");
}

/// The hardest order: the job finishes while the Conductor is down (so it hears neither DIED
/// nor a heartbeat listing it), then the agent restarts, then the Conductor comes back. Only
/// the node's record of how the job ended tells the Conductor that it finished.
#[test]
fn a_job_that_finished_while_the_conductor_was_down_does_not_run_again() {
    let mut c = Cluster::start();
    let go = c.dir.path().join("go");
    let first = c.node();
    c.conductor.wait_nodes(1);
    let wait_for_go = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; echo run >> {}",
        go.display(),
        c.file.display()
    );
    c.submit(
        "late",
        &format!("app late\n  type job\n  exec /bin/sh\n  args -c \"{wait_for_go}\"\n"),
    );
    let running =
        |r: &ReplicaStatus| matches!(r.state, ReplicaState::Starting | ReplicaState::Healthy);
    assert!(until(|| c
        .conductor
        .status(Some("late"))
        .iter()
        .any(running)));
    c.conductor.stop();
    std::fs::write(&go, "").unwrap();
    assert!(until(|| runs(&c.file) == 1), "the job never ran");
    drop(first);
    let _second = c.node();
    c.conductor = c.conductor.start_again();
    c.conductor.wait_nodes(1);
    stays_at(&c.file, 1, "after the Conductor came back");
    assert!(ended(&c.conductor.status(Some("late")), "late"));
}

/// A replica killed by the kernel for going over its `ram` reaches the Conductor's `status` as
/// `oom-killed` (here a `restart never` app, so it stays ended and says why).
#[test]
fn an_oom_killed_replica_shows_as_such_in_the_conductors_status() {
    let c = Cluster::start();
    let _node = c.node();
    let conductor = &c.conductor;
    conductor.wait_nodes(1);
    let manifest = "app hog\n  restart never\n  ram 32mb\n  exec /usr/bin/awk\n  args 'BEGIN { s = \"x\"; while (1) s = s s }'\n";
    c.submit("hog", manifest);
    let oom = || {
        conductor
            .status(Some("hog"))
            .iter()
            .any(|r| r.state == ReplicaState::Failed && r.exit == Some(Exit::OomKilled))
    };
    assert!(until(oom), "{:?}", conductor.status(Some("hog")));
    // and what enforced the limit, as the node reported it
    let status = conductor.status(Some("hog"));
    assert!(
        matches!(
            status[0].limits,
            Some(LimitMechanism::CgroupV1 | LimitMechanism::CgroupV2)
        ),
        "{status:?}"
    );
}

/// `gpu N` apps go only to nodes that report enough free GPUs: here one node declares none and
/// one declares two (`--gpus`), so of three one-GPU replicas two run, both there, and the
/// third waits.
#[test]
fn gpu_apps_are_placed_only_on_nodes_with_free_gpus() {
    let c = Cluster::start();
    let conductor = &c.conductor;
    let node = |name: &str, gpus: u32| {
        let mut opts = AgentOptions::new(&c.tower, &c.dir.path().join(name));
        opts.conductor = Some(conductor.heartbeats);
        opts.gpus = Some(gpus);
        Agent::start(opts)
    };
    let _plain = node("plain", 0);
    let gpu_node = node("gpu", 2);
    conductor.wait_nodes(2);
    c.submit(
        "ml",
        "app ml\n  gpu 1\n  replicas 3\n  exec /bin/sleep\n  args 30\n",
    );
    let placed = || -> Vec<String> {
        conductor
            .status(Some("ml"))
            .iter()
            .filter_map(|r| r.node.as_ref().map(ToString::to_string))
            .collect()
    };
    assert!(until(|| placed().len() == 2), "{:?}", placed());
    // many reconcile passes later, still two, both on the node with GPUs
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let nodes = placed();
        assert_eq!(nodes.len(), 2, "{nodes:?}");
        assert!(
            nodes.iter().all(|n| *n == gpu_node.node.to_string()),
            "{nodes:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
