use std::collections::HashMap;
use std::time::Duration;

use skr8tr_proto::manifest::{Build, ByteSize, EnvVar, SecretValue, SecretVar, Serve, Volume};
use skr8tr_proto::name::AppName;

use super::*;

struct FakePath(HashMap<&'static str, &'static str>);

impl Resolver for FakePath {
    fn find(&self, name: &str) -> Option<PathBuf> {
        self.0.get(name).map(PathBuf::from)
    }
    fn find_serve(&self) -> Option<PathBuf> {
        self.find(SERVE_BINARY)
    }
}

fn path_with(names: &[(&'static str, &'static str)]) -> FakePath {
    FakePath(names.iter().copied().collect())
}

fn app(exec: Option<&str>) -> App {
    App::with_defaults(AppName::new("api").unwrap(), exec.map(str::to_owned))
}

fn ctx<'a>(replica: &'a ReplicaId, port: Option<u16>, volumes: &'a [PathBuf]) -> PlanContext<'a> {
    PlanContext {
        replica,
        generation: 7,
        port,
        volume_dirs: volumes,
        work_dir: Path::new("/state/vm"),
        inherited: &[],
        vm: VmHost {
            accel: "kvm:tcg",
            disk_format: None,
        },
    }
}

fn strs(args: &[OsString]) -> Vec<&str> {
    args.iter().map(|a| a.to_str().unwrap()).collect()
}

fn env_of<'a>(plan: &'a CommandPlan, key: &str) -> Option<&'a str> {
    plan.env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.to_str().unwrap())
}

#[test]
fn service_env_has_manifest_values_secrets_and_node_variables() {
    let r = ReplicaId::new("api.g7.r1").unwrap();
    let mut a = app(Some("/srv/api"));
    a.args = vec!["--flag".into(), "two words".into()];
    a.env = vec![
        EnvVar {
            key: "MODE".into(),
            value: "prod".into(),
        },
        EnvVar {
            key: "PORT".into(),
            value: "1".into(),
        },
    ];
    a.secrets = vec![SecretVar {
        key: "TOKEN".into(),
        value: SecretValue::new("s3cr3t"),
    }];
    a.volumes = vec![
        Volume {
            path: "/data/api".into(),
            env: Some("DATA".into()),
        },
        Volume {
            path: "cache".into(),
            env: None,
        },
    ];
    let dirs = volume_dirs(&a, Path::new("/state"));
    assert_eq!(
        dirs,
        [
            PathBuf::from("/data/api"),
            PathBuf::from("/state/volumes/cache")
        ]
    );
    let inherited = [
        ("PATH".to_owned(), OsString::from("/bin")),
        ("HOME".to_owned(), "/root".into()),
    ];
    let mut c = ctx(&r, Some(8080), &dirs);
    c.inherited = &inherited;
    let p = plan(&a, &c, &path_with(&[])).unwrap();
    assert_eq!(p.program, PathBuf::from("/srv/api"));
    assert_eq!(strs(&p.args), ["--flag", "two words"]);
    let table = [
        ("MODE", "prod"),
        ("PORT", "8080"), // the node's port wins over the manifest's
        ("TOKEN", "s3cr3t"),
        ("DATA", "/data/api"),
        ("SKR8TR_APP", "api"),
        ("SKR8TR_REPLICA", "api.g7.r1"),
        ("SKR8TR_GENERATION", "7"),
        ("PATH", "/bin"),
        ("HOME", "/root"),
    ];
    for (k, v) in table {
        assert_eq!(env_of(&p, k), Some(v), "{k}");
    }
    let mut keys: Vec<&str> = p.env.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), p.env.len(), "keys unique");
}

#[test]
fn no_port_no_port_variable_and_a_default_path() {
    let r = ReplicaId::new("r").unwrap();
    let p = plan(
        &app(Some("/bin/true")),
        &ctx(&r, None, &[]),
        &path_with(&[]),
    )
    .unwrap();
    assert_eq!(env_of(&p, "PORT"), None);
    assert_eq!(env_of(&p, "PATH"), Some(DEFAULT_PATH));
}

#[test]
fn bare_names_are_looked_up_and_missing_ones_are_errors() {
    let r = ReplicaId::new("r").unwrap();
    let found = path_with(&[("sleep", "/usr/bin/sleep")]);
    let p = plan(&app(Some("sleep")), &ctx(&r, None, &[]), &found).unwrap();
    assert_eq!(p.program, PathBuf::from("/usr/bin/sleep"));
    let err = plan(&app(Some("nope")), &ctx(&r, None, &[]), &found).unwrap_err();
    assert!(matches!(err, SpawnError::NotFound { ref program } if program == "nope"));
    let err = plan(&app(None), &ctx(&r, None, &[]), &found).unwrap_err();
    assert!(matches!(err, SpawnError::NoProgram { .. }));
}

