//! The Conductor's durable state: desired apps and placed replicas in an embedded, crash-safe
//! database (redb: copy-on-write B-trees, a commit is atomic and durable once it returns).
//!
//! It owns the file `conductor.redb` under `--state-dir` and the text encoding of records in it;
//! it makes no decisions. The daemon applies every change of a reconcile pass as one
//! transaction, so a crash leaves the state before or after the pass, never half of it. Apps are
//! stored as their normalised manifest text (secrets included: the state directory is 0700).

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use skr8tr_proto::manifest::{self, PortSpec};
use skr8tr_proto::name::{AppName, NodeId, ReplicaId};

use super::model::{AppRecord, ReplicaPhase, ReplicaRecord};
use super::rollout::Rollout;
use skr8tr_proto::wire::{Exit, RolloutState};

const APPS: TableDefinition<&str, &str> = TableDefinition::new("apps");
const REPLICAS: TableDefinition<&str, &str> = TableDefinition::new("replicas");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ROLLOUTS: TableDefinition<&str, &str> = TableDefinition::new("rollouts");
/// `<app>/<generation, 20 digits>` → `<at_ms>\n<desired>\n<manifest>`: the specs an app ran,
/// for HISTORY and ROLLBACK (the zero-padded generation keeps them in order).
const GENERATIONS: TableDefinition<&str, &str> = TableDefinition::new("generations");
/// `<timestamp, 20 digits>/<replay id, hex>`: the operator commands accepted within the
/// signature window, so that a restarted Conductor refuses their replay too.
const REPLAYS: TableDefinition<&str, ()> = TableDefinition::new("replays");
const SEQ: &str = "replica_seq";

/// A small page cache: the Conductor reads the database once at start.
const CACHE_BYTES: usize = 256 * 1024;

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state database {}", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("state database {}: record {key:?} is corrupt: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

/// One change to persist.
#[derive(Debug, Clone)]
pub enum Change {
    PutApp(Box<AppRecord>),
    DeleteApp(AppName),
    PutReplica(ReplicaRecord),
    DeleteReplica(ReplicaId),
    PutRollout(Box<Rollout>),
    DeleteRollout(AppName),
    Seq(u64),
    /// A generation an app was submitted (or rolled back) with.
    PutGeneration(Box<GenerationRecord>),
    /// Forget one stored generation (the oldest, past the ones kept).
    DeleteGeneration(AppName, u64),
    /// Forget every stored generation of an app (it was evicted).
    DeleteGenerations(AppName),
    /// An operator command accepted (its signature's timestamp and replay id).
    Accepted(u64, [u8; 32]),
    /// Forget the accepted commands signed before this timestamp (out of the window now).
    ForgetAcceptedBefore(u64),
}

