//! What the node keeps on disk under `--state-dir`: a record of every replica it runs (so a
//! restarted agent adopts them instead of orphaning or duplicating them), and of each replica
//! that ended for good until the engine forgets it (so a restarted agent still reports how it
//! ended: a finished job is never taken for one that vanished), and its stable node id
//! (`node_id`).
//!
//! ```text
//! STATE_DIR/ (0700)
//!   lock            held (flock) while an engine runs on this directory
//!   node_id         `HOSTNAME-XXXXXXXX`, generated once
//!   replicas.json   {version: 2, boot_id, replicas: [ReplicaRecord…]} (0600: holds secrets)
//!   logs/REPLICA.log, volumes/…, vm/…
//! ```
//! A record's app spec is the normalised single-app manifest text
//! ([`skr8tr_proto::manifest::print_app`]), the same form LAUNCH carries and the Conductor
//! stores; the rest of a record is what only this node knows (pid, start time, port, limits,
//! cgroups). Files of format version 1 (the app as a serde mirror) are still read, by
//! `legacy`, so an agent upgraded in place adopts what the old one started.
//!
//! Every change rewrites `replicas.json` atomically (temp file, fsync, rename, fsync of the
//! directory), so a crash leaves the old or the new version, never a torn one. A record names
//! a process by pid *and* start time; records from before a reboot (another `boot_id`) are
//! never trusted. This module owns the files, not the decision to adopt (the engine's).

mod legacy;
mod node_id;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use skr8tr_proto::manifest::{self, App, SingleAppError};
use skr8tr_proto::name::ReplicaId;

pub use legacy::LegacyAppError;
pub use node_id::{load_or_create_node_id, new_node_id};

use crate::limits::AppliedLimits;
use crate::supervise::Termination;

const RECORDS_FILE: &str = "replicas.json";
const LOCK_FILE: &str = "lock";
/// The format this agent writes: apps as manifest text.
const FORMAT_VERSION: u32 = 2;

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("cannot create state directory {}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state directory {} is in use by another node agent", dir.display())]
    Locked { dir: PathBuf },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a valid replica records file", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} holds an invalid node id {id:?}", path.display())]
    BadNodeId { path: PathBuf, id: String },
}

/// What the records file says about one replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    #[serde(with = "replica_id_serde")]
    pub replica: ReplicaId,
    pub generation: u64,
    /// The leader process, which is also the process group id.
    pub pid: u32,
    /// `/proc/PID/stat` field 22 of `pid` when it was started.
    pub start_time: u64,
    pub port: Option<u16>,
    pub log_path: PathBuf,
    pub restarts: u32,
    pub limits: AppliedLimits,
    pub cgroup_dirs: Vec<PathBuf>,
    pub app: RecordedApp,
    /// Set once the replica ended for good: the record is then kept (until the engine forgets
    /// the replica), so that a restarted agent still reports it as ended instead of not at all
    /// (which the Conductor would read as a replica to replace: a finished job run again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<EndedRecord>,
}

/// How a recorded replica ended for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedRecord {
    /// It ended as `failed` (a failure its policy does not restart), not `exited`.
    pub failed: bool,
    pub termination: Termination,
}

/// A record's app spec: written as normalised single-app manifest text, secrets included
/// (the file is 0600); read in that form or, from a version-1 file, as its serde mirror.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordedApp(AppForm);

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum AppForm {
    Manifest(String),
    #[serde(skip_serializing)]
    Legacy(Box<legacy::LegacyApp>),
}

