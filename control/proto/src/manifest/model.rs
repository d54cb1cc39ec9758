//! The validated, typed form of a `.skr8tr` manifest: what the parser produces, the printer
//! consumes, the Conductor schedules and the node runs.
//!
//! Every default is already applied here (an `App` says exactly what will run), so the
//! normalised printer writes every field and `parse(print(m)) == m` holds. Values are
//! range-checked by the parser; code that builds these types by hand (tests, generators) must
//! respect the same ranges, which the constants below state.

use std::fmt;
use std::time::Duration;

use crate::name::AppName;
use crate::route::RouteSpec;

/// Highest `replicas` accepted.
pub const MAX_REPLICAS: u32 = 10_000;
/// Default `drain` grace between SIGTERM and SIGKILL.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(2);
/// Default `settle` (used by a rollout when the app has no health block): the seed's figure.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(8);
/// Default `healthy-deadline` of a rollout.
pub const DEFAULT_HEALTHY_DEADLINE: Duration = Duration::from_secs(60);
/// Default health `interval`.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// Default health `timeout`.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Default health `retries`.
pub const DEFAULT_HEALTH_RETRIES: u32 = 3;
/// Default autoscale `cooldown`.
pub const DEFAULT_SCALE_COOLDOWN: Duration = Duration::from_secs(30);

/// A whole manifest file: one or more apps, in file order, names unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub apps: Vec<App>,
}

/// One `app NAME` block with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub name: AppName,
    /// `type`: what kind of workload this is.
    pub kind: WorkloadKind,
    /// `exec` (alias `bin`): the binary (or, for `wasm`, the module). `None` only for apps that
    /// run something else: a `serve { static }` app or a `vm`.
    pub exec: Option<String>,
    /// `args`, split shell-style.
    pub args: Vec<String>,
    /// `port`: `None` when the app listens on no port.
    pub port: Option<PortSpec>,
    /// `replicas`, 0..=[`MAX_REPLICAS`].
    pub replicas: u32,
    /// `ram` limit in bytes.
    pub ram: Option<ByteSize>,
    /// `cpu`/`cpus` limit.
    pub cpu: Option<CpuLimit>,
    /// `gpu`: number of GPUs wanted.
    pub gpu: Option<u32>,
    /// `restart` policy (default `always` for services, `on-failure` for jobs).
    pub restart: RestartPolicy,
    /// `drain`: grace between SIGTERM and SIGKILL.
    pub drain: Duration,
    pub health: Option<Health>,
    pub scale: Option<Scale>,
    pub rollout: RolloutPolicy,
    /// `env { KEY value }`, in file order, keys unique.
    pub env: Vec<EnvVar>,
    /// `secret { KEY value }`, in file order, keys unique (and distinct from `env` keys).
    pub secrets: Vec<SecretVar>,
    /// `volume { path; env }` blocks, in file order.
    pub volumes: Vec<Volume>,
    /// `route [HOST]/PREFIX [{ … }]`: the edge routes this app serves, in file order, targets
    /// unique (SPEC §7.1).
    pub routes: Vec<RouteSpec>,
    pub build: Option<Build>,
    pub serve: Option<Serve>,
    pub vm: Option<Vm>,
    /// `schedule "<cron>"` (and `timezone`), for a `type job`: a run at each occurrence, never
    /// two at once (SPEC §7.5).
    pub schedule: Option<Schedule>,
}

/// When a scheduled job runs: a cron pattern (minute hour day-of-month month day-of-week, an
/// optional seconds field first) read in an IANA time zone (UTC unless `timezone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The pattern as written (checked to parse).
    pub cron: String,
    /// The IANA zone name (checked to exist), `UTC` by default.
    pub timezone: String,
}

impl Schedule {
    /// The first occurrence strictly after Unix milliseconds `after_ms`, in Unix milliseconds;
    /// `None` when the pattern never occurs again (or did not parse, which validation rules
    /// out).
    #[must_use]
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        use chrono::TimeZone as _;
        let cron = parse_cron(&self.cron).ok()?;
        let tz: chrono_tz::Tz = self.timezone.parse().ok()?;
        let after = chrono::Utc
            .timestamp_millis_opt(i64::try_from(after_ms).ok()?)
            .single()?
            .with_timezone(&tz);
        let next = cron.find_next_occurrence(&after, false).ok()?;
        u64::try_from(next.timestamp_millis()).ok()
    }
}

/// Checks a cron pattern for `schedule`: it parses, and it occurs (`0 0 30 2 *` never does).
pub(super) fn check_cron(text: &str) -> Result<(), String> {
    let cron = parse_cron(text)?;
    let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    cron.find_next_occurrence(&epoch, false)
        .map(|_| ())
        .map_err(|_| "it never occurs".to_owned())
}

/// Parses a cron pattern: five fields, or six with seconds first; `@daily` and the like.
pub(super) fn parse_cron(text: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(text)
        .map_err(|e| e.to_string())
}

/// `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// `process` or `service` (the default): runs until stopped.
    Service,
    /// `job`: runs to completion and reports its exit code.
    Job,
    /// `wasm`: `exec` is a module run by a wasm runtime found on PATH.
    Wasm,
    /// `vm`: QEMU or Firecracker started from the `vm` block.
    Vm,
}

impl WorkloadKind {
    /// The keyword the printer writes.
    #[must_use]
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Job => "job",
            Self::Wasm => "wasm",
            Self::Vm => "vm",
        }
    }

    /// The restart policy an app of this kind gets when the manifest names none.
    #[must_use]
    pub fn default_restart(self) -> RestartPolicy {
        match self {
            Self::Job => RestartPolicy::OnFailure,
            Self::Service | Self::Wasm | Self::Vm => RestartPolicy::Always,
        }
    }
}

