//! Scheduled jobs (`schedule "<cron>"`, SPEC §7.5): when each one's next run is due, and
//! whether it starts or is skipped because the previous run is still going. A pure core over
//! the apps and replica records; [`reconcile`](super::reconcile) launches a run's replicas
//! once its start is recorded here.
//!
//! ```text
//! tick(now) ─▶ per scheduled app: now ≥ next? ─ no ─▶ wait
//!                                   │ yes
//!                 a replica of it still runs? ─ yes ─▶ RunSkipped (never two at once)
//!                                   │ no
//!                                   ▼
//!                 RunStarted: run_started = now ─▶ reconcile places `replicas` of it
//! then next = the first occurrence after now
//! ```
//! Owns no clock and nothing durable: a restarted Conductor reckons the next occurrence from
//! its start (runs missed while it was down are not made up, as cron does), and a run it finds
//! going on keeps going but is not retried if it fails. Replicas of a run are those of the
//! current generation placed at or after the run's start; a new generation (a changed spec)
//! has no run until its next time.

use std::collections::{BTreeMap, HashMap};

use skr8tr_proto::manifest::Schedule;
use skr8tr_proto::name::AppName;
use skr8tr_proto::wire::EventKind;

use super::events::Event;
use super::model::{AppRecord, ReplicaPhase, ReplicaRecord};

/// One scheduled app's timing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Track {
    /// The schedule the times below were reckoned from (a new one starts afresh).
    schedule: Schedule,
    /// The next occurrence in Unix milliseconds; `None` when the pattern never occurs again.
    next_ms: Option<u64>,
    /// When the current (or last) run of the app's current generation started.
    run_started_ms: Option<u64>,
    /// The generation that run belongs to.
    run_generation: u64,
    /// When the last run of any generation started.
    last_run_ms: Option<u64>,
}

/// Every scheduled app's timing.
#[derive(Debug, Default)]
pub struct Schedules {
    tracks: HashMap<AppName, Track>,
}

impl Schedules {
    /// Brings the tracks in line with the apps at Unix time `now_ms` and starts (or skips) each
    /// run that is due. Returns the events to note.
    pub fn tick(
        &mut self,
        apps: &BTreeMap<AppName, AppRecord>,
        replicas: &BTreeMap<skr8tr_proto::name::ReplicaId, ReplicaRecord>,
        now_ms: u64,
    ) -> Vec<Event> {
        self.tracks.retain(|name, t| {
            apps.get(name).and_then(|a| a.spec.schedule.as_ref()) == Some(&t.schedule)
        });
        let mut events = Vec::new();
        for (name, app) in apps {
            let Some(schedule) = &app.spec.schedule else {
                continue;
            };
            let track = self.tracks.entry(name.clone()).or_insert_with(|| Track {
                schedule: schedule.clone(),
                next_ms: schedule.next_after(now_ms),
                run_started_ms: None,
                run_generation: app.generation,
                last_run_ms: None,
            });
            // A changed spec runs from its next time, not from the old spec's run.
            if track.run_generation != app.generation {
                track.run_started_ms = None;
                track.run_generation = app.generation;
            }
            let Some(due) = track.next_ms.filter(|&next| next <= now_ms) else {
                continue;
            };
            let running = replicas.values().find(|r| {
                &r.app == name && !matches!(r.phase, ReplicaPhase::Ended | ReplicaPhase::Stopping)
            });
            track.next_ms = schedule.next_after(now_ms);
            let next = track
                .next_ms
                .map_or_else(|| "none".to_owned(), |ms| ms.to_string());
            if let Some(r) = running {
                tracing::warn!(app = %name, replica = %r.id, "scheduled run skipped: the previous one is still running");
                events.push(
                    Event::new(
                        EventKind::RunSkipped,
                        format!("due at {due}: the previous run is still going (next at {next})"),
                    )
                    .app(name)
                    .replica(&r.id),
                );
            } else {
                tracing::info!(app = %name, cron = %schedule.cron, "scheduled run started");
                track.run_started_ms = Some(now_ms);
                track.last_run_ms = Some(now_ms);
                events.push(
                    Event::new(
                        EventKind::RunStarted,
                        format!(
                            "`{}` in {}, due at {due}: {} replica(s) (next at {next})",
                            schedule.cron, schedule.timezone, app.desired
                        ),
                    )
                    .app(name),
                );
            }
        }
        events
    }

    /// When `app`'s current run started, if it is scheduled and has run since this Conductor
    /// started.
    #[must_use]
    pub fn run_started(&self, app: &AppName) -> Option<u64> {
        self.tracks.get(app)?.run_started_ms
    }

    /// When `app`'s last run started, of any generation (what `status` shows).
    #[must_use]
    pub fn last_run(&self, app: &AppName) -> Option<u64> {
        self.tracks.get(app)?.last_run_ms
    }

    /// Every started run, by app (for the planner).
    #[must_use]
    pub fn runs(&self) -> HashMap<AppName, u64> {
        self.tracks
            .iter()
            .filter_map(|(name, t)| Some((name.clone(), t.run_started_ms?)))
            .collect()
    }

    /// When `app` runs next, in Unix milliseconds.
    #[must_use]
    pub fn next(&self, app: &AppName) -> Option<u64> {
        self.tracks.get(app)?.next_ms
    }
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::manifest::{App, WorkloadKind};
    use skr8tr_proto::name::{NodeId, ReplicaId};

    use super::*;

    /// 2026-12-08T00:00:00Z.
    const MIDNIGHT: u64 = 1_796_688_000_000;