/// Why a record's app spec cannot be rebuilt (the engine then forgets the record).
#[derive(Debug, thiserror::Error)]
pub enum RecordedAppError {
    #[error("the recorded app spec is not a valid single-app manifest")]
    Manifest(#[source] SingleAppError),
    #[error(transparent)]
    Legacy(#[from] LegacyAppError),
}

impl RecordedApp {
    /// `app` in the form this agent writes.
    #[must_use]
    pub fn new(app: &App) -> Self {
        Self(AppForm::Manifest(manifest::print_app(app)))
    }

    /// The app spec back.
    ///
    /// # Errors
    /// [`RecordedAppError`] when the text (or the version-1 mirror) is not a valid app.
    pub fn to_app(&self) -> Result<App, RecordedAppError> {
        match &self.0 {
            AppForm::Manifest(text) => {
                manifest::parse_app(RECORDS_FILE, text).map_err(RecordedAppError::Manifest)
            }
            AppForm::Legacy(old) => Ok(old.to_app()?),
        }
    }
}

impl fmt::Debug for RecordedApp {
    /// Never the spec itself: it holds the app's secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form = match &self.0 {
            AppForm::Manifest(_) => "manifest",
            AppForm::Legacy(_) => "version-1 mirror",
        };
        f.debug_tuple("RecordedApp").field(&form).finish()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RecordsFile {
    version: u32,
    boot_id: String,
    replicas: Vec<ReplicaRecord>,
}

/// `ReplicaId` as a JSON string, validated when read.
mod replica_id_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use skr8tr_proto::name::ReplicaId;

    pub fn serialize<S: Serializer>(id: &ReplicaId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(id.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ReplicaId, D::Error> {
        ReplicaId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The replica records of a running engine (`replicas.json`).
#[derive(Debug)]
pub struct RecordStore {
    path: PathBuf,
    boot_id: String,
    records: Mutex<BTreeMap<ReplicaId, ReplicaRecord>>,
}

/// The exclusive lock on a state directory (an advisory `flock` on `STATE_DIR/lock`, released
/// when dropped, and never inherited by workloads: the descriptor is close-on-exec).
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] File);

/// What was on disk when the store was opened.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Records that may describe live processes (same boot).
    pub records: Vec<ReplicaRecord>,
    /// Records from before a reboot, or unreadable entries: their processes are gone. (Records
    /// of replicas that had ended are in `records` whatever the boot: they name no process.)
    pub stale: Vec<ReplicaRecord>,
}

/// Creates `dir` (mode 0700) if needed.
///
/// # Errors
/// [`RecordsError::CreateDir`].
pub fn ensure_dir(dir: &Path) -> Result<(), RecordsError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| RecordsError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })
}

