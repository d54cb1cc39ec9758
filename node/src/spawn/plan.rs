//! App + replica → the exact command line, environment and helper files of its process, as a
//! pure function (program lookup goes through a [`Resolver`], so tests need no PATH).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use skr8tr_proto::manifest::{App, Hypervisor, Vm, WorkloadKind};
use skr8tr_proto::name::ReplicaId;

use super::SpawnError;

/// The agent environment variables a workload inherits; everything else of the agent's
/// environment (keys, tokens, `SKR8TR_*` settings) stays out of workloads.
pub const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR",
];
/// `PATH` when neither the agent nor the manifest sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The static file server's binary name.
pub const SERVE_BINARY: &str = "skr8tr_serve";
/// The wasm runtimes the node knows how to drive, in order of preference: the compiling
/// runtimes first (fast), then wasmi (an interpreter: slower, but a small pure-Rust build).
pub const WASM_RUNTIMES: &[&str] = &["wasmtime", "wasmer", "wasmi"];

/// Finds programs by name.
pub trait Resolver {
    /// A program named without a `/`, searched on the effective `PATH`.
    fn find(&self, name: &str) -> Option<PathBuf>;
    /// `skr8tr_serve`: next to the agent's own executable, else on `PATH`.
    fn find_serve(&self) -> Option<PathBuf>;
}

/// What the plan needs besides the app.
#[derive(Debug, Clone)]
pub struct PlanContext<'a> {
    pub replica: &'a ReplicaId,
    pub generation: u64,
    /// The port the replica must listen on (fixed, or chosen for `port auto`).
    pub port: Option<u16>,
    /// The app's volume directories, in `app.volumes` order (see [`volume_dirs`]).
    pub volume_dirs: &'a [PathBuf],
    /// A directory for generated files (a Firecracker config).
    pub work_dir: &'a Path,
    /// The inherited part of the agent's environment ([`INHERITED_ENV`]).
    pub inherited: &'a [(String, OsString)],
    /// How this node runs VMs.
    pub vm: VmHost<'a>,
}

/// What the node found about running VMs.
#[derive(Debug, Clone, Copy)]
pub struct VmHost<'a> {
    /// QEMU's `-machine accel=`: `kvm:tcg`, `kvm` or `tcg`.
    pub accel: &'a str,
    /// The format of the VM's `rootfs`, detected (`raw`, `qcow2`, …).
    pub disk_format: Option<&'a str>,
}

/// The QEMU monitor (QMP) socket of `replica` in `work_dir`: the node presses the guest's
/// power button through it before it signals QEMU.
#[must_use]
pub fn qmp_socket(work_dir: &Path, replica: &ReplicaId) -> PathBuf {
    work_dir.join(format!("{replica}.qmp"))
}

/// One process to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPlan {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The complete environment (the child's is cleared first), keys unique.
    pub env: Vec<(String, OsString)>,
    /// Files to write before the process starts.
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

/// Where each volume lives: absolute paths as written, relative ones under
/// `STATE_DIR/volumes/`.
#[must_use]
pub fn volume_dirs(app: &App, state_dir: &Path) -> Vec<PathBuf> {
    app.volumes
        .iter()
        .map(|v| {
            let p = Path::new(&v.path);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                state_dir.join("volumes").join(p)
            }
        })
        .collect()
}