    fn apps(cron: &str) -> BTreeMap<AppName, AppRecord> {
        let name = AppName::new("backup").unwrap();
        let mut spec = App::with_defaults(name.clone(), Some("/bin/true".into()));
        spec.kind = WorkloadKind::Job;
        spec.schedule = Some(Schedule {
            cron: cron.into(),
            timezone: "UTC".into(),
        });
        BTreeMap::from([(
            name,
            AppRecord {
                spec,
                generation: 1,
                desired: 1,
            },
        )])
    }

    fn replica(phase: ReplicaPhase) -> BTreeMap<ReplicaId, ReplicaRecord> {
        let id = ReplicaId::new("backup.g1.r1").unwrap();
        let record = ReplicaRecord {
            id: id.clone(),
            app: AppName::new("backup").unwrap(),
            generation: 1,
            node: NodeId::new("n1").unwrap(),
            phase,
            pid: None,
            port: None,
            port_spec: None,
            ram: 0,
            cpu_millis: 0,
            placed_at_ms: MIDNIGHT,
            exit: None,
            gpus: 0,
        };
        BTreeMap::from([(id, record)])
    }

    fn kinds(events: &[Event]) -> Vec<EventKind> {
        events.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn a_run_starts_at_each_occurrence_and_not_before() {
        let apps = apps("*/10 * * * * *");
        let name = AppName::new("backup").unwrap();
        let mut s = Schedules::default();
        assert!(s.tick(&apps, &BTreeMap::new(), MIDNIGHT).is_empty());
        assert_eq!(s.next(&name), Some(MIDNIGHT + 10_000));
        assert!(s.tick(&apps, &BTreeMap::new(), MIDNIGHT + 9_999).is_empty());
        assert_eq!(s.run_started(&name), None);
        let e = s.tick(&apps, &BTreeMap::new(), MIDNIGHT + 10_200);
        assert_eq!(kinds(&e), [EventKind::RunStarted]);
        assert_eq!(s.run_started(&name), Some(MIDNIGHT + 10_200));
        assert_eq!(s.runs().get(&name), Some(&(MIDNIGHT + 10_200)));
        assert_eq!(s.next(&name), Some(MIDNIGHT + 20_000));
        // Late ticks do not make up for missed occurrences: one run, then the next after now.
        let e = s.tick(&apps, &BTreeMap::new(), MIDNIGHT + 45_000);
        assert_eq!(kinds(&e), [EventKind::RunStarted]);
        assert_eq!(s.next(&name), Some(MIDNIGHT + 50_000));
    }

    #[test]
    fn a_run_due_while_the_last_still_runs_is_skipped() {
        let apps = apps("*/10 * * * * *");
        let name = AppName::new("backup").unwrap();
        let mut s = Schedules::default();
        s.tick(&apps, &BTreeMap::new(), MIDNIGHT);
        s.tick(&apps, &BTreeMap::new(), MIDNIGHT + 10_000);
        let e = s.tick(&apps, &replica(ReplicaPhase::Running), MIDNIGHT + 20_000);
        assert_eq!(kinds(&e), [EventKind::RunSkipped]);
        assert_eq!(
            e[0].replica.as_ref().map(ReplicaId::as_str),
            Some("backup.g1.r1")
        );
        // The run in progress keeps its start.
        assert_eq!(s.run_started(&name), Some(MIDNIGHT + 10_000));
        // Once it ended, the next occurrence runs.
        let e = s.tick(&apps, &replica(ReplicaPhase::Ended), MIDNIGHT + 30_000);
        assert_eq!(kinds(&e), [EventKind::RunStarted]);
        assert_eq!(s.run_started(&name), Some(MIDNIGHT + 30_000));
    }

    #[test]
    fn a_new_generation_has_no_run_until_its_next_time() {
        let name = AppName::new("backup").unwrap();
        let mut apps = apps("*/10 * * * * *");
        let mut s = Schedules::default();
        s.tick(&apps, &BTreeMap::new(), MIDNIGHT);
        s.tick(&apps, &BTreeMap::new(), MIDNIGHT + 10_000);
        assert!(s.run_started(&name).is_some());
        if let Some(a) = apps.get_mut(&name) {
            a.generation = 2;
        }
        assert!(
            s.tick(&apps, &BTreeMap::new(), MIDNIGHT + 11_000)
                .is_empty()
        );
        assert_eq!(s.run_started(&name), None);
        assert!(s.runs().is_empty());
        let e = s.tick(&apps, &BTreeMap::new(), MIDNIGHT + 20_000);
        assert_eq!(kinds(&e), [EventKind::RunStarted]);
    }

    #[test]
    fn a_new_schedule_starts_afresh_and_an_evicted_app_is_forgotten() {
        let name = AppName::new("backup").unwrap();
        let mut s = Schedules::default();
        s.tick(&apps("*/10 * * * * *"), &BTreeMap::new(), MIDNIGHT);
        s.tick(&apps("*/10 * * * * *"), &BTreeMap::new(), MIDNIGHT + 10_000);
        assert!(s.run_started(&name).is_some());
        // Daily at 03:00 from now on: no run now, the next at 03:00.
        assert!(
            s.tick(&apps("0 3 * * *"), &BTreeMap::new(), MIDNIGHT + 11_000)
                .is_empty()
        );
        assert_eq!(s.run_started(&name), None);
        assert_eq!(s.next(&name), Some(MIDNIGHT + 3 * 3_600_000));
        s.tick(&BTreeMap::new(), &BTreeMap::new(), MIDNIGHT + 12_000);
        assert_eq!(s.next(&name), None);
    }
}