/// `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// `port N` (1..=65535): every replica listens on N, so at most one replica per node.
    Fixed(u16),
    /// `port auto`: the node picks a free port per replica and passes it in `PORT`.
    Auto,
}

/// A size in bytes, written `512k`, `256mb`, `4GB` (binary units, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// A CPU limit in thousandths of a core (`cpu 0.5` is 500, `cpus 2` is 2000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuLimit {
    pub millicores: u32,
}

/// A percentage, 0..=100, written `80` or `80%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(pub u8);

/// `restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The keyword the printer writes.
    #[must_use]
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::OnFailure => "on-failure",
            Self::Never => "never",
        }
    }
}

/// `health { … }` or the one-line `health GET /path 200`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub check: HealthCheck,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
}

/// `check GET /path STATUS` or `check tcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheck {
    /// An HTTP GET of `path` (starting with `/`) that must answer `status` (100..=599).
    Http { path: String, status: u16 },
    /// A TCP connect to the replica's port.
    Tcp,
}

/// `scale { min; max; cpu-above; cpu-below; cooldown }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    pub min: u32,
    pub max: u32,
    pub cpu_above: Percent,
    pub cpu_below: Percent,
    pub cooldown: Duration,
}

/// `rollout { settle; healthy-deadline; auto-revert }`, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutPolicy {
    pub settle: Duration,
    pub healthy_deadline: Duration,
    pub auto_revert: bool,
    /// `canary N`: a rollout first runs N new replicas beside the old set and waits there for
    /// `skr8tr promote` (or `skr8tr rollback`); 0: none, the rollout goes straight through.
    pub canary: u32,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        Self {
            settle: DEFAULT_SETTLE,
            healthy_deadline: DEFAULT_HEALTHY_DEADLINE,
            auto_revert: true,
            canary: 0,
        }
    }
}

/// One `env` entry. Keys are `[A-Za-z_][A-Za-z0-9_]*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
}

/// One `secret` entry: like an env var, but its value is never logged or shown.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretVar {
    pub key: String,
    pub value: SecretValue,
}

impl fmt::Debug for SecretVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretVar")
            .field("key", &self.key)
            .field("value", &self.value)
            .finish()
    }
}

/// A secret's value. `Debug` and `Display` print `<redacted>`; only [`SecretValue::expose`]
/// gives the text, and only the node (building a child's environment) and the wire encoder
/// should call it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret text itself. Never log the result.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `volume { path DIR; env KEY }`: a directory the node creates if missing and passes to the
/// app in the environment variable `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub path: String,
    pub env: Option<String>,
}

/// `build { run CMD…; out PATH }`: shell commands run (in order) before exec, and the artefact
/// they produce, which becomes the binary when `exec` is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub run: Vec<String>,
    pub out: Option<String>,
}

/// `serve { static DIR; port N }`: the app is `skr8tr_serve` serving DIR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serve {
    pub static_dir: String,
    pub port: Option<u16>,
    /// `spa`: a path that names no file is answered with the root's `index.html` (a
    /// single-page app's client-side routes).
    pub spa: bool,
    /// `cache DURATION`: `Cache-Control: public, max-age=N`; without it files are sent with
    /// `no-cache` (clients revalidate, cheaply, with the ETag).
    pub cache: Option<Duration>,
}

/// `vm { hypervisor; kernel; rootfs; vcpus; memory; net; args }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub hypervisor: Hypervisor,
    pub kernel: String,
    /// `initrd PATH`: an initramfs the kernel starts from (a guest that needs no disk).
    pub initrd: Option<String>,
    pub rootfs: Option<String>,
    pub vcpus: u32,
    pub memory: ByteSize,
    pub net: Option<String>,
    pub args: Vec<String>,
}

/// `vm { hypervisor … }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hypervisor {
    Qemu,
    Firecracker,
}

impl Hypervisor {
    /// The keyword the printer writes.
    #[must_use]
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Qemu => "qemu",
            Self::Firecracker => "firecracker",
        }
    }
}

impl App {
    /// An app with this name and every default, as `app NAME` followed by `exec PATH` parses.
    #[must_use]
    pub fn with_defaults(name: AppName, exec: Option<String>) -> Self {
        Self {
            name,
            kind: WorkloadKind::Service,
            exec,
            args: Vec::new(),
            port: None,
            replicas: 1,
            ram: None,
            cpu: None,
            gpu: None,
            restart: RestartPolicy::Always,
            drain: DEFAULT_DRAIN,
            health: None,
            scale: None,
            rollout: RolloutPolicy::default(),
            env: Vec::new(),
            secrets: Vec::new(),
            volumes: Vec::new(),
            routes: Vec::new(),
            build: None,
            serve: None,
            vm: None,
            schedule: None,
        }
    }

    /// The binary the node will exec: `exec`, else the `build` output.
    #[must_use]
    pub fn program(&self) -> Option<&str> {
        self.exec
            .as_deref()
            .or_else(|| self.build.as_ref().and_then(|b| b.out.as_deref()))
    }

    /// The port its replicas listen on: `serve { port }` when set (the static server binds
    /// it whatever `port` says), else `port`. Placement keeps two fixed ones apart on a node.
    #[must_use]
    pub fn listen_port(&self) -> Option<PortSpec> {
        match self.serve.as_ref().and_then(|s| s.port) {
            Some(port) => Some(PortSpec::Fixed(port)),
            None => self.port,
        }
    }
}
