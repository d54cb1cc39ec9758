//! Adoption at engine start: each replica recorded by an earlier agent is either supervised
//! again (its pid is alive, is a process-group leader, and has the recorded start time) or
//! forgotten and reported as exited. Never both, never neither: no orphan, no duplicate.
//!
//! A record of a replica that had ended for good is neither: it is listed again as it ended.
//!
//! An adopted process is not our child: it is watched through a pidfd, opened *before* the
//! final identity check so the check and the watch are about the same process even if the pid
//! is reused meanwhile. Its ring of log lines is rebuilt from its log file.

use std::sync::Arc;

use skr8tr_proto::manifest::App;

use super::{Engine, StartReport};
use crate::events::Event;
use crate::limits;
use crate::logs::LogTail;
use crate::process::ProcHandle;
use crate::records::{EndedRecord, Loaded, ReplicaRecord};
use crate::replica::{Replica, Running};
use crate::stats;
use crate::supervise::{Phase, Termination};

/// Why a record is not adopted (traced, then the record is forgotten).
#[derive(Debug, thiserror::Error)]
enum NotAdopted {
    #[error("the recorded app spec is invalid")]
    BadSpec(#[from] crate::records::RecordedAppError),
    #[error("process {pid} is gone or is another process now")]
    Gone { pid: u32 },
    #[error("cannot watch process {pid}")]
    Watch {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("its port {port} is held by another replica")]
    Port { port: u16 },
}

impl Engine {
    pub(super) fn adopt_all(&self, loaded: Loaded) -> StartReport {
        let mut report = StartReport::default();
        for record in loaded.records {
            let id = record.replica.clone();
            if let Some(ended) = record.ended {
                self.list_ended(record, ended);
                report.ended.push(id);
                continue;
            }
            match self.adopt_one(&record) {
                Ok(()) => {
                    tracing::info!(replica = %id, pid = record.pid, "adopted running replica");
                    report.adopted.push(id);
                }
                Err(reason) => {
                    tracing::info!(replica = %id, pid = record.pid, %reason, "forgetting replica");
                    self.forget(record);
                    report.forgotten.push(id);
                }
            }
        }
        for record in loaded.stale {
            report.forgotten.push(record.replica.clone());
            self.forget(record);
        }
        report
    }

    fn adopt_one(&self, record: &ReplicaRecord) -> Result<(), NotAdopted> {
        let app = record.app.to_app()?;
        let pid = record.pid;
        let is_leader = stats::read_pid_stat(pid).is_some_and(|s| s.pgrp == pid);
        if !is_leader || !stats::is_same_process(pid, record.start_time) {
            return Err(NotAdopted::Gone { pid });
        }
        let handle = ProcHandle::adopt(pid).map_err(|source| NotAdopted::Watch { pid, source })?;
        if !stats::is_same_process(pid, record.start_time) {
            return Err(NotAdopted::Gone { pid });
        }
        let ctx = self.ctx();
        if let Some(port) = record.port {
            ctx.ports
                .hold_fixed(port, &record.replica)
                .map_err(|_| NotAdopted::Port { port })?;
        }
        let running = Running {
            handle,
            pid,
            start_time: record.start_time,
            started: tokio::time::Instant::now(),
            limits: record.limits,
            cgroup_dirs: record.cgroup_dirs.clone(),
        };
        let logs = LogTail::from_start(&record.log_path);
        self.insert_running(
            replica_of(record, app),
            logs,
            running,
            true,
            record.restarts,
        );
        Ok(())
    }

    /// A replica that had ended for good before: listed again as it ended, its logs readable,
    /// its record kept; nothing is reported (it was when it ended).
    fn list_ended(&self, record: ReplicaRecord, ended: EndedRecord) {
        let Ok(app) = record.app.to_app() else {
            let _ = self.ctx().store.remove(&record.replica);
            return;
        };
        let phase = if ended.failed {
            Phase::Failed
        } else {
            Phase::Exited
        };
        let logs = LogTail::from_start(&record.log_path);
        // Kept in the store as it was read (the engine rewrites the file after adoption).
        let _ = self.ctx().store.upsert(record.clone());
        self.insert_ended(replica_of(&record, app), logs, (phase, ended.termination));
    }

    /// The record's process is gone: drop its cgroups, report it exited, keep its logs readable.
    fn forget(&self, record: ReplicaRecord) {
        limits::remove_cgroup_dirs(&record.cgroup_dirs);
        let Ok(app) = record.app.to_app() else {
            return;
        };
        self.events()
            .send(Event::forgotten(record.replica.clone(), app.name.clone()));
        let logs = LogTail::from_start(&record.log_path);
        let ended = (Phase::Exited, Termination::Unknown);
        self.insert_ended(replica_of(&record, app), logs, ended);
    }
}

/// The replica `record` describes, with its app spec already rebuilt.
fn replica_of(record: &ReplicaRecord, app: App) -> Replica {
    Replica {
        id: record.replica.clone(),
        generation: record.generation,
        app: Arc::new(app),
        port: record.port,
        log_path: record.log_path.clone(),
    }
}