/// The replica's environment, lowest precedence first: inherited agent variables, `env`,
/// `secret`, volume variables, then `PORT`, `SKR8TR_APP`, `SKR8TR_REPLICA` and
/// `SKR8TR_GENERATION`, which the node owns.
#[must_use]
pub fn environment(app: &App, ctx: &PlanContext<'_>) -> Vec<(String, OsString)> {
    let mut env: Vec<(String, OsString)> = Vec::new();
    let mut set = |k: &str, v: OsString| match env.iter_mut().find(|(key, _)| key == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k.to_owned(), v)),
    };
    for (k, v) in ctx.inherited {
        set(k, v.clone());
    }
    for var in &app.env {
        set(&var.key, var.value.clone().into());
    }
    for secret in &app.secrets {
        set(&secret.key, secret.value.expose().into());
    }
    for (volume, dir) in app.volumes.iter().zip(ctx.volume_dirs) {
        if let Some(key) = &volume.env {
            set(key, dir.clone().into_os_string());
        }
    }
    if let Some(port) = ctx.port {
        set("PORT", port.to_string().into());
    }
    set("SKR8TR_APP", app.name.as_str().into());
    set("SKR8TR_REPLICA", ctx.replica.as_str().into());
    set("SKR8TR_GENERATION", ctx.generation.to_string().into());
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".to_owned(), DEFAULT_PATH.into()));
    }
    env
}

/// The command that runs `app` for the replica described by `ctx`.
///
/// # Errors
/// [`SpawnError::NoProgram`], [`SpawnError::NotFound`] (a bare program name not on `PATH`, or
/// no hypervisor / `skr8tr_serve`), [`SpawnError::NoWasmRuntime`], [`SpawnError::VmNet`].
pub fn plan(
    app: &App,
    ctx: &PlanContext<'_>,
    resolver: &dyn Resolver,
) -> Result<CommandPlan, SpawnError> {
    let env = environment(app, ctx);
    let mut files = Vec::new();
    let (program, args) = if let Some(serve) = &app.serve {
        let program = resolver.find_serve().ok_or_else(|| SpawnError::NotFound {
            program: SERVE_BINARY.to_owned(),
        })?;
        let mut args: Vec<OsString> = vec!["--dir".into(), serve.static_dir.clone().into()];
        if let Some(port) = serve.port.or(ctx.port) {
            args.extend(["--port".into(), port.to_string().into()]);
        }
        if serve.spa {
            args.push("--spa".into());
        }
        if let Some(cache) = serve.cache {
            args.extend(["--max-age".into(), cache.as_secs().to_string().into()]);
        }
        args.extend(app.args.iter().map(OsString::from));
        (program, args)
    } else {
        match app.kind {
            WorkloadKind::Service | WorkloadKind::Job => {
                let exec = app.program().ok_or_else(|| SpawnError::NoProgram {
                    app: app.name.to_string(),
                })?;
                let program = resolve(exec, resolver)?;
                (program, app.args.iter().map(OsString::from).collect())
            }
            WorkloadKind::Wasm => wasm(app, ctx, &env, resolver)?,
            WorkloadKind::Vm => {
                let vm = app.vm.as_ref().ok_or_else(|| SpawnError::NoProgram {
                    app: app.name.to_string(),
                })?;
                match vm.hypervisor {
                    Hypervisor::Qemu => qemu(app, vm, ctx, resolver)?,
                    Hypervisor::Firecracker => {
                        let (program, args, file) = firecracker(app, vm, ctx, resolver)?;
                        files.push(file);
                        (program, args)
                    }
                }
            }
        }
    };
    Ok(CommandPlan {
        program,
        args,
        env,
        files,
    })
}

/// A path with a `/` is used as written (its existence is checked at spawn); a bare name is
/// looked up on `PATH`.
fn resolve(program: &str, resolver: &dyn Resolver) -> Result<PathBuf, SpawnError> {
    if program.contains('/') {
        Ok(PathBuf::from(program))
    } else {
        resolver.find(program).ok_or_else(|| SpawnError::NotFound {
            program: program.to_owned(),
        })
    }
}

