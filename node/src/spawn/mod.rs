//! Starting one process of a replica: app spec → command plan ([`plan`]) → checked program →
//! `build` steps → fork+exec in its own process group, with its limits applied.
//!
//! ```text
//! App ──plan()──▶ CommandPlan ──check program──▶ build (sh -c, once per launch)
//!                                                  │
//!        log file (O_APPEND) as stdout+stderr ◀────┤ stdin /dev/null, process_group(0)
//!        cgroup join + rlimit before exec ◀────────┘ every descriptor close-on-exec
//! ```
//! Invariants: a missing or non-executable program is an error, never "launched"; the child
//! has no descriptor of the agent but stdin/stdout/stderr; its environment is exactly the
//! plan's. `workload_command` is the one place a workload's child is set up: its program,
//! its `build` steps and `exec` (module `exec`) alike. This module does not wait for, watch or
//! stop the process (see `process`), nor decide when to start one (see `replica`).

pub mod disk;
pub mod plan;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use skr8tr_proto::manifest::App;
use skr8tr_proto::name::ReplicaId;

use crate::config::VmAccel;
use crate::limits::{AppliedLimits, CgroupBackend, LimitEnforcement};
use crate::logs::{self, LogError};
use crate::process::termination_of;
use crate::supervise::Termination;
use crate::sys;

pub use plan::{CommandPlan, PlanContext, Resolver};

/// The shell of `build` steps and `exec`.
const SHELL: &str = "/bin/sh";

