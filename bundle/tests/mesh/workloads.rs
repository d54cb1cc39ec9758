//! Every workload shape running for real on a node agent of a whole mesh: scheduled jobs,
//! wasm modules (a job and a service, built from WAT in the test and run by the wasm runtime on
//! `PATH`), and static sites served by the real `skr8tr_serve` behind the ingress.

use std::path::Path;
use std::time::Duration;

use skr8tr_proto::wire::{ConductorReply, EventKind, Exit, Message};

use super::Mesh;
use crate::external;
use crate::util::{ask, eventually};

#[test]
fn a_scheduled_job_runs_at_each_occurrence_never_two_at_once() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    // Each run notes its start and end; it takes 2.5 s, its schedule is every 2 s, so every
    // other occurrence finds the last run still going.
    let log = dir.path().join("runs.log");
    let script = dir.path().join("run.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho start >> {log}\nsleep 2.5\necho end >> {log}\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let manifest = format!(
        "app tick\n  type job\n  exec \"{}\"\n  restart never\n  schedule \"*/2 * * * * *\"\n",
        script.display()
    );
    assert!(mesh.submit(&manifest).starts_with("OK|SUBMITTED"));
    let events =
        || match ConductorReply::decode(ask(mesh.cmd(), "EVENTS|0|tick").as_bytes()).unwrap() {
            ConductorReply::Events { events, .. } => events,
            other => panic!("{other:?}"),
        };
    let count = |kind: EventKind| events().iter().filter(|e| e.kind == kind).count();
    let runs_logged = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    eventually(Duration::from_secs(20), "two runs and a skip", || {
        (runs_logged() >= 4
            && count(EventKind::RunStarted) >= 2
            && count(EventKind::RunSkipped) >= 1)
            .then_some(())
    });
    // Never two at once: the log alternates start, end, start, …
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, if i % 2 == 0 { "start" } else { "end" }, "{text}");
    }
    // APPS tells the next run (in the future) and the last one.
    let ConductorReply::Apps(apps) =
        ConductorReply::decode(ask(mesh.cmd(), "APPS").as_bytes()).unwrap()
    else {
        panic!("not APPS")
    };
    let runs = apps[0].runs.expect("a scheduled job has runs");
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    assert!(runs.next_ms.unwrap() > now_ms - 1_000, "{runs:?}");
    assert!(runs.last_ms.unwrap() <= now_ms, "{runs:?}");
    // The runs that ended stay as history with their exit, none of them replaced.
    let ended = mesh
        .status()
        .into_iter()
        .filter(|r| r.exit.is_some())
        .count();
    assert!(ended >= 1, "{:?}", mesh.status());
}

/// `fixtures/wasm/NAME.wat` built with `wat2wasm` into `dir`; `None` when a tool is missing.
fn wasm_module(test: &str, dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    external::program(test, "wasmi", "cargo install --locked wasmi_cli")?;
    let wat2wasm = external::program(test, "wat2wasm", "apt-get install wabt")?;
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wasm")
        .join(format!("{name}.wat"));
    let out = dir.join(format!("{name}.wasm"));
    let status = std::process::Command::new(wat2wasm)
        .arg(&source)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "wat2wasm {}", source.display());
    Some(out)
}

#[test]
fn a_wasm_job_runs_to_its_exit_code_with_its_output_in_logs() {
    let test = "a_wasm_job_runs_to_its_exit_code_with_its_output_in_logs";
    let dir = tempfile::tempdir().unwrap();
    let Some(module) = wasm_module(test, dir.path(), "job") else {
        return;
    };
    let mesh = Mesh::start();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let manifest = format!(
        "app wjob\n  type wasm\n  exec \"{}\"\n  args 3\n  restart never\n",
        module.display()
    );
    assert!(mesh.submit(&manifest).starts_with("OK|SUBMITTED"));
    eventually(Duration::from_secs(20), "the job ended with 3", || {
        mesh.status()
            .iter()
            .any(|r| r.app.as_str() == "wjob" && r.exit == Some(Exit::Code(3)))
            .then_some(())
    });
    let logs = ask(mesh.cmd(), "LOGS|wjob");
    assert!(logs.contains("wasm job ran"), "{logs}");
    // It ended for good: never placed again.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        mesh.status()
            .iter()
            .filter(|r| r.app.as_str() == "wjob")
            .count(),
        1
    );
}

#[test]
fn a_wasm_service_is_health_checked_registered_and_serves_http() {
    let test = "a_wasm_service_is_health_checked_registered_and_serves_http";
    let dir = tempfile::tempdir().unwrap();
    let Some(module) = wasm_module(test, dir.path(), "service") else {
        return;
    };
    let mesh = Mesh::start();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let manifest = format!(
        "app wsvc\n  type wasm\n  exec \"{}\"\n  port auto\n  replicas 2\n  health GET / 200\n",
        module.display()
    );
    assert!(mesh.submit(&manifest).starts_with("OK|SUBMITTED"));
    let backends = eventually(Duration::from_secs(20), "two registered", || {
        let b = mesh.tower_backends("wsvc");
        (b.len() == 2).then_some(b)
    });
    for backend in backends {
        let reply = super::http_get(backend, "/").unwrap_or_default();
        assert!(
            reply.starts_with("HTTP/1.1 200") && reply.ends_with("hello from wasm"),
            "{backend}: {reply}"
        );
    }
    let healthy = mesh
        .status()
        .iter()
        .filter(|r| r.app.as_str() == "wsvc" && r.state.keyword() == "healthy")
        .count();
    assert_eq!(healthy, 2);
}

