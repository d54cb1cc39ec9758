//! `skr8tr events [-f] [--app APP]`: the Conductor's event log (placements, launches, exits,
//! health changes, rollout steps, node joins and losses), oldest first, each with its time
//! and reason; `-f` keeps printing new ones.
//!
//! ```text
//! EVENTS|<after>|<app> ─▶ Conductor ─▶ OK|EVENTS|<last_seq>|<n>|…   (unsigned, read-only)
//! one-shot: page through with `after` = the last seq received until none are left
//! -f:       then every 500 ms; a last_seq below `after` means the Conductor restarted: start over
//! ```
//! Text is one aligned line per event (one-shot) or one line per event as it comes (`-f`);
//! `--json` is one object (one-shot) or one object per event per line (`-f`, for log
//! shippers). The functions from events to text and JSON are pure and tested here.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use skr8tr_proto::name::AppName;
use skr8tr_proto::wire::{ConductorReply, ConductorRequest, EventEntry};

use super::global::GlobalArgs;
use super::output::{print_json, print_text, success};
use super::remote::{Endpoint, unexpected};
use super::table::Table;

/// How often `events -f` asks for new events.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// An event's time as RFC 3339 UTC with milliseconds.
#[must_use]
pub fn time_text(at_ms: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(at_ms);
    humantime::format_rfc3339_millis(at).to_string()
}

fn cells(e: &EventEntry) -> [String; 6] {
    let or_dash = |s: Option<&str>| s.unwrap_or("-").to_owned();
    [
        time_text(e.at_ms),
        e.kind.keyword().to_owned(),
        or_dash(e.app.as_ref().map(AppName::as_str)),
        or_dash(e.replica.as_ref().map(|r| r.as_str())),
        or_dash(e.node.as_ref().map(|n| n.as_str())),
        e.detail.as_str().to_owned(),
    ]
}

/// The one-shot table.
#[must_use]
pub fn events_table(events: &[EventEntry]) -> Table {
    let mut t = Table::new(["TIME", "EVENT", "APP", "REPLICA", "NODE", "DETAIL"]);
    for e in events {
        t.row(cells(e));
    }
    t
}

/// One event as a line of text (`-f`): the table's cells, two spaces apart.
#[must_use]
pub fn event_line(e: &EventEntry) -> String {
    let mut line = cells(e).join("  ");
    line.push('\n');
    line
}

/// One event as JSON; absent app, replica or node are `null`.
#[must_use]
pub fn event_json(e: &EventEntry) -> Value {
    json!({
        "seq": e.seq,
        "at_ms": e.at_ms,
        "time": time_text(e.at_ms),
        "kind": e.kind.keyword(),
        "app": e.app.as_ref().map(AppName::as_str),
        "replica": e.replica.as_ref().map(|r| r.as_str()),
        "node": e.node.as_ref().map(|n| n.as_str()),
        "detail": e.detail.as_str(),
    })
}

/// One page of events after `after`: the events and the Conductor's newest sequence number.
fn page(
    conductor: &Endpoint,
    after: u64,
    app: Option<&AppName>,
) -> anyhow::Result<(Vec<EventEntry>, u64)> {
    let req = ConductorRequest::Events {
        after,
        app: app.cloned(),
    };
    match conductor.ask_conductor(&req)? {
        ConductorReply::Events { last_seq, events } => Ok((events, last_seq)),
        other => Err(unexpected("conductor", "EVENTS", &other).into()),
    }
}

/// Every event after `after` (paging), and the newest sequence number.
fn all_after(
    conductor: &Endpoint,
    mut after: u64,
    app: Option<&AppName>,
) -> anyhow::Result<(Vec<EventEntry>, u64)> {
    let mut out = Vec::new();
    loop {
        let (events, last_seq) = page(conductor, after, app)?;
        if last_seq < after {
            return Ok((out, last_seq));
        }
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok((out, last_seq));
        };
        after = last;
        out.extend(events);
        if after >= last_seq {
            return Ok((out, last_seq));
        }
    }
}

/// `skr8tr events`.
///
/// # Errors
/// The Conductor refused or did not answer (before anything was printed, or while following
/// without an answer for long); stdout gone.
pub fn run(global: &GlobalArgs, follow: bool, app: Option<&AppName>) -> anyhow::Result<ExitCode> {
    let conductor = Endpoint::conductor(global, false)?;
    let (events, mut after) = all_after(&conductor, 0, app)?;
    if !follow {
        if global.json {
            let list: Vec<Value> = events.iter().map(event_json).collect();
            print_json(&success("events", json!({ "events": list })))?;
        } else {
            print_text(&events_table(&events).render())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let show = |events: &[EventEntry]| -> anyhow::Result<()> {
        for e in events {
            if global.json {
                print_json(&event_json(e))?;
            } else {
                print_text(&event_line(e))?;
            }
        }
        Ok(())
    };
    show(&events)?;
    let mut warned = false;
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        match all_after(&conductor, after, app) {
            Ok((events, last_seq)) => {
                warned = false;
                if last_seq < after {
                    eprintln!("skr8tr: events: the Conductor restarted; its log starts over");
                    after = 0;
                    continue;
                }
                show(&events)?;
                after = events.last().map_or(after, |e| e.seq).max(after);
            }
            Err(e) if !warned => {
                eprintln!("skr8tr: events: {e:#}; still trying");
                warned = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::name::{NodeId, ReplicaId};
    use skr8tr_proto::wire::{EventKind, OneLine};

    use super::*;

    fn events() -> Vec<EventEntry> {
        vec![
            EventEntry {
                seq: 1,
                at_ms: 1_765_152_000_123,
                kind: EventKind::NodeJoined,
                app: None,
                replica: None,
                node: Some(NodeId::new("node-a").unwrap()),
                detail: OneLine::new("at 10.0.0.5").unwrap(),
            },
            EventEntry {
                seq: 2,
                at_ms: 1_765_152_001_000,
                kind: EventKind::Exited,
                app: Some(AppName::new("api").unwrap()),
                replica: Some(ReplicaId::new("api.g1.r1").unwrap()),
                node: Some(NodeId::new("node-a").unwrap()),
                detail: OneLine::new("exit 3").unwrap(),
            },
        ]
    }

    #[test]
    fn table_line_and_json() {
        assert_eq!(
            events_table(&events()).render(),
            "TIME                      EVENT        APP  REPLICA    NODE    DETAIL\n\
             2025-12-08T00:00:00.123Z  node-joined  -    -          node-a  at 10.0.0.5\n\
             2025-12-08T00:00:01.000Z  exited       api  api.g1.r1  node-a  exit 3\n"
        );
        assert_eq!(
            event_line(&events()[1]),
            "2025-12-08T00:00:01.000Z  exited  api  api.g1.r1  node-a  exit 3\n"
        );
        let v = event_json(&events()[0]);
        assert_eq!(v["kind"], "node-joined");
        assert_eq!(v["app"], Value::Null);
        assert_eq!(v["time"], "2025-12-08T00:00:00.123Z");
        assert_eq!(v["seq"], 1);
    }
}