#[test]
fn build_output_is_the_program_when_exec_is_absent() {
    let r = ReplicaId::new("r").unwrap();
    let mut a = app(None);
    a.build = Some(Build {
        run: vec!["make".into()],
        out: Some("./target/app".into()),
    });
    let p = plan(&a, &ctx(&r, None, &[]), &path_with(&[])).unwrap();
    assert_eq!(p.program, PathBuf::from("./target/app"));
}

#[test]
fn serve_runs_the_static_server() {
    let r = ReplicaId::new("r").unwrap();
    let mut a = app(None);
    a.serve = Some(Serve {
        static_dir: "/srv/www".into(),
        port: None,
        spa: false,
        cache: None,
    });
    let resolver = path_with(&[(SERVE_BINARY, "/opt/skr8tr/skr8tr_serve")]);
    let p = plan(&a, &ctx(&r, Some(9000), &[]), &resolver).unwrap();
    assert_eq!(p.program, PathBuf::from("/opt/skr8tr/skr8tr_serve"));
    assert_eq!(strs(&p.args), ["--dir", "/srv/www", "--port", "9000"]);
    a.serve = Some(Serve {
        static_dir: "/srv/www".into(),
        port: Some(81),
        spa: false,
        cache: None,
    });
    assert_eq!(
        strs(&plan(&a, &ctx(&r, None, &[]), &resolver).unwrap().args)[3],
        "81"
    );
    a.serve = Some(Serve {
        static_dir: "/srv/www".into(),
        port: None,
        spa: true,
        cache: Some(Duration::from_secs(3600)),
    });
    assert_eq!(
        strs(&plan(&a, &ctx(&r, Some(9000), &[]), &resolver).unwrap().args),
        [
            "--dir",
            "/srv/www",
            "--port",
            "9000",
            "--spa",
            "--max-age",
            "3600"
        ]
    );
    let err = plan(&a, &ctx(&r, None, &[]), &path_with(&[])).unwrap_err();
    assert!(matches!(err, SpawnError::NotFound { ref program } if program == SERVE_BINARY));
}

#[test]
fn wasm_uses_the_first_runtime_found_and_keeps_secrets_off_the_command_line() {
    let r = ReplicaId::new("r").unwrap();
    let mut a = app(Some("/srv/app.wasm"));
    a.kind = WorkloadKind::Wasm;
    a.args = vec!["x".into()];
    a.secrets = vec![SecretVar {
        key: "TOKEN".into(),
        value: SecretValue::new("s3cr3t"),
    }];
    let both = path_with(&[
        ("wasmtime", "/usr/bin/wasmtime"),
        ("wasmer", "/usr/bin/wasmer"),
    ]);
    let p = plan(&a, &ctx(&r, Some(8000), &[]), &both).unwrap();
    assert_eq!(p.program, PathBuf::from("/usr/bin/wasmtime"));
    let args = strs(&p.args);
    assert_eq!(args[0], "run");
    assert!(args.windows(2).any(|w| w == ["--env", "TOKEN"]));
    assert!(args.windows(2).any(|w| w == ["-S", "inherit-network"]));
    assert!(!args.iter().any(|a| a.contains("s3cr3t")));
    assert_eq!(&args[args.len() - 2..], ["/srv/app.wasm", "x"]);
    let wasmer = path_with(&[("wasmer", "/usr/bin/wasmer")]);
    let p = plan(&a, &ctx(&r, None, &[]), &wasmer).unwrap();
    assert_eq!(
        strs(&p.args),
        ["run", "--forward-host-env", "/srv/app.wasm", "--", "x"]
    );
    let err = plan(&a, &ctx(&r, None, &[]), &path_with(&[])).unwrap_err();
    assert!(matches!(err, SpawnError::NoWasmRuntime));
    // wasmi gets variables on its command line: never a secret.
    let wasmi = path_with(&[("wasmi", "/usr/bin/wasmi")]);
    let err = plan(&a, &ctx(&r, None, &[]), &wasmi).unwrap_err();
    assert!(matches!(err, SpawnError::WasmSecrets { .. }), "{err}");
    a.secrets.clear();
    a.env = vec![EnvVar {
        key: "MODE".into(),
        value: "fast lane".into(),
    }];
    let p = plan(&a, &ctx(&r, Some(8000), &[]), &wasmi).unwrap();
    assert_eq!(p.program, PathBuf::from("/usr/bin/wasmi"));
    let args = strs(&p.args);
    assert_eq!(args[0], "run");
    assert!(args.windows(2).any(|w| w == ["--env", "MODE=fast lane"]));
    assert!(args.windows(2).any(|w| w == ["--env", "PORT=8000"]));
    assert!(
        args.windows(2)
            .any(|w| w == ["--tcplisten", "0.0.0.0:8000"])
    );
    assert_eq!(&args[args.len() - 3..], ["--", "/srv/app.wasm", "x"]);
}

fn vm_app(hypervisor: Hypervisor, net: Option<&str>) -> App {
    let mut a = app(None);
    a.kind = WorkloadKind::Vm;
    a.args = vec!["init=/sbin/app".into()];
    a.vm = Some(Vm {
        hypervisor,
        kernel: "/vm/vmlinux".into(),
        initrd: None,
        rootfs: Some("/vm/rootfs.ext4".into()),
        vcpus: 2,
        memory: ByteSize(512 << 20),
        net: net.map(str::to_owned),
        args: vec!["-snapshot".into()],
    });
    a
}