#[test]
fn a_static_site_is_served_by_skr8tr_serve_behind_the_ingress() {
    let test = "a_static_site_is_served_by_skr8tr_serve_behind_the_ingress";
    let Some(serve) = external::built(test, "skr8tr_serve") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), "<h1>docs</h1>").unwrap();
    std::fs::write(site.join("style.css"), "body{}").unwrap();
    let mesh = Mesh::start();
    let _node = mesh.node(&dir.path().join("node"), true);
    mesh.wait_nodes(1);
    let bin = serve.parent().unwrap().display().to_string();
    let manifest = format!(
        "app docs\n  serve {{\n    static \"{}\"\n    spa\n    cache 10m\n  }}\n  port auto\n  replicas 2\n  env {{\n    PATH \"{bin}:/usr/bin:/bin\"\n  }}\n  health GET /index.html 200\n  route docs.example.com/\n",
        site.display()
    );
    assert!(mesh.submit(&manifest).starts_with("OK|SUBMITTED"));
    let mut config = skr8tr_ingress::Config::local(Vec::new(), Vec::new());
    config.tower = Some(mesh.tower_addr);
    let ingress = skr8tr_ingress::start(config).unwrap();
    let edge = std::net::SocketAddr::new("127.0.0.1".parse().unwrap(), ingress.port());
    let get = |path: &str, extra: &str| -> String {
        use std::io::{Read as _, Write as _};
        let Ok(mut s) = std::net::TcpStream::connect(edge) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: docs.example.com\r\n{extra}Connection: close\r\n\r\n"
        );
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let first = eventually(
        Duration::from_secs(20),
        "served through the ingress",
        || {
            let r = get("/style.css", "");
            r.starts_with("HTTP/1.1 200").then_some(r)
        },
    );
    assert!(first.ends_with("body{}"), "{first}");
    assert!(
        first.contains("Cache-Control: public, max-age=600"),
        "{first}"
    );
    let etag = first
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .expect("an ETag")
        .to_owned();
    let again = get("/style.css", &format!("If-None-Match: {etag}\r\n"));
    assert!(again.starts_with("HTTP/1.1 304"), "{again}");
    let route = get("/guide/intro", "");
    assert!(
        route.starts_with("HTTP/1.1 200") && route.ends_with("<h1>docs</h1>"),
        "{route}"
    );
    let part = get("/style.css", "Range: bytes=0-3\r\n");
    assert!(
        part.starts_with("HTTP/1.1 206") && part.ends_with("body"),
        "{part}"
    );
    // Both replicas are the real server, health-checked and registered.
    let healthy = mesh
        .status()
        .iter()
        .filter(|r| r.app.as_str() == "docs" && r.state.keyword() == "healthy")
        .count();
    assert_eq!(healthy, 2);
    ingress.stop();
}

/// A kernel and its modules for the test guest: `SKR8TR_TEST_VM_KERNEL` names a directory
/// holding `boot/vmlinuz-*` and `lib/modules/*/kernel` (an unpacked Debian linux-image
/// package, as `.ci/run` prepares), else the host's own `/boot` and `/lib/modules`.
fn guest_kernel(test: &str) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let root = std::env::var_os("SKR8TR_TEST_VM_KERNEL")
        .map_or_else(|| std::path::PathBuf::from("/"), std::path::PathBuf::from);
    let first = |dir: std::path::PathBuf, prefix: &str| {
        std::fs::read_dir(dir).ok().and_then(|entries| {
            let mut names: Vec<std::path::PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                })
                .collect();
            names.sort();
            names.pop()
        })
    };
    let kernel = first(root.join("boot"), "vmlinuz-");
    let modules = first(root.join("lib/modules"), "");
    if let (Some(k), Some(m)) = (kernel, modules) {
        return Some((k, m.join("kernel")));
    }
    external::skip(
        test,
        &format!(
            "a kernel is needed: set SKR8TR_TEST_VM_KERNEL to an unpacked linux-image package (none in {})",
            root.display()
        ),
    )
}