fn wasm(
    app: &App,
    ctx: &PlanContext<'_>,
    env: &[(String, OsString)],
    resolver: &dyn Resolver,
) -> Result<(PathBuf, Vec<OsString>), SpawnError> {
    let module = app.program().ok_or_else(|| SpawnError::NoProgram {
        app: app.name.to_string(),
    })?;
    let (runtime, path) = WASM_RUNTIMES
        .iter()
        .find_map(|r| resolver.find(r).map(|p| (*r, p)))
        .ok_or(SpawnError::NoWasmRuntime)?;
    let inherited: Vec<&str> = ctx.inherited.iter().map(|(k, _)| k.as_str()).collect();
    let mut args: Vec<OsString> = vec!["run".into()];
    for dir in ctx.volume_dirs {
        args.extend(["--dir".into(), dir.clone().into_os_string()]);
    }
    if runtime == "wasmi" {
        // wasmi takes variables only as `--env NAME=VALUE` on its command line, which every
        // local user can read in /proc: it never gets a secret.
        if !app.secrets.is_empty() {
            return Err(SpawnError::WasmSecrets {
                runtime: runtime.to_owned(),
            });
        }
        for (key, value) in env.iter().filter(|(k, _)| !inherited.contains(&k.as_str())) {
            let mut pair = OsString::from(format!("{key}="));
            pair.push(value);
            args.extend(["--env".into(), pair]);
        }
        // WASI preview 1 modules serve on a listener the runtime opens for them (fd 3).
        if let Some(port) = ctx.port {
            args.extend(["--tcplisten".into(), format!("0.0.0.0:{port}").into()]);
        }
        args.push("--".into());
        args.push(module.into());
    } else if runtime == "wasmtime" {
        // `--env NAME` without a value inherits it from the runtime's environment, so secret
        // values never appear on a command line (which /proc shows to every user).
        for (key, _) in env.iter().filter(|(k, _)| !inherited.contains(&k.as_str())) {
            args.extend(["--env".into(), key.into()]);
        }
        if ctx.port.is_some() {
            args.extend(["-S".into(), "inherit-network".into()]);
        }
        args.push(module.into());
    } else {
        args.push("--forward-host-env".into());
        args.push(module.into());
        if !app.args.is_empty() {
            args.push("--".into());
        }
    }
    args.extend(app.args.iter().map(OsString::from));
    Ok((path, args))
}

fn memory_mib(vm: &Vm) -> u64 {
    vm.memory.0.div_ceil(1 << 20).max(1)
}

fn kernel_cmdline(app: &App, base: &str, has_root: bool) -> String {
    let mut line = base.to_owned();
    if has_root {
        line.push_str(" root=/dev/vda rw");
    }
    for arg in &app.args {
        line.push(' ');
        line.push_str(arg);
    }
    line
}

/// `net`: `user` (QEMU's user-mode network), `tap:NAME` or a bare tap device name.
fn tap_name(net: &str) -> Option<&str> {
    match net {
        "user" => None,
        other => Some(other.strip_prefix("tap:").unwrap_or(other)),
    }
}