fn replay_key(timestamp: u64, id: &[u8; 32]) -> String {
    let mut key = format!("{timestamp:020}/");
    for b in id {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

/// One stored generation of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationRecord {
    pub app: AppName,
    pub generation: u64,
    /// When it was submitted, Unix milliseconds.
    pub at_ms: u64,
    pub desired: u32,
    pub spec: manifest::App,
}

fn generation_key(app: &AppName, generation: u64) -> String {
    format!("{app}/{generation:020}")
}

/// What a restarted Conductor reads back.
#[derive(Debug, Default)]
pub struct Loaded {
    pub apps: Vec<AppRecord>,
    pub replicas: Vec<ReplicaRecord>,
    pub rollouts: Vec<Rollout>,
    pub seq: u64,
}

/// The open database.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) `DIR/conductor.redb`, creating DIR with mode 0700.
    ///
    /// # Errors
    /// [`StoreError`] naming the path.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        let path = dir.join("conductor.redb");
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| db_err(&path, e))?;
        let store = Self { db, path };
        // Make sure the tables exist so that reads of a fresh store succeed.
        store.apply(&[])?;
        Ok(store)
    }

    /// Reads everything back.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a corrupt record.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let p = &self.path;
        let tx = self.db.begin_read().map_err(|e| db_err(p, e))?;
        let mut loaded = Loaded::default();
        let apps = tx.open_table(APPS).map_err(|e| db_err(p, e))?;
        for item in apps.iter().map_err(|e| db_err(p, e))? {
            let (k, v) = item.map_err(|e| db_err(p, e))?;
            let record = decode_app(v.value()).map_err(|reason| StoreError::Corrupt {
                path: p.clone(),
                key: k.value().to_string(),
                reason,
            })?;
            loaded.apps.push(record);
        }
        let replicas = tx.open_table(REPLICAS).map_err(|e| db_err(p, e))?;
        for item in replicas.iter().map_err(|e| db_err(p, e))? {
            let (k, v) = item.map_err(|e| db_err(p, e))?;
            let record =
                decode_replica(k.value(), v.value()).map_err(|reason| StoreError::Corrupt {
                    path: p.clone(),
                    key: k.value().to_string(),
                    reason,
                })?;
            loaded.replicas.push(record);
        }
        let rollouts = tx.open_table(ROLLOUTS).map_err(|e| db_err(p, e))?;
        for item in rollouts.iter().map_err(|e| db_err(p, e))? {
            let (k, v) = item.map_err(|e| db_err(p, e))?;
            let record =
                decode_rollout(k.value(), v.value()).map_err(|reason| StoreError::Corrupt {
                    path: p.clone(),
                    key: k.value().to_string(),
                    reason,
                })?;
            loaded.rollouts.push(record);
        }
        let meta = tx.open_table(META).map_err(|e| db_err(p, e))?;
        loaded.seq = meta
            .get(SEQ)
            .map_err(|e| db_err(p, e))?
            .map_or(0, |v| v.value());
        Ok(loaded)
    }

    /// Applies `changes` in one durable transaction.
    ///
    /// # Errors
    /// [`StoreError`] on I/O; nothing of `changes` is then persisted.
    pub fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let p = &self.path;
        let tx = self.db.begin_write().map_err(|e| db_err(p, e))?;
        {
            let mut apps = tx.open_table(APPS).map_err(|e| db_err(p, e))?;
            let mut replicas = tx.open_table(REPLICAS).map_err(|e| db_err(p, e))?;
            let mut meta = tx.open_table(META).map_err(|e| db_err(p, e))?;
            let mut rollouts = tx.open_table(ROLLOUTS).map_err(|e| db_err(p, e))?;
            let mut generations = tx.open_table(GENERATIONS).map_err(|e| db_err(p, e))?;
            let mut replays = tx.open_table(REPLAYS).map_err(|e| db_err(p, e))?;
            for change in changes {
                match change {
                    Change::PutApp(app) => {
                        apps.insert(app.spec.name.as_str(), encode_app(app).as_str())
                            .map_err(|e| db_err(p, e))?;
                    }
                    Change::DeleteApp(name) => {
                        apps.remove(name.as_str()).map_err(|e| db_err(p, e))?;
                    }
                    Change::PutReplica(r) => {
                        replicas
                            .insert(r.id.as_str(), encode_replica(r).as_str())
                            .map_err(|e| db_err(p, e))?;
                    }
                    Change::DeleteReplica(id) => {
                        replicas.remove(id.as_str()).map_err(|e| db_err(p, e))?;
                    }
                    Change::PutRollout(r) => {
                        rollouts
                            .insert(r.app.as_str(), encode_rollout(r).as_str())
                            .map_err(|e| db_err(p, e))?;
                    }
                    Change::DeleteRollout(app) => {
                        rollouts.remove(app.as_str()).map_err(|e| db_err(p, e))?;
                    }
                    Change::Seq(seq) => {
                        meta.insert(SEQ, *seq).map_err(|e| db_err(p, e))?;
                    }
                    Change::PutGeneration(g) => {
                        let text = format!(
                            "{}\n{}\n{}",
                            g.at_ms,
                            g.desired,
                            manifest::print_app(&g.spec)
                        );
                        generations
                            .insert(generation_key(&g.app, g.generation).as_str(), text.as_str())
                            .map_err(|e| db_err(p, e))?;
                    }
                    Change::DeleteGeneration(app, generation) => {
                        generations
                            .remove(generation_key(app, *generation).as_str())
                            .map_err(|e| db_err(p, e))?;
                    }
                    Change::Accepted(timestamp, id) => {
                        replays
                            .insert(replay_key(*timestamp, id).as_str(), ())
                            .map_err(|e| db_err(p, e))?;
                    }
                    Change::ForgetAcceptedBefore(timestamp) => {
                        let to = format!("{timestamp:020}/");
                        replays
                            .retain_in(..to.as_str(), |_, ()| false)
                            .map_err(|e| db_err(p, e))?;
                    }
                    Change::DeleteGenerations(app) => {
                        let (from, to) = (format!("{app}/"), format!("{app}0"));
                        generations
                            .retain_in(from.as_str()..to.as_str(), |_, _| false)
                            .map_err(|e| db_err(p, e))?;
                    }
                }
            }
        }
        tx.commit().map_err(|e| db_err(p, e))
    }
}

