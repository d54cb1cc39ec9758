//! Reading the app spec of records written by agents of format version 1, which stored it as a
//! serde mirror of [`App`] instead of manifest text: an agent upgraded in place still adopts
//! the workloads the old one started (SPEC §5: no orphan, no duplicate). Read only, never
//! written: every record an engine keeps is rewritten in the current form as soon as it adopts
//! the replica. Delete this module once no node can still hold a version-1 file.
//!
//! The field names, the `0` of `port auto` and the durations in milliseconds are exactly what
//! those agents wrote (`testdata/replicas-v1.json` is such a file).

use std::time::Duration;

use serde::Deserialize;
use skr8tr_proto::manifest::{
    App, Build, ByteSize, CpuLimit, EnvVar, Health, HealthCheck, Hypervisor, Percent, PortSpec,
    RestartPolicy, RolloutPolicy, Scale, SecretValue, SecretVar, Serve, Vm, Volume, WorkloadKind,
};
use skr8tr_proto::name::{AppName, NameError};

/// The format version whose app specs this module reads.
pub(super) const VERSION: u32 = 1;

/// Why a version-1 record does not describe a valid app.
#[derive(Debug, thiserror::Error)]
pub enum LegacyAppError {
    #[error("bad app name in a version-1 record")]
    Name(#[from] NameError),
    #[error("unknown {what} {value:?} in a version-1 record")]
    Unknown { what: &'static str, value: String },
}

/// A version-1 record's app.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub(super) struct LegacyApp {
    name: String,
    kind: String,
    exec: Option<String>,
    args: Vec<String>,
    /// `0` stands for `port auto`.
    port: Option<u16>,
    replicas: u32,
    ram: Option<u64>,
    cpu_millicores: Option<u32>,
    gpu: Option<u32>,
    restart: String,
    drain_ms: u64,
    health: Option<LegacyHealth>,
    scale: Option<LegacyScale>,
    rollout: LegacyRollout,
    env: Vec<(String, String)>,
    secrets: Vec<(String, String)>,
    volumes: Vec<(String, Option<String>)>,
    build: Option<(Vec<String>, Option<String>)>,
    serve: Option<(String, Option<u16>)>,
    vm: Option<LegacyVm>,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
struct LegacyHealth {
    /// `None` for a TCP check.
    http: Option<(String, u16)>,
    interval_ms: u64,
    timeout_ms: u64,
    retries: u32,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
struct LegacyScale {
    min: u32,
    max: u32,
    cpu_above: u8,
    cpu_below: u8,
    cooldown_ms: u64,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
struct LegacyRollout {
    settle_ms: u64,
    healthy_deadline_ms: u64,
    auto_revert: bool,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
struct LegacyVm {
    hypervisor: String,
    kernel: String,
    rootfs: Option<String>,
    vcpus: u32,
    memory: u64,
    net: Option<String>,
    args: Vec<String>,
}

/// The one of `all` whose keyword is `value`.
fn keyword<T: Copy>(
    what: &'static str,
    value: &str,
    all: &[T],
    keyword_of: fn(T) -> &'static str,
) -> Result<T, LegacyAppError> {
    all.iter()
        .copied()
        .find(|k| keyword_of(*k) == value)
        .ok_or_else(|| LegacyAppError::Unknown {
            what,
            value: value.to_owned(),
        })
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl LegacyApp {
    /// The app spec the version-1 agent recorded.
    pub(super) fn to_app(&self) -> Result<App, LegacyAppError> {
        let r = self.clone();
        let kinds = [
            WorkloadKind::Service,
            WorkloadKind::Job,
            WorkloadKind::Wasm,
            WorkloadKind::Vm,
        ];
        let policies = [
            RestartPolicy::Always,
            RestartPolicy::OnFailure,
            RestartPolicy::Never,
        ];
        let hypervisors = [Hypervisor::Qemu, Hypervisor::Firecracker];
        Ok(App {
            name: AppName::new(r.name)?,
            kind: keyword("type", &r.kind, &kinds, WorkloadKind::keyword)?,
            exec: r.exec,
            args: r.args,
            port: r.port.map(|p| match p {
                0 => PortSpec::Auto,
                p => PortSpec::Fixed(p),
            }),
            replicas: r.replicas,
            ram: r.ram.map(ByteSize),
            cpu: r.cpu_millicores.map(|millicores| CpuLimit { millicores }),
            gpu: r.gpu,
            restart: keyword(
                "restart policy",
                &r.restart,
                &policies,
                RestartPolicy::keyword,
            )?,
            drain: ms(r.drain_ms),
            health: r.health.map(|h| Health {
                check: match h.http {
                    Some((path, status)) => HealthCheck::Http { path, status },
                    None => HealthCheck::Tcp,
                },
                interval: ms(h.interval_ms),
                timeout: ms(h.timeout_ms),
                retries: h.retries,
            }),
            scale: r.scale.map(|s| Scale {
                min: s.min,
                max: s.max,
                cpu_above: Percent(s.cpu_above),
                cpu_below: Percent(s.cpu_below),
                cooldown: ms(s.cooldown_ms),
            }),
            rollout: RolloutPolicy {
                settle: ms(r.rollout.settle_ms),
                healthy_deadline: ms(r.rollout.healthy_deadline_ms),
                auto_revert: r.rollout.auto_revert,
                canary: 0,
            },
            env: r
                .env
                .into_iter()
                .map(|(key, value)| EnvVar { key, value })
                .collect(),
            secrets: r
                .secrets
                .into_iter()
                .map(|(key, value)| SecretVar {
                    key,
                    value: SecretValue::new(value),
                })
                .collect(),
            volumes: r
                .volumes
                .into_iter()
                .map(|(path, env)| Volume { path, env })
                .collect(),
            // Records of format v1 predate routes and schedules.
            routes: Vec::new(),
            schedule: None,
            build: r.build.map(|(run, out)| Build { run, out }),
            serve: r.serve.map(|(static_dir, port)| Serve {
                static_dir,
                port,
                spa: false,
                cache: None,
            }),
            vm: r
                .vm
                .map(|v| -> Result<Vm, LegacyAppError> {
                    Ok(Vm {
                        hypervisor: keyword(
                            "hypervisor",
                            &v.hypervisor,
                            &hypervisors,
                            Hypervisor::keyword,
                        )?,
                        kernel: v.kernel,
                        initrd: None,
                        rootfs: v.rootfs,
                        vcpus: v.vcpus,
                        memory: ByteSize(v.memory),
                        net: v.net,
                        args: v.args,
                    })
                })
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::{RECORDS_FILE, RecordStore, RecordedApp, RecordedAppError};
    use super::*;
    use crate::limits::LimitEnforcement;

    /// A file as a version-1 agent wrote it, for this boot.
    fn write_v1_file(dir: &std::path::Path) {
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let text = include_str!("testdata/replicas-v1.json").replace("BOOT_ID", boot_id.trim());
        fs::write(dir.join(RECORDS_FILE), text).unwrap();
    }

    /// The app of the first record of `testdata/replicas-v1.json`: every field set.
    fn every_field() -> App {
        let mut app = App::with_defaults(AppName::new("api").unwrap(), Some("/srv/api".into()));
        app.kind = WorkloadKind::Vm;
        app.args = vec!["a b".into()];
        app.port = Some(PortSpec::Auto);
        app.replicas = 3;
        app.ram = Some(ByteSize(1 << 28));
        app.cpu = Some(CpuLimit { millicores: 500 });
        app.gpu = Some(1);
        app.restart = RestartPolicy::OnFailure;
        app.drain = Duration::from_millis(1500);
        app.health = Some(Health {
            check: HealthCheck::Http {
                path: "/h".into(),
                status: 204,
            },
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(300),
            retries: 5,
        });
        app.scale = Some(Scale {
            min: 1,
            max: 4,
            cpu_above: Percent(80),
            cpu_below: Percent(20),
            cooldown: Duration::from_secs(10),
        });
        app.env = vec![EnvVar {
            key: "K".into(),
            value: "v".into(),
        }];
        app.secrets = vec![SecretVar {
            key: "S".into(),
            value: SecretValue::new("x"),
        }];
        app.volumes = vec![Volume {
            path: "/d".into(),
            env: Some("D".into()),
        }];
        app.build = Some(Build {
            run: vec!["make".into()],
            out: Some("out".into()),
        });
        app.serve = Some(Serve {
            static_dir: "/www".into(),
            port: Some(81),
            spa: false,
            cache: None,
        });
        app.vm = Some(Vm {
            hypervisor: Hypervisor::Firecracker,
            kernel: "/k".into(),
            initrd: None,
            rootfs: None,
            vcpus: 2,
            memory: ByteSize(1 << 30),
            net: Some("tap0".into()),
            args: vec!["-x".into()],
        });
        app
    }

    #[test]
    fn a_version_1_file_is_read_with_every_field_of_its_apps() {
        let dir = tempfile::tempdir().unwrap();
        write_v1_file(dir.path());
        let (_store, loaded, _lock) = RecordStore::open(dir.path()).unwrap();
        assert!(
            loaded.stale.is_empty(),
            "same boot: candidates for adoption"
        );
        let [api, web] = loaded.records.as_slice() else {
            panic!("{:?}", loaded.records);
        };
        assert_eq!(
            (api.replica.as_str(), api.pid, api.start_time, api.port),
            ("api-1", 1001, 4242, Some(31000))
        );
        assert_eq!((api.generation, api.restarts), (7, 2));
        assert_eq!(api.limits.ram, LimitEnforcement::CgroupV2);
        assert_eq!(api.cgroup_dirs.len(), 1);
        assert_eq!(api.app.to_app().unwrap(), every_field());
        let plain = App::with_defaults(AppName::new("web").unwrap(), Some("/bin/sleep".into()));
        assert_eq!(web.app.to_app().unwrap(), plain);
    }

    #[test]
    fn a_version_1_record_is_rewritten_as_manifest_text() {
        let dir = tempfile::tempdir().unwrap();
        write_v1_file(dir.path());
        {
            let (store, mut loaded, _lock) = RecordStore::open(dir.path()).unwrap();
            let mut web = loaded.records.remove(1);
            web.app = RecordedApp::new(&web.app.to_app().unwrap());
            store.upsert(web).unwrap();
        }
        let text = fs::read_to_string(dir.path().join(RECORDS_FILE)).unwrap();
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(file["version"], 2);
        assert_eq!(file["replicas"].as_array().map(Vec::len), Some(1));
        assert!(file["replicas"][0]["app"].is_string(), "{text}");
    }

    #[test]
    fn unknown_keywords_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write_v1_file(dir.path());
        let text = fs::read_to_string(dir.path().join(RECORDS_FILE)).unwrap();
        let text = text.replacen("\"kind\": \"vm\"", "\"kind\": \"container\"", 1);
        fs::write(dir.path().join(RECORDS_FILE), text).unwrap();
        let (_store, loaded, _lock) = RecordStore::open(dir.path()).unwrap();
        assert!(matches!(
            loaded.records[0].app.to_app(),
            Err(RecordedAppError::Legacy(LegacyAppError::Unknown {
                what: "type",
                ..
            }))
        ));
    }
}