fn qemu(
    app: &App,
    vm: &Vm,
    ctx: &PlanContext<'_>,
    resolver: &dyn Resolver,
) -> Result<(PathBuf, Vec<OsString>), SpawnError> {
    const QEMU: &str = "qemu-system-x86_64";
    let program = resolver.find(QEMU).ok_or_else(|| SpawnError::NotFound {
        program: QEMU.to_owned(),
    })?;
    let port = ctx.port;
    // `max` is every feature the accelerator offers (the host's under KVM); `host` needs KVM.
    let cpu = if ctx.vm.accel == "kvm" { "host" } else { "max" };
    let mut cmdline = kernel_cmdline(app, "console=ttyS0 reboot=k panic=1", vm.rootfs.is_some());
    if let Some(port) = port {
        // The guest learns the port it must serve from its kernel command line.
        cmdline.push_str(&format!(" skr8tr.port={port}"));
    }
    let qmp = qmp_socket(ctx.work_dir, ctx.replica);
    let mut args: Vec<String> = [
        "-nographic",
        "-no-reboot",
        "-machine",
        &format!("accel={}", ctx.vm.accel),
        "-cpu",
        cpu,
        "-smp",
        &vm.vcpus.max(1).to_string(),
        "-m",
        &memory_mib(vm).to_string(),
        "-kernel",
        &vm.kernel,
        "-append",
        &cmdline,
        "-qmp",
        &format!("unix:{},server=on,wait=off", qmp.display()),
    ]
    .map(str::to_owned)
    .to_vec();
    if let Some(initrd) = &vm.initrd {
        args.extend(["-initrd".to_owned(), initrd.clone()]);
    }
    if let Some(rootfs) = &vm.rootfs {
        let format = ctx.vm.disk_format.unwrap_or("raw");
        args.extend([
            "-drive".to_owned(),
            format!("file={rootfs},format={format},if=virtio"),
        ]);
    }
    // A port is reached on 127.0.0.1:PORT like any replica's: QEMU's user network forwards
    // it to the guest's first NIC (10.0.2.15). A tap `net` is a second NIC beside it, or the
    // only one without a port.
    let tap = vm.net.as_deref().and_then(tap_name);
    let user = port.is_some() || vm.net.as_deref() == Some("user");
    if user {
        let fwd = port.map_or(String::new(), |p| {
            format!(",hostfwd=tcp:127.0.0.1:{p}-:{p}")
        });
        args.extend([
            "-netdev".to_owned(),
            format!("user,id=net0{fwd}"),
            "-device".to_owned(),
            "virtio-net-pci,netdev=net0".to_owned(),
        ]);
    }
    if let Some(tap) = tap {
        args.extend([
            "-netdev".to_owned(),
            format!("tap,id=net1,ifname={tap},script=no,downscript=no"),
            "-device".to_owned(),
            "virtio-net-pci,netdev=net1".to_owned(),
        ]);
    }
    if !user && tap.is_none() {
        args.extend(["-nic".to_owned(), "none".to_owned()]);
    }
    args.extend(vm.args.iter().cloned());
    Ok((program, args.into_iter().map(OsString::from).collect()))
}

type FirecrackerPlan = (PathBuf, Vec<OsString>, (PathBuf, Vec<u8>));

fn firecracker(
    app: &App,
    vm: &Vm,
    ctx: &PlanContext<'_>,
    resolver: &dyn Resolver,
) -> Result<FirecrackerPlan, SpawnError> {
    const FIRECRACKER: &str = "firecracker";
    let program = resolver
        .find(FIRECRACKER)
        .ok_or_else(|| SpawnError::NotFound {
            program: FIRECRACKER.to_owned(),
        })?;
    let mut config = serde_json::json!({
        "boot-source": {
            "kernel_image_path": vm.kernel,
            "boot_args": kernel_cmdline(app, "console=ttyS0 reboot=k panic=1 pci=off", vm.rootfs.is_some()),
        },
        "drives": [],
        "machine-config": { "vcpu_count": vm.vcpus.max(1), "mem_size_mib": memory_mib(vm) },
    });
    if let Some(initrd) = &vm.initrd {
        config["boot-source"]["initrd_path"] = serde_json::json!(initrd);
    }
    if let Some(rootfs) = &vm.rootfs {
        config["drives"] = serde_json::json!([{
            "drive_id": "rootfs",
            "path_on_host": rootfs,
            "is_root_device": true,
            "is_read_only": false,
        }]);
    }
    if let Some(net) = vm.net.as_deref() {
        let tap = tap_name(net).ok_or_else(|| SpawnError::VmNet {
            net: net.to_owned(),
        })?;
        config["network-interfaces"] =
            serde_json::json!([{ "iface_id": "eth0", "host_dev_name": tap }]);
    }
    let path = ctx
        .work_dir
        .join(format!("{}.firecracker.json", ctx.replica));
    let mut args: Vec<OsString> = vec![
        "--no-api".into(),
        "--config-file".into(),
        path.clone().into(),
    ];
    args.extend(vm.args.iter().map(OsString::from));
    Ok((program, args, (path, config.to_string().into_bytes())))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