/// How long `open` waits for the directory's lock before saying another engine holds it. Not
/// zero: a process forked by another thread of the same program (a workload being started) holds
/// a copy of every descriptor until its `exec` closes them, the lock's among them, so an engine
/// started again in the same process can find the lock still held for a few milliseconds after
/// the previous engine let it go.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// Takes `lock`'s exclusive flock, retrying every 10 ms for up to `wait`; false if it stayed
/// held.
fn lock_within(lock: &File, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if lock.try_lock().is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl RecordStore {
    /// Locks `dir` for this engine and reads its records file (empty when there is none).
    ///
    /// # Errors
    /// [`RecordsError::Locked`] when another engine holds the directory; read or parse errors.
    pub fn open(dir: &Path) -> Result<(Self, Loaded, DirLock), RecordsError> {
        ensure_dir(dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| RecordsError::Write {
                path: lock_path.clone(),
                source,
            })?;
        if !lock_within(&lock, LOCK_WAIT) {
            return Err(RecordsError::Locked {
                dir: dir.to_path_buf(),
            });
        }
        let path = dir.join(RECORDS_FILE);
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let mut loaded = Loaded::default();
        match fs::read(&path) {
            Ok(bytes) => {
                let file: RecordsFile =
                    serde_json::from_slice(&bytes).map_err(|source| RecordsError::Parse {
                        path: path.clone(),
                        source,
                    })?;
                let readable = file.version == FORMAT_VERSION || file.version == legacy::VERSION;
                if file.boot_id == boot_id && readable {
                    loaded.records = file.replicas;
                } else {
                    (loaded.records, loaded.stale) =
                        file.replicas.into_iter().partition(|r| r.ended.is_some());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(RecordsError::Read { path, source }),
        }
        let store = Self {
            path,
            boot_id,
            records: Mutex::new(BTreeMap::new()),
        };
        Ok((store, loaded, DirLock(lock)))
    }

    /// Records (or updates) a live replica and rewrites the file.
    ///
    /// # Errors
    /// [`RecordsError::Write`].
    pub fn upsert(&self, record: ReplicaRecord) -> Result<(), RecordsError> {
        let mut records = self.lock();
        records.insert(record.replica.clone(), record);
        self.persist(&records)
    }

    /// Marks a recorded replica as ended for good and rewrites the file.
    ///
    /// # Errors
    /// [`RecordsError::Write`].
    pub fn mark_ended(&self, replica: &ReplicaId, ended: EndedRecord) -> Result<(), RecordsError> {
        let mut records = self.lock();
        match records.get_mut(replica) {
            Some(record) => {
                record.ended = Some(ended);
                self.persist(&records)
            }
            None => Ok(()),
        }
    }

    /// Forgets a replica (the engine no longer keeps it) and rewrites the file.
    ///
    /// # Errors
    /// [`RecordsError::Write`].
    pub fn remove(&self, replica: &ReplicaId) -> Result<(), RecordsError> {
        let mut records = self.lock();
        if records.remove(replica).is_some() {
            self.persist(&records)
        } else {
            Ok(())
        }
    }

    /// Rewrites the file with what the store holds now (after adoption dropped stale records).
    ///
    /// # Errors
    /// [`RecordsError::Write`].
    pub fn flush(&self) -> Result<(), RecordsError> {
        let records = self.lock();
        self.persist(&records)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ReplicaId, ReplicaRecord>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn persist(&self, records: &BTreeMap<ReplicaId, ReplicaRecord>) -> Result<(), RecordsError> {
        let file = RecordsFile {
            version: FORMAT_VERSION,
            boot_id: self.boot_id.clone(),
            replicas: records.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| RecordsError::Write {
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomically(&self.path, &bytes)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, with fsyncs, mode 0600.
///
/// # Errors
/// [`RecordsError::Write`].
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RecordsError> {
    let err = |source| RecordsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        // Makes the rename itself durable; not every filesystem supports it, hence best effort.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, pid: u32) -> ReplicaRecord {
        let app = App::with_defaults(
            skr8tr_proto::name::AppName::new("api").unwrap(),
            Some("/bin/true".into()),
        );
        ReplicaRecord {
            replica: ReplicaId::new(id).unwrap(),
            generation: 2,
            pid,
            start_time: 12345,
            port: Some(8080),
            log_path: PathBuf::from("/tmp/x.log"),
            restarts: 1,
            limits: AppliedLimits::default(),
            cgroup_dirs: vec![],
            app: RecordedApp::new(&app),
            ended: None,
        }
    }

    #[test]
    fn an_ended_record_keeps_how_it_ended_even_across_a_reboot() {
        let dir = tempfile::tempdir().unwrap();
        let ended = EndedRecord {
            failed: true,
            termination: Termination::Code(3),
        };
        {
            let (store, _, _lock) = RecordStore::open(dir.path()).unwrap();
            store.upsert(record("a", 10)).unwrap();
            store.upsert(record("b", 11)).unwrap();
            store
                .mark_ended(&ReplicaId::new("a").unwrap(), ended)
                .unwrap();
            store
                .mark_ended(&ReplicaId::new("zzz").unwrap(), ended)
                .unwrap();
        }
        let (_store, loaded, lock) = RecordStore::open(dir.path()).unwrap();
        let a = ReplicaRecord {
            ended: Some(ended),
            ..record("a", 10)
        };
        assert_eq!(loaded.records, [a.clone(), record("b", 11)]);
        drop(lock);
        // after a reboot the live one is stale, the ended one is still a fact
        let text = fs::read_to_string(dir.path().join(RECORDS_FILE)).unwrap();
        let mut file: RecordsFile = serde_json::from_str(&text).unwrap();
        file.boot_id = "some-other-boot".into();
        fs::write(
            dir.path().join(RECORDS_FILE),
            serde_json::to_vec(&file).unwrap(),
        )
        .unwrap();
        let (_store, loaded, _lock) = RecordStore::open(dir.path()).unwrap();
        assert_eq!(loaded.records, [a]);
        assert_eq!(loaded.stale, [record("b", 11)]);
    }

    #[test]
    fn records_survive_a_reopen_and_the_directory_is_locked_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, loaded, _lock) = RecordStore::open(dir.path()).unwrap();
            assert!(loaded.records.is_empty());
            assert!(matches!(
                RecordStore::open(dir.path()),
                Err(RecordsError::Locked { .. })
            ));
            store.upsert(record("a", 10)).unwrap();
            store.upsert(record("b", 11)).unwrap();
            store.upsert(record("a", 12)).unwrap();
            store.remove(&ReplicaId::new("b").unwrap()).unwrap();
            store.remove(&ReplicaId::new("zzz").unwrap()).unwrap();
        }
        let (_store, loaded, _lock) = RecordStore::open(dir.path()).unwrap();
        assert_eq!(loaded.records, [record("a", 12)]);
        assert!(!dir.path().join("replicas.json.tmp").exists());
    }

    #[test]
    fn records_of_another_boot_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let file = RecordsFile {
            version: FORMAT_VERSION,
            boot_id: "some-other-boot".into(),
            replicas: vec![record("a", 10)],
        };
        fs::write(
            dir.path().join(RECORDS_FILE),
            serde_json::to_vec(&file).unwrap(),
        )
        .unwrap();
        let (_store, loaded, _lock) = RecordStore::open(dir.path()).unwrap();
        assert!(loaded.records.is_empty());
        assert_eq!(loaded.stale.len(), 1);
    }

    #[test]
    fn a_corrupt_records_file_is_an_error_not_a_silent_reset() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(RECORDS_FILE), b"{not json").unwrap();
        assert!(matches!(
            RecordStore::open(dir.path()),
            Err(RecordsError::Parse { .. })
        ));
    }

    /// Every field of an app (build, secrets, volumes, health, scale, rollout…) comes back
    /// from the file as it went in, and the file holds it as manifest text.
    #[test]
    fn the_app_spec_survives_the_file_as_manifest_text() {
        let text = "\
app queue-worker
  build
    run make
    out bin/worker
  args --queue \"a b\"
  port auto
  replicas 6
  ram 512mb
  cpus 2
  restart on-failure
  drain 20s
  health { check GET /ready 204; interval 2s; timeout 500ms; retries 5 }
  env { RUST_LOG info }
  secret { SMTP_PASSWORD \"correct horse\" }
  volume { path /var/spool/w; env SPOOL_DIR }
  rollout { settle 15s; healthy-deadline 2m; auto-revert false }
  scale { min 2; max 20; cpu-above 75%; cpu-below 25%; cooldown 2m }
";
        let app = manifest::parse_app("t", text).unwrap();
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _, _lock) = RecordStore::open(dir.path()).unwrap();
            let mut r = record("w", 10);
            r.app = RecordedApp::new(&app);
            store.upsert(r).unwrap();
        }
        let (_store, loaded, _lock) = RecordStore::open(dir.path()).unwrap();
        assert_eq!(loaded.records[0].app.to_app().unwrap(), app);
        let file: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join(RECORDS_FILE)).unwrap()).unwrap();
        assert_eq!(file["version"], FORMAT_VERSION);
        assert_eq!(file["replicas"][0]["app"], manifest::print_app(&app));
    }

    #[test]
    fn a_bad_app_text_is_an_error_and_debug_never_shows_the_spec() {
        let mut r = record("a", 10);
        r.app = RecordedApp(AppForm::Manifest("app a\n  exek /bin/a\n".into()));
        assert!(matches!(r.app.to_app(), Err(RecordedAppError::Manifest(_))));
        assert_eq!(format!("{:?}", r.app), "RecordedApp(\"manifest\")");
    }
}