/// Builds the test guest's initramfs in `dir`: a static busybox, `fixtures/vm/init`, and the
/// virtio network and ACPI power button modules of `modules`; returns the `.gz` path.
fn guest_initramfs(test: &str, dir: &Path, modules: &Path) -> Option<std::path::PathBuf> {
    let busybox = external::program(test, "busybox", "apt-get install busybox-static")?;
    external::program(test, "cpio", "apt-get install cpio")?;
    external::program(test, "gzip", "apt-get install gzip")?;
    let image = std::fs::read(&busybox).unwrap();
    let dynamic = image.windows(8).any(|w| w == b"/lib64/l");
    assert!(
        !dynamic,
        "{test}: {} is dynamically linked; install busybox-static",
        busybox.display()
    );
    let tree = dir.join("initramfs");
    for sub in ["bin", "dev", "proc", "sys", "www", "lib/modules"] {
        std::fs::create_dir_all(tree.join(sub)).unwrap();
    }
    std::fs::write(tree.join("bin/busybox"), image).unwrap();
    let init = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm/init");
    std::fs::copy(init, tree.join("init")).unwrap();
    for f in ["bin/busybox", "init"] {
        std::fs::set_permissions(
            tree.join(f),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let wanted = [
        "virtio.ko",
        "virtio_ring.ko",
        "virtio_pci.ko",
        "virtio_pci_legacy_dev.ko",
        "virtio_pci_modern_dev.ko",
        "failover.ko",
        "net_failover.ko",
        "virtio_net.ko",
        "evdev.ko",
        "button.ko",
    ];
    for p in files_under(modules) {
        if let Some(name) = p
            .file_name()
            .filter(|n| wanted.contains(&n.to_string_lossy().as_ref()))
        {
            std::fs::copy(&p, tree.join("lib/modules").join(name)).unwrap();
        }
    }
    let out = dir.join("initrd.gz");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && find . | cpio -o -H newc 2>/dev/null | gzip -1 > '{}'",
            tree.display(),
            out.display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "cpio | gzip");
    Some(out)
}

#[test]
fn a_vm_boots_under_qemu_serves_through_the_ingress_and_powers_off_on_evict() {
    let test = "a_vm_boots_under_qemu_serves_through_the_ingress_and_powers_off_on_evict";
    external::program(
        test,
        "qemu-system-x86_64",
        "apt-get install qemu-system-x86",
    )
    .and_then(|_| guest_kernel(test))
    .and_then(|(kernel, modules)| {
        let dir = tempfile::tempdir().unwrap();
        let initrd = guest_initramfs(test, dir.path(), &modules)?;
        run_vm(&kernel, &initrd, dir.path());
        Some(())
    });
}

fn run_vm(kernel: &Path, initrd: &Path, dir: &Path) {
    let mesh = Mesh::start();
    // TCG, not KVM: the machines this suite runs on are themselves microVMs whose nested KVM
    // fails this guest (an emulation failure at its first cmpxchg16b). `auto`, the default,
    // is covered by the plan tests.
    let node = mesh.node_with(&dir.join("node"), true, |c| {
        c.engine.vm_accel = skr8tr_node::VmAccel::Tcg;
    });
    mesh.wait_nodes(1);
    let manifest = format!(
        "app guest\n  type vm\n  port auto\n  drain 20s\n  vm {{\n    hypervisor qemu\n    kernel \"{}\"\n    initrd \"{}\"\n    vcpus 1\n    memory 256mb\n  }}\n  health {{\n    check GET / 200\n    interval 3s\n    timeout 2s\n    retries 40\n  }}\n  route vm.example.com/\n",
        kernel.display(),
        initrd.display()
    );
    let submitted = std::time::Instant::now();
    assert!(mesh.submit(&manifest).starts_with("OK|SUBMITTED"));
    let mut config = skr8tr_ingress::Config::local(Vec::new(), Vec::new());
    config.tower = Some(mesh.tower_addr);
    let ingress = skr8tr_ingress::start(config).unwrap();
    let edge = std::net::SocketAddr::new("127.0.0.1".parse().unwrap(), ingress.port());
    let page = eventually(Duration::from_secs(150), "the guest served", || {
        super::http_get_host(edge, "vm.example.com", "/").filter(|r| r.starts_with("HTTP/1.1 200"))
    });
    eprintln!(
        "guest served through the ingress {:?} after SUBMIT",
        submitted.elapsed()
    );
    assert!(page.contains("hello from the vm"), "{page}");
    let status = mesh.status();
    let replica = status.iter().find(|r| r.app.as_str() == "guest").unwrap();
    assert_eq!(replica.state.keyword(), "healthy");
    let qemu_pid = replica.pid;
    assert!(super::pid_alive(qemu_pid));
    // Evicted: the node presses the power button and the guest shuts down within its drain.
    let stopped = std::time::Instant::now();
    assert!(ask(mesh.cmd(), "EVICT|guest").starts_with("OK|EVICTED"));
    eventually(Duration::from_secs(30), "QEMU gone", || {
        (!super::pid_alive(qemu_pid)).then_some(())
    });
    eprintln!("guest powered off {:?} after EVICT", stopped.elapsed());
    assert!(
        stopped.elapsed() < Duration::from_secs(20),
        "the guest needed the whole drain"
    );
    // The guest's console is the replica's log (where the node keeps it is its business).
    let logs = find_log(&dir.join("node"));
    assert!(
        logs.contains("skr8tr-guest: power button, powering off"),
        "{logs}"
    );
    assert!(logs.contains("the guest powered off"), "{logs}");
    ingress.stop();
    drop(node);
}

/// The text of every `.log` file under `dir`.
fn find_log(dir: &Path) -> String {
    files_under(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}