#[test]
fn qemu_command_line() {
    let r = ReplicaId::new("r").unwrap();
    let qemu = path_with(&[("qemu-system-x86_64", "/usr/bin/qemu-system-x86_64")]);
    let p = plan(
        &vm_app(Hypervisor::Qemu, None),
        &ctx(&r, Some(8080), &[]),
        &qemu,
    )
    .unwrap();
    let args = strs(&p.args);
    let has = |pair: [&str; 2]| args.windows(2).any(|w| w == pair);
    assert!(has(["-smp", "2"]) && has(["-m", "512"]) && has(["-kernel", "/vm/vmlinux"]));
    assert!(has(["-machine", "accel=kvm:tcg"]) && has(["-cpu", "max"]));
    assert!(has(["-drive", "file=/vm/rootfs.ext4,format=raw,if=virtio"]));
    assert!(has([
        "-netdev",
        "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:8080"
    ]));
    assert!(has([
        "-append",
        "console=ttyS0 reboot=k panic=1 root=/dev/vda rw init=/sbin/app skr8tr.port=8080"
    ]));
    assert!(has(["-qmp", "unix:/state/vm/r.qmp,server=on,wait=off"]));
    assert_eq!(args.last(), Some(&"-snapshot"));

    // A detected qcow2 disk, KVM only, an initramfs.
    let mut initrd = vm_app(Hypervisor::Qemu, None);
    if let Some(vm) = initrd.vm.as_mut() {
        vm.initrd = Some("/vm/initrd.gz".into());
    }
    let mut c = ctx(&r, None, &[]);
    c.vm = VmHost {
        accel: "kvm",
        disk_format: Some("qcow2"),
    };
    let p = plan(&initrd, &c, &qemu).unwrap();
    let args = strs(&p.args);
    let has = |pair: [&str; 2]| args.windows(2).any(|w| w == pair);
    assert!(has([
        "-drive",
        "file=/vm/rootfs.ext4,format=qcow2,if=virtio"
    ]));
    assert!(has(["-machine", "accel=kvm"]) && has(["-cpu", "host"]));
    assert!(has(["-initrd", "/vm/initrd.gz"]));

    // A tap without a port is the only NIC; with a port it is the second, after the user
    // network that forwards the port.
    let p = plan(
        &vm_app(Hypervisor::Qemu, Some("tap:tap7")),
        &ctx(&r, None, &[]),
        &qemu,
    )
    .unwrap();
    let args = strs(&p.args);
    assert!(args.contains(&"tap,id=net1,ifname=tap7,script=no,downscript=no"));
    assert!(!args.iter().any(|a| a.starts_with("user,")));
    let p = plan(
        &vm_app(Hypervisor::Qemu, Some("tap0")),
        &ctx(&r, Some(9000), &[]),
        &qemu,
    )
    .unwrap();
    let args = strs(&p.args);
    let user = args
        .iter()
        .position(|a| a.starts_with("user,id=net0,hostfwd=tcp:127.0.0.1:9000-:9000"));
    let tap = args
        .iter()
        .position(|a| a.starts_with("tap,id=net1,ifname=tap0"));
    assert!(user.is_some() && tap.is_some() && user < tap, "{args:?}");
    let p = plan(&vm_app(Hypervisor::Qemu, None), &ctx(&r, None, &[]), &qemu).unwrap();
    assert!(strs(&p.args).windows(2).any(|w| w == ["-nic", "none"]));
    let err = plan(
        &vm_app(Hypervisor::Qemu, None),
        &ctx(&r, None, &[]),
        &path_with(&[]),
    );
    assert!(matches!(err, Err(SpawnError::NotFound { .. })));
}

#[test]
fn firecracker_config_file() {
    let r = ReplicaId::new("vm1").unwrap();
    let fc = path_with(&[("firecracker", "/usr/bin/firecracker")]);
    let p = plan(
        &vm_app(Hypervisor::Firecracker, Some("tap0")),
        &ctx(&r, None, &[]),
        &fc,
    )
    .unwrap();
    assert_eq!(
        strs(&p.args),
        [
            "--no-api",
            "--config-file",
            "/state/vm/vm1.firecracker.json",
            "-snapshot"
        ]
    );
    let (path, bytes) = &p.files[0];
    assert_eq!(path, Path::new("/state/vm/vm1.firecracker.json"));
    let json: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!(json["machine-config"]["mem_size_mib"], 512);
    assert_eq!(json["drives"][0]["path_on_host"], "/vm/rootfs.ext4");
    assert_eq!(json["network-interfaces"][0]["host_dev_name"], "tap0");
    let err = plan(
        &vm_app(Hypervisor::Firecracker, Some("user")),
        &ctx(&r, None, &[]),
        &fc,
    );
    assert!(matches!(err, Err(SpawnError::VmNet { .. })));
}