impl Store {
    /// The stored generations of `app`, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a corrupt record.
    pub fn generations(&self, app: &AppName) -> Result<Vec<GenerationRecord>, StoreError> {
        let p = &self.path;
        let tx = self.db.begin_read().map_err(|e| db_err(p, e))?;
        let table = tx.open_table(GENERATIONS).map_err(|e| db_err(p, e))?;
        // `/` sorts just below `0`: every key of the app lies between these two.
        let (from, to) = (format!("{app}/"), format!("{app}0"));
        let mut out = Vec::new();
        for item in table
            .range(from.as_str()..to.as_str())
            .map_err(|e| db_err(p, e))?
        {
            let (k, v) = item.map_err(|e| db_err(p, e))?;
            let key = k.value().to_owned();
            let record =
                decode_generation(app, &key, v.value()).map_err(|reason| StoreError::Corrupt {
                    path: p.clone(),
                    key,
                    reason,
                })?;
            out.push(record);
        }
        Ok(out)
    }

    /// The operator commands accepted at or after `since` (timestamp, replay id).
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a corrupt record.
    pub fn accepted_since(&self, since: u64) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        let p = &self.path;
        let tx = self.db.begin_read().map_err(|e| db_err(p, e))?;
        let table = tx.open_table(REPLAYS).map_err(|e| db_err(p, e))?;
        let from = format!("{since:020}/");
        let mut out = Vec::new();
        for item in table.range(from.as_str()..).map_err(|e| db_err(p, e))? {
            let (k, _) = item.map_err(|e| db_err(p, e))?;
            let key = k.value().to_owned();
            let parsed = key.split_once('/').and_then(|(ts, hex)| {
                let ts: u64 = ts.parse().ok()?;
                let mut id = [0u8; 32];
                if hex.len() != 64 {
                    return None;
                }
                for (i, b) in id.iter_mut().enumerate() {
                    *b = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
                }
                Some((ts, id))
            });
            match parsed {
                Some(entry) => out.push(entry),
                None => {
                    return Err(StoreError::Corrupt {
                        path: p.clone(),
                        key,
                        reason: "not <timestamp>/<64 hex digits>".into(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Stored generation `generation` of `app`, if it is kept.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a corrupt record.
    pub fn generation(
        &self,
        app: &AppName,
        generation: u64,
    ) -> Result<Option<GenerationRecord>, StoreError> {
        let p = &self.path;
        let tx = self.db.begin_read().map_err(|e| db_err(p, e))?;
        let table = tx.open_table(GENERATIONS).map_err(|e| db_err(p, e))?;
        let key = generation_key(app, generation);
        let Some(v) = table.get(key.as_str()).map_err(|e| db_err(p, e))? else {
            return Ok(None);
        };
        decode_generation(app, &key, v.value())
            .map(Some)
            .map_err(|reason| StoreError::Corrupt {
                path: p.clone(),
                key,
                reason,
            })
    }
}

fn decode_generation(app: &AppName, key: &str, text: &str) -> Result<GenerationRecord, String> {
    let generation = key
        .rsplit_once('/')
        .and_then(|(_, g)| g.parse().ok())
        .ok_or("bad generation in the key")?;
    let mut parts = text.splitn(3, '\n');
    let at_ms = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad time")?;
    let desired = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad desired count")?;
    let spec = manifest::parse_app(STORE_FILE, parts.next().ok_or("no manifest")?)
        .map_err(|e| e.to_string())?;
    Ok(GenerationRecord {
        app: app.clone(),
        generation,
        at_ms,
        desired,
        spec,
    })
}

fn db_err(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    StoreError::Database {
        path: path.to_path_buf(),
        source: Box::new(e.into()),
    }
}

/// The file name the manifest parser reports for a stored app spec.
const STORE_FILE: &str = "<state>";

/// `<generation>\n<desired>\n<normalised manifest>`.
fn encode_app(app: &AppRecord) -> String {
    let text = manifest::print_app(&app.spec);
    format!("{}\n{}\n{text}", app.generation, app.desired)
}

fn decode_app(text: &str) -> Result<AppRecord, String> {
    let mut parts = text.splitn(3, '\n');
    let generation = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad generation")?;
    let desired = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad desired count")?;
    let body = parts.next().ok_or("no manifest")?;
    let spec = manifest::parse_app(STORE_FILE, body).map_err(|e| e.to_string())?;
    Ok(AppRecord {
        spec,
        generation,
        desired,
    })
}

/// `from|to|previous_desired|state|started_ms|replaced|detail (one line)\n<previous manifest>`.
fn encode_rollout(r: &Rollout) -> String {
    let text = manifest::print_app(&r.previous);
    format!(
        "{}|{}|{}|{}|{}|{}|{}\n{text}",
        r.from_generation,
        r.to_generation,
        r.previous_desired,
        r.state.keyword(),
        r.started_ms,
        r.replaced,
        r.detail.replace('\n', " ")
    )
}

fn decode_rollout(app: &str, text: &str) -> Result<Rollout, String> {
    let (head, body) = text.split_once('\n').ok_or("no manifest")?;
    let f: Vec<&str> = head.splitn(7, '|').collect();
    let [from, to, desired, state, started, replaced, detail] = f.as_slice() else {
        return Err(format!("{} fields, expected 7", f.len()));
    };
    let previous = manifest::parse_app(STORE_FILE, body).map_err(|e| e.to_string())?;
    Ok(Rollout {
        app: AppName::new(app).map_err(|e| e.to_string())?,
        from_generation: from.parse().map_err(|_| "bad generation")?,
        to_generation: to.parse().map_err(|_| "bad generation")?,
        previous,
        previous_desired: desired.parse().map_err(|_| "bad count")?,
        state: RolloutState::from_keyword(state).ok_or("bad state")?,
        started_ms: started.parse().map_err(|_| "bad time")?,
        replaced: replaced.parse().map_err(|_| "bad count")?,
        detail: (*detail).to_string(),
    })
}

/// `app|generation|node|phase|pid|port|port_spec|ram|cpu_millis|placed_at_ms|exit|gpus` (`exit`
/// as the wire writes it, `-` while unknown; records written before `exit` or `gpus` existed
/// end earlier).
fn encode_replica(r: &ReplicaRecord) -> String {
    let port_spec = match r.port_spec {
        None => "-".to_string(),
        Some(PortSpec::Auto) => "auto".to_string(),
        Some(PortSpec::Fixed(p)) => p.to_string(),
    };
    format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        r.app,
        r.generation,
        r.node,
        r.phase.word(),
        r.pid.map_or(String::from("-"), |p| p.to_string()),
        r.port.map_or(String::from("-"), |p| p.to_string()),
        port_spec,
        r.ram,
        r.cpu_millis,
        r.placed_at_ms,
        r.exit.map_or(String::from("-"), |e| e.to_string()),
        r.gpus
    )
}

fn decode_replica(id: &str, text: &str) -> Result<ReplicaRecord, String> {
    let mut f: Vec<&str> = text.split('|').collect();
    let gpus = match f.len() {
        12 => f.pop(),
        _ => None,
    };
    let exit = match f.len() {
        11 => f.pop().filter(|e| *e != "-"),
        _ => None,
    };
    let [
        app,
        generation,
        node,
        phase,
        pid,
        port,
        port_spec,
        ram,
        cpu,
        placed,
    ] = f.as_slice()
    else {
        return Err(format!("{} fields, expected 10 to 12", f.len()));
    };
    let opt = |s: &str| -> Result<Option<u32>, String> {
        if s == "-" {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| format!("bad number {s:?}"))
        }
    };
    Ok(ReplicaRecord {
        id: ReplicaId::new(id).map_err(|e| e.to_string())?,
        app: AppName::new(*app).map_err(|e| e.to_string())?,
        generation: generation.parse().map_err(|_| "bad generation")?,
        node: NodeId::new(*node).map_err(|e| e.to_string())?,
        phase: match *phase {
            "launching" => ReplicaPhase::Launching,
            "running" => ReplicaPhase::Running,
            "healthy" => ReplicaPhase::Healthy,
            "stopping" => ReplicaPhase::Stopping,
            "ended" => ReplicaPhase::Ended,
            other => return Err(format!("bad phase {other:?}")),
        },
        pid: opt(pid)?,
        port: opt(port)?
            .map(|p| u16::try_from(p).map_err(|_| "bad port"))
            .transpose()?,
        port_spec: match *port_spec {
            "-" => None,
            "auto" => Some(PortSpec::Auto),
            n => Some(PortSpec::Fixed(n.parse().map_err(|_| "bad port spec")?)),
        },
        ram: ram.parse().map_err(|_| "bad ram")?,
        cpu_millis: cpu.parse().map_err(|_| "bad cpu")?,
        placed_at_ms: placed.parse().map_err(|_| "bad time")?,
        exit: exit
            .map(|e| e.parse::<Exit>().map_err(|_| format!("bad exit {e:?}")))
            .transpose()?,
        gpus: gpus.map_or(Ok(0), |g| g.parse().map_err(|_| format!("bad gpus {g:?}")))?,
    })
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::manifest::{App, SecretValue, SecretVar};

    use super::*;

    fn app() -> AppRecord {
        let mut spec = App::with_defaults(AppName::new("api").unwrap(), Some("/bin/api".into()));
        spec.port = Some(PortSpec::Auto);
        spec.secrets.push(SecretVar {
            key: "TOKEN".into(),
            value: SecretValue::new("s3cret"),
        });
        AppRecord {
            spec,
            generation: 3,
            desired: 2,
        }
    }

    fn replica(n: u32) -> ReplicaRecord {
        ReplicaRecord {
            id: ReplicaId::new(format!("api.g3.r{n}")).unwrap(),
            app: AppName::new("api").unwrap(),
            generation: 3,
            node: NodeId::new("node-a").unwrap(),
            phase: ReplicaPhase::Healthy,
            pid: Some(4242),
            port: Some(41000),
            port_spec: Some(PortSpec::Fixed(8080)),
            ram: 1 << 20,
            cpu_millis: 500,
            placed_at_ms: 1_700_000_000_000,
            exit: None,
            gpus: 0,
        }
    }

    fn ended(n: u32, exit: Exit) -> ReplicaRecord {
        ReplicaRecord {
            phase: ReplicaPhase::Ended,
            pid: None,
            exit: Some(exit),
            ..replica(n)
        }
    }

    #[test]
    fn accepted_commands_are_kept_until_forgotten_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = |b: u8| [b; 32];
        store
            .apply(&[
                Change::Accepted(100, id(1)),
                Change::Accepted(130, id(2)),
                Change::Accepted(131, id(3)),
            ])
            .unwrap();
        assert_eq!(
            store.accepted_since(0).unwrap(),
            vec![(100, id(1)), (130, id(2)), (131, id(3))]
        );
        assert_eq!(
            store.accepted_since(130).unwrap(),
            vec![(130, id(2)), (131, id(3))]
        );
        store.apply(&[Change::ForgetAcceptedBefore(131)]).unwrap();
        assert_eq!(store.accepted_since(0).unwrap(), vec![(131, id(3))]);
    }

    #[test]
    fn generations_are_kept_in_order_per_app_and_forgotten_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let api = AppName::new("api").unwrap();
        let apiary = AppName::new("apiary").unwrap();
        let g = |app: &AppName, generation: u64| {
            let mut rec = app_for(app);
            rec.desired = u32::try_from(generation).unwrap();
            Change::PutGeneration(Box::new(GenerationRecord {
                app: app.clone(),
                generation,
                at_ms: 1_000 + generation,
                desired: rec.desired,
                spec: rec.spec,
            }))
        };
        store
            .apply(&[g(&api, 2), g(&api, 10), g(&api, 1), g(&apiary, 1)])
            .unwrap();
        let gens: Vec<u64> = store
            .generations(&api)
            .unwrap()
            .iter()
            .map(|r| r.generation)
            .collect();
        assert_eq!(gens, vec![1, 2, 10], "numeric order, not another app's");
        let ten = store.generation(&api, 10).unwrap().unwrap();
        assert_eq!((ten.at_ms, ten.desired), (1_010, 10));
        assert_eq!(ten.spec.secrets.len(), 1, "stored whole, secrets included");
        assert_eq!(store.generation(&api, 3).unwrap(), None);
        store
            .apply(&[Change::DeleteGeneration(api.clone(), 1)])
            .unwrap();
        assert_eq!(store.generations(&api).unwrap().len(), 2);
        store
            .apply(&[Change::DeleteGenerations(api.clone())])
            .unwrap();
        assert!(store.generations(&api).unwrap().is_empty());
        assert_eq!(store.generations(&apiary).unwrap().len(), 1);
    }

    fn app_for(name: &AppName) -> AppRecord {
        let mut rec = app();
        rec.spec.name = name.clone();
        rec
    }

    #[test]
    fn a_record_written_before_exits_were_kept_still_reads() {
        let old = "api|3|node-a|healthy|4242|41000|8080|1048576|500|1700000000000";
        assert_eq!(decode_replica("api.g3.r1", old).unwrap(), replica(1));
        let new = encode_replica(&ended(1, Exit::Code(3)));
        assert!(
            new.ends_with("|ended|-|41000|8080|1048576|500|1700000000000|3|0"),
            "{new}"
        );
        let with_exit = "api|3|node-a|ended|-|41000|8080|1048576|500|1700000000000|3";
        assert_eq!(
            decode_replica("api.g3.r1", with_exit).unwrap(),
            ended(1, Exit::Code(3))
        );
        let gpus = ReplicaRecord {
            gpus: 2,
            ..replica(1)
        };
        assert_eq!(
            decode_replica("api.g3.r1", &encode_replica(&gpus)).unwrap(),
            gpus
        );
        assert_eq!(
            decode_replica("api.g3.r1", &new).unwrap(),
            ended(1, Exit::Code(3))
        );
    }

    #[test]
    fn survives_a_reopen_exactly() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .apply(&[
                    Change::PutApp(Box::new(app())),
                    Change::PutReplica(replica(1)),
                    Change::PutReplica(replica(2)),
                    Change::PutReplica(ended(3, Exit::Signal(9))),
                    Change::Seq(2),
                ])
                .unwrap();
            store
                .apply(&[Change::DeleteReplica(ReplicaId::new("api.g3.r1").unwrap())])
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.apps, vec![app()]);
        assert_eq!(loaded.replicas, vec![replica(2), ended(3, Exit::Signal(9))]);
        assert_eq!(loaded.seq, 2);
        store
            .apply(&[Change::DeleteApp(AppName::new("api").unwrap())])
            .unwrap();
        assert!(store.load().unwrap().apps.is_empty());
    }

    #[test]
    fn a_fresh_store_is_empty_and_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let store = Store::open(&state).unwrap();
        let loaded = store.load().unwrap();
        assert!(loaded.apps.is_empty() && loaded.replicas.is_empty() && loaded.seq == 0);
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn corrupt_records_are_named() {
        assert!(
            decode_replica("r1", "api|1|node|healthy")
                .unwrap_err()
                .contains("4 fields")
        );
        assert!(
            decode_replica("r1", "api|1|node|zombie|-|-|-|0|0|0")
                .unwrap_err()
                .contains("zombie")
        );
        assert!(decode_app("x\n1\napp a").is_err());
        let r = replica(7);
        assert_eq!(
            decode_replica(r.id.as_str(), &encode_replica(&r)).unwrap(),
            r
        );
    }
}
