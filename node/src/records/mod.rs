//! The node's durable state under `--state-dir`: which replicas it runs (so a restarted agent
//! adopts them instead of orphaning or duplicating them) and its stable node id.
//!
//! ```text
//! STATE_DIR/ (0700)
//!   lock            held (flock) while an engine runs on this directory
//!   node_id         `HOSTNAME-XXXXXXXX`, generated once
//!   replicas.json   {version, boot_id, replicas: [ReplicaRecord…]} (0600: holds secrets)
//!   logs/REPLICA.log, volumes/…, vm/…
//! ```
//! Every change rewrites `replicas.json` atomically (temp file, fsync, rename, fsync of the
//! directory), so a crash leaves the old or the new version, never a torn one. A record names
//! a process by pid *and* start time; records from before a reboot (another `boot_id`) are
//! never trusted. This module owns the files, not the decision to adopt (the engine's).

mod app_record;

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use skr8tr_proto::name::{MAX_NAME_LEN, NameError, NodeId, ReplicaId};

pub use app_record::{AppRecord, AppRecordError};

use crate::limits::AppliedLimits;

const RECORDS_FILE: &str = "replicas.json";
const NODE_ID_FILE: &str = "node_id";
const LOCK_FILE: &str = "lock";
const FORMAT_VERSION: u32 = 1;

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
    pub app: AppRecord,
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
    /// Records from before a reboot, or unreadable entries: their processes are gone.
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
        lock.try_lock().map_err(|_| RecordsError::Locked {
            dir: dir.to_path_buf(),
        })?;
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
                if file.boot_id == boot_id && file.version == FORMAT_VERSION {
                    loaded.records = file.replicas;
                } else {
                    loaded.stale = file.replicas;
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

    /// Forgets a replica (it ended for good) and rewrites the file.
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

/// The node's id from `dir/node_id`, generated and stored on first use:
/// the hostname (reduced to name characters) and 8 random hex digits.
///
/// # Errors
/// Read/write errors, or [`RecordsError::BadNodeId`] when the stored id is invalid.
pub fn load_or_create_node_id(dir: &Path) -> Result<NodeId, RecordsError> {
    ensure_dir(dir)?;
    let path = dir.join(NODE_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            NodeId::new(id).map_err(|_| RecordsError::BadNodeId {
                path: path.clone(),
                id: id.to_owned(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let id = new_node_id(&hostname, random_u32()).map_err(|_| RecordsError::BadNodeId {
                path: path.clone(),
                id: hostname.trim().to_owned(),
            })?;
            write_atomically(&path, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
        Err(source) => Err(RecordsError::Read { path, source }),
    }
}

/// `HOST-xxxxxxxx` from a hostname and a random number: characters outside the name alphabet
/// become `-`, the host part is cut to fit 63 characters, and an empty host becomes `node`.
///
/// # Errors
/// None in practice (the result is built from the name alphabet); the [`NameError`] of
/// [`NodeId::new`] is passed on rather than assumed away.
pub fn new_node_id(hostname: &str, random: u32) -> Result<NodeId, NameError> {
    let suffix = format!("{random:08x}");
    let host: String = hostname
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NAME_LEN - suffix.len() - 1)
        .collect();
    let host = host.trim_matches('.');
    let host = if host.is_empty() { "node" } else { host };
    NodeId::new(format!("{host}-{suffix}"))
}

fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    let read = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if read.is_err() {
        // No urandom: fall back to time and pid, still distinct between nodes in practice.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return nanos ^ std::process::id().rotate_left(16);
    }
    u32::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, pid: u32) -> ReplicaRecord {
        let app = skr8tr_proto::manifest::App::with_defaults(
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
            app: AppRecord::from(&app),
        }
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

    #[test]
    fn node_id_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_node_id(dir.path()).unwrap();
        let b = load_or_create_node_id(dir.path()).unwrap();
        assert_eq!(a, b);
        fs::write(dir.path().join(NODE_ID_FILE), "bad id|\n").unwrap();
        assert!(matches!(
            load_or_create_node_id(dir.path()),
            Err(RecordsError::BadNodeId { .. })
        ));
    }

    #[test]
    fn node_id_from_odd_hostnames() {
        let table = [
            ("web-1", 0xdead_beef, "web-1-deadbeef"),
            ("web 1.example.com\n", 1, "web-1.example.com-00000001"),
            ("", 2, "node-00000002"),
            ("..", 3, "node-00000003"),
            ("héllo", 4, "h-llo-00000004"),
        ];
        for (host, random, want) in table {
            assert_eq!(
                new_node_id(host, random).unwrap().as_str(),
                want,
                "{host:?}"
            );
        }
        let long = "x".repeat(100);
        assert_eq!(new_node_id(&long, 5).unwrap().as_str().len(), MAX_NAME_LEN);
    }
}