/// Why a replica's process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("app {app} names no program to run (no `exec`, no `build {{ out }}`)")]
    NoProgram { app: String },
    #[error("program {program} not found")]
    NotFound { program: String },
    #[error("program {} is not an executable file", program.display())]
    NotExecutable { program: PathBuf },
    #[error("no wasm runtime on PATH (looked for {})", plan::WASM_RUNTIMES.join(", "))]
    NoWasmRuntime,
    #[error(
        "{runtime} passes variables on its command line, where any local user can read them: \
         it does not run apps with a `secret` (install wasmtime for those)"
    )]
    WasmSecrets { runtime: String },
    #[error(transparent)]
    Disk(#[from] disk::DiskError),
    #[error("vm net {net:?} is not supported by this hypervisor (use a tap device name)")]
    VmNet { net: String },
    #[error("cannot create volume directory {}", path.display())]
    Volume {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("build step {step} ({command:?}) ended with {termination}")]
    BuildFailed {
        step: usize,
        command: String,
        termination: Termination,
    },
    #[error("cannot start {}", program.display())]
    SpawnFailed {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Everything needed to start a process of a replica.
#[derive(Debug, Clone, Copy)]
pub struct SpawnSpec<'a> {
    pub app: &'a App,
    pub replica: &'a ReplicaId,
    pub generation: u64,
    pub port: Option<u16>,
    pub state_dir: &'a Path,
    pub log_path: &'a Path,
    pub cgroups: &'a CgroupBackend,
    pub vm_accel: VmAccel,
}

/// A started process.
#[derive(Debug)]
pub struct Spawned {
    pub child: tokio::process::Child,
    pub pid: u32,
    /// `/proc/PID/stat` start time, recorded to recognise the process after an agent restart.
    pub start_time: u64,
    pub limits: AppliedLimits,
    /// The cgroup directories created for it (removed once it has ended).
    pub cgroup_dirs: Vec<PathBuf>,
}

/// Looks programs up on a `PATH` value, and `skr8tr_serve` next to the agent first.
#[derive(Debug, Clone)]
pub struct SystemResolver {
    path: OsString,
    exe_dir: Option<PathBuf>,
}

impl SystemResolver {
    /// A resolver for the `PATH` of `env` (a plan's environment).
    #[must_use]
    pub fn for_env(env: &[(String, OsString)]) -> Self {
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or_else(|| plan::DEFAULT_PATH.into(), |(_, v)| v.clone());
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Self { path, exe_dir }
    }
}

impl Resolver for SystemResolver {
    fn find(&self, name: &str) -> Option<PathBuf> {
        std::env::split_paths(&self.path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable_file(p))
    }

    fn find_serve(&self) -> Option<PathBuf> {
        self.exe_dir
            .as_ref()
            .map(|d| d.join(plan::SERVE_BINARY))
            .filter(|p| is_executable_file(p))
            .or_else(|| self.find(plan::SERVE_BINARY))
    }
}

fn is_executable_file(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Checks that `program` exists and is an executable regular file.
///
/// # Errors
/// [`SpawnError::NotFound`] or [`SpawnError::NotExecutable`].
pub fn check_program(program: &Path) -> Result<(), SpawnError> {
    match fs::metadata(program) {
        Err(_) => Err(SpawnError::NotFound {
            program: program.display().to_string(),
        }),
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(SpawnError::NotExecutable {
            program: program.to_path_buf(),
        }),
    }
}

/// The agent's variables a workload inherits ([`plan::INHERITED_ENV`]).
#[must_use]
pub fn inherited_env() -> Vec<(String, OsString)> {
    plan::INHERITED_ENV
        .iter()
        .filter_map(|k| std::env::var_os(k).map(|v| ((*k).to_owned(), v)))
        .collect()
}

/// What a plan of a replica reads besides its app: its volume directories, the directory for
/// generated files, and the inherited part of the agent's environment.
struct PlanInputs {
    volume_dirs: Vec<PathBuf>,
    work_dir: PathBuf,
    inherited: Vec<(String, OsString)>,
    accel: &'static str,
    disk_format: Option<String>,
}

impl PlanInputs {
    fn of(spec: &SpawnSpec<'_>) -> Self {
        Self {
            volume_dirs: plan::volume_dirs(spec.app, spec.state_dir),
            work_dir: vm_work_dir(spec.state_dir),
            inherited: inherited_env(),
            accel: match spec.vm_accel {
                VmAccel::Kvm => "kvm",
                VmAccel::Tcg => "tcg",
                VmAccel::Auto if kvm_usable() => "kvm:tcg",
                VmAccel::Auto => "tcg",
            },
            disk_format: None,
        }
    }

    fn context<'a>(&'a self, spec: &SpawnSpec<'a>) -> PlanContext<'a> {
        PlanContext {
            replica: spec.replica,
            generation: spec.generation,
            port: spec.port,
            volume_dirs: &self.volume_dirs,
            work_dir: &self.work_dir,
            inherited: &self.inherited,
            vm: plan::VmHost {
                accel: self.accel,
                disk_format: self.disk_format.as_deref(),
            },
        }
    }
}

/// Where generated VM files live (a Firecracker config, a QEMU monitor socket): inside the
/// node's state directory, never a predictable path under /tmp.
#[must_use]
pub fn vm_work_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("vm")
}

/// Whether this process can open `/dev/kvm` for reading and writing.
fn kvm_usable() -> bool {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// The replica's environment (as in its process), for `exec` into it.
#[must_use]
pub fn replica_environment(spec: &SpawnSpec<'_>) -> Vec<(String, OsString)> {
    let inputs = PlanInputs::of(spec);
    plan::environment(spec.app, &inputs.context(spec))
}

/// Plans the process of `spec` and checks everything that can be checked before a fork:
/// volume directories created, helper files written, the program executable.
///
/// # Errors
/// See [`SpawnError`].
pub fn prepare(spec: &SpawnSpec<'_>) -> Result<CommandPlan, SpawnError> {
    let inputs = PlanInputs::of(spec);
    for dir in &inputs.volume_dirs {
        fs::create_dir_all(dir).map_err(|source| SpawnError::Volume {
            path: dir.clone(),
            source,
        })?;
    }
    let mut inputs = inputs;
    if let Some(rootfs) = spec.app.vm.as_ref().and_then(|vm| vm.rootfs.as_deref()) {
        let env = plan::environment(spec.app, &inputs.context(spec));
        let qemu_img = SystemResolver::for_env(&env).find("qemu-img");
        inputs.disk_format = Some(disk::format(Path::new(rootfs), qemu_img.as_deref())?);
    }
    if spec.app.vm.is_some() {
        fs::create_dir_all(&inputs.work_dir).map_err(|source| SpawnError::WriteFile {
            path: inputs.work_dir.clone(),
            source,
        })?;
        // A monitor socket left by a QEMU that was killed would stop the next one binding.
        let _ = fs::remove_file(plan::qmp_socket(&inputs.work_dir, spec.replica));
    }
    let ctx = inputs.context(spec);
    let env = plan::environment(spec.app, &ctx);
    let planned = plan::plan(spec.app, &ctx, &SystemResolver::for_env(&env))?;
    for (path, bytes) in &planned.files {
        let write = |p: &Path| {
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(p, bytes)
        };
        write(path).map_err(|source| SpawnError::WriteFile {
            path: path.clone(),
            source,
        })?;
    }
    Ok(planned)
}

/// Runs the app's `build { run … }` commands in order with `sh -c`, output into the replica's
/// log, before its first process starts.
///
/// # Errors
/// [`SpawnError::BuildFailed`] at the first step that does not exit 0.
///
/// # Cancel safety
/// Not cancel safe: a dropped future leaves the running step to finish on its own.
pub async fn run_build(spec: &SpawnSpec<'_>, env: &[(String, OsString)]) -> Result<(), SpawnError> {
    let Some(build) = &spec.app.build else {
        return Ok(());
    };
    for (i, command) in build.run.iter().enumerate() {
        logs::append_note(spec.log_path, &format!("build step {}: {command}", i + 1));
        let (out, err) = log_outputs(spec.log_path)?;
        let status = shell_command(command, env, out, err)
            .spawn()
            .map_err(|source| SpawnError::SpawnFailed {
                program: PathBuf::from(SHELL),
                source,
            })?
            .wait()
            .await;
        let termination = status.map_or(Termination::Unknown, termination_of);
        if !termination.is_success() {
            return Err(SpawnError::BuildFailed {
                step: i + 1,
                command: command.clone(),
                termination,
            });
        }
    }
    Ok(())
}

/// Starts the process of `planned` for `spec`: stdout/stderr appended to the log file, in its
/// own process group, in its cgroups (or under an rlimit) from before exec.
///
/// If joining the cgroups fails in the child, the spawn is retried once without them (limits
/// then fall back to an rlimit), so a limit is never reported that does not hold.
///
/// # Errors
/// [`SpawnError::SpawnFailed`] (or `NotFound`/`NotExecutable` when exec says so), or a log
/// file error.
pub fn spawn(spec: &SpawnSpec<'_>, planned: &CommandPlan) -> Result<Spawned, SpawnError> {
    check_program(&planned.program)?;
    let ram = spec.app.ram;
    let lease = match spec.cgroups.prepare(spec.replica, ram, spec.app.cpu) {
        Ok(lease) => lease,
        Err(e) => {
            tracing::warn!(replica = %spec.replica, error = %e, "cgroup setup failed; falling back to rlimit");
            None
        }
    };
    if let Some(mut lease) = lease {
        let applied = lease.applied();
        let setup = sys::ChildSetup {
            cgroup_procs: lease.procs_fds(),
            data_limit: ram
                .filter(|_| applied.ram == LimitEnforcement::None)
                .map(|r| r.0),
        };
        match start(spec, planned, setup) {
            Ok((child, pid)) => {
                lease.close_procs();
                let mut limits = applied;
                if ram.is_some() && limits.ram == LimitEnforcement::None {
                    limits.ram = LimitEnforcement::Rlimit;
                }
                return Ok(finish(child, pid, limits, lease.dirs().to_vec()));
            }
            Err(e) => {
                // Joining the cgroup may be what failed (it happens in the child, before
                // exec); the retry without it tells whether the program itself is at fault.
                tracing::warn!(replica = %spec.replica, error = %e, "start inside cgroup failed; retrying with rlimit");
                crate::limits::remove_cgroup_dirs(lease.dirs());
            }
        }
    }
    let setup = sys::ChildSetup {
        cgroup_procs: Vec::new(),
        data_limit: ram.map(|r| r.0),
    };
    let (child, pid) = start(spec, planned, setup)?;
    let limits = AppliedLimits {
        ram: if ram.is_some() {
            LimitEnforcement::Rlimit
        } else {
            LimitEnforcement::None
        },
        cpu: LimitEnforcement::None,
    };
    Ok(finish(child, pid, limits, Vec::new()))
}

fn finish(
    child: tokio::process::Child,
    pid: u32,
    limits: AppliedLimits,
    cgroup_dirs: Vec<PathBuf>,
) -> Spawned {
    // The child is not reaped yet (even if it already exited), so its stat is readable.
    let start_time = crate::stats::read_pid_stat(pid).map_or(0, |s| s.start_time);
    Spawned {
        child,
        pid,
        start_time,
        limits,
        cgroup_dirs,
    }
}

/// A command for a process of a replica (its program, a `build` step, an `exec`): exactly
/// `env`, stdin `/dev/null`, stdout and stderr to `out` and `err`, in its own process group,
/// with `setup` done in the child before exec and no descriptor of the agent's inherited.
pub(crate) fn workload_command(
    program: &Path,
    args: &[impl AsRef<OsStr>],
    env: &[(String, OsString)],
    out: impl Into<Stdio>,
    err: impl Into<Stdio>,
    setup: sys::ChildSetup,
) -> tokio::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    sys::install_child_setup(&mut cmd, setup);
    tokio::process::Command::from(cmd)
}

/// `sh -c command` as a [`workload_command`] without limits.
pub(crate) fn shell_command(
    command: &str,
    env: &[(String, OsString)],
    out: impl Into<Stdio>,
    err: impl Into<Stdio>,
) -> tokio::process::Command {
    workload_command(
        Path::new(SHELL),
        &["-c", command],
        env,
        out,
        err,
        sys::ChildSetup::default(),
    )
}

/// The replica's log file opened twice for appending: stdout and stderr of a process.
fn log_outputs(log_path: &Path) -> Result<(fs::File, fs::File), SpawnError> {
    let log = logs::open_for_append(log_path)?;
    let log2 = log.try_clone().map_err(|source| LogError::Open {
        path: log_path.to_path_buf(),
        source,
    })?;
    Ok((log, log2))
}

fn start(
    spec: &SpawnSpec<'_>,
    planned: &CommandPlan,
    setup: sys::ChildSetup,
) -> Result<(tokio::process::Child, u32), SpawnError> {
    let (out, err) = log_outputs(spec.log_path)?;
    let child = workload_command(
        &planned.program,
        &planned.args,
        &planned.env,
        out,
        err,
        setup,
    )
    .spawn()
    .map_err(|source| match source.kind() {
        io::ErrorKind::NotFound if !planned.program.exists() => SpawnError::NotFound {
            program: planned.program.display().to_string(),
        },
        io::ErrorKind::PermissionDenied => SpawnError::NotExecutable {
            program: planned.program.clone(),
        },
        _ => SpawnError::SpawnFailed {
            program: planned.program.clone(),
            source,
        },
    })?;
    let pid = child.id().ok_or_else(|| SpawnError::SpawnFailed {
        program: planned.program.clone(),
        source: io::Error::other("spawned child has no pid"),
    })?;
    Ok((child, pid))
}
