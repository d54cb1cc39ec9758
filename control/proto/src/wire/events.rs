//! One Conductor event ([`EventEntry`]) as a `,`-list entry of `OK|EVENTS`:
//!
//! ```text
//! <seq>:<at_ms>:<kind>:<app>:<replica>:<node>:<detail>
//! 42:1765152000123:exited:api:api.g2.r1:node-a:exit 3
//! ```
//! `app`, `replica` and `node` are empty when the event is not about one. `detail` is one line
//! of text with `%`, `,`, `:` and `|` percent-encoded (`%25`, `%2C`, `%3A`, `%7C`), so it never
//! holds a separator; everything else travels as it is.

use std::fmt::{self, Write as _};

use super::error::WireError;
use super::fields::{FieldValue, bad, part, parts};
use super::types::OneLine;
use crate::name::{AppName, NodeId, ReplicaId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// SUBMIT added or changed an app.
    Submitted,
    /// EVICT removed an app.
    Evicted,
    /// The desired replica count changed (SCALE or autoscale).
    Scaled,
    /// A replica was placed on a node (LAUNCH sent).
    Placed,
    /// The node started its process.
    Launched,
    /// The node could not start it.
    LaunchFailed,
    /// Its health check passed.
    Healthy,
    /// It was healthy and no longer is.
    Unhealthy,
    /// Its process ended (code or signal in the detail).
    Exited,
    /// The kernel killed it for going over its `ram`.
    OomKilled,
    /// It is being stopped (drain, then kill); the detail says why.
    Stopping,
    /// It ended for good (a finished job, a dead `restart never` app).
    Ended,
    /// A rollout began.
    RolloutStarted,
    /// A rollout moved on (a new replica ready, an old one retired, what it waits for).
    RolloutStep,
    /// Every replica runs the new generation.
    RolloutComplete,
    /// It was aborted and the previous generation restored.
    RolloutReverted,
    /// It was aborted and left as it was (`auto-revert` off).
    RolloutFailed,
    /// A node's first heartbeat (or its first after it was lost).
    NodeJoined,
    /// A node fell silent past the expiry.
    NodeLost,
    /// A scheduled job's time came and its run began.
    RunStarted,
    /// A scheduled job's time came while its previous run was still going: this one is skipped.
    RunSkipped,
}

const KINDS: &[(EventKind, &str)] = &[
    (EventKind::Submitted, "submitted"),
    (EventKind::Evicted, "evicted"),
    (EventKind::Scaled, "scaled"),
    (EventKind::Placed, "placed"),
    (EventKind::Launched, "launched"),
    (EventKind::LaunchFailed, "launch-failed"),
    (EventKind::Healthy, "healthy"),
    (EventKind::Unhealthy, "unhealthy"),
    (EventKind::Exited, "exited"),
    (EventKind::OomKilled, "oom-killed"),
    (EventKind::Stopping, "stopping"),
    (EventKind::Ended, "ended"),
    (EventKind::RolloutStarted, "rollout-started"),
    (EventKind::RolloutStep, "rollout-step"),
    (EventKind::RolloutComplete, "rollout-complete"),
    (EventKind::RolloutReverted, "rollout-reverted"),
    (EventKind::RolloutFailed, "rollout-failed"),
    (EventKind::NodeJoined, "node-joined"),
    (EventKind::NodeLost, "node-lost"),
    (EventKind::RunStarted, "run-started"),
    (EventKind::RunSkipped, "run-skipped"),
];

impl EventKind {
    /// The wire keyword (`launch-failed`).
    #[must_use]
    pub fn keyword(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("?", |(_, word)| word)
    }

    /// Every kind, in a fixed order.
    pub fn all() -> impl Iterator<Item = Self> {
        KINDS.iter().map(|(k, _)| *k)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

impl FieldValue for EventKind {
    fn parse_field(verb: &'static str, field: &'static str, raw: &str) -> Result<Self, WireError> {
        KINDS
            .iter()
            .find(|(_, word)| *word == raw)
            .map(|(k, _)| *k)
            .ok_or_else(|| bad(verb, field, format!("unknown event kind {raw:?}")))
    }
}

/// One event of the Conductor's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEntry {
    /// Numbers events from 1 in the order they happened (a restarted Conductor starts again).
    pub seq: u64,
    /// When, in Unix milliseconds.
    pub at_ms: u64,
    pub kind: EventKind,
    pub app: Option<AppName>,
    pub replica: Option<ReplicaId>,
    pub node: Option<NodeId>,
    /// Why or what, one line (never a secret).
    pub detail: OneLine,
}

/// Writes `event` as one list entry.
pub(super) fn write(out: &mut String, e: &EventEntry) -> fmt::Result {
    let app = e.app.as_ref().map_or("", AppName::as_str);
    let replica = e.replica.as_ref().map_or("", ReplicaId::as_str);
    let node = e.node.as_ref().map_or("", NodeId::as_str);
    write!(
        out,
        "{}:{}:{}:{app}:{replica}:{node}:",
        e.seq, e.at_ms, e.kind
    )?;
    for c in e.detail.as_str().chars() {
        match c {
            '%' => out.push_str("%25"),
            ',' => out.push_str("%2C"),
            ':' => out.push_str("%3A"),
            '|' => out.push_str("%7C"),
            c => out.push(c),
        }
    }
    Ok(())
}

/// Reads one list entry written by [`write`].
pub(super) fn read(verb: &'static str, entry: &str) -> Result<EventEntry, WireError> {
    let field = "events";
    let [seq, at_ms, kind, app, replica, node, detail] = parts::<7>(verb, field, entry)?;
    let detail = unescape(detail).ok_or_else(|| bad(verb, field, "bad %-escape in a detail"))?;
    Ok(EventEntry {
        seq: part(verb, "seq", seq)?,
        at_ms: part(verb, "at_ms", at_ms)?,
        kind: part(verb, "kind", kind)?,
        app: optional(app).map(|a| part(verb, "app", a)).transpose()?,
        replica: optional(replica)
            .map(|r| part(verb, "replica_id", r))
            .transpose()?,
        node: optional(node)
            .map(|n| part(verb, "node_id", n))
            .transpose()?,
        detail: OneLine::new(detail).map_err(|_| bad(verb, field, "a detail with a line break"))?,
    })
}

/// An empty part is an absent value.
fn optional(raw: &str) -> Option<&str> {
    (!raw.is_empty()).then_some(raw)
}

/// Undoes [`write`]'s four escapes; `None` on any other `%`.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let c = match rest.get(at + 1..at + 3)? {
            "25" => '%',
            "2C" => ',',
            "3A" => ':',
            "7C" => '|',
            _ => return None,
        };
        out.push(c);
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail: &str) -> EventEntry {
        EventEntry {
            seq: 42,
            at_ms: 1_765_152_000_123,
            kind: EventKind::Exited,
            app: Some(AppName::new("api").unwrap()),
            replica: Some(ReplicaId::new("api.g2.r1").unwrap()),
            node: Some(NodeId::new("node-a").unwrap()),
            detail: OneLine::new(detail).unwrap(),
        }
    }

    #[test]
    fn entries_round_trip_with_their_separators_escaped() {
        for (detail, text) in [
            (
                "exit 3",
                "42:1765152000123:exited:api:api.g2.r1:node-a:exit 3",
            ),
            (
                "a:b,c|d%e é",
                "42:1765152000123:exited:api:api.g2.r1:node-a:a%3Ab%2Cc%7Cd%25e é",
            ),
            ("", "42:1765152000123:exited:api:api.g2.r1:node-a:"),
        ] {
            let e = entry(detail);
            let mut out = String::new();
            write(&mut out, &e).unwrap();
            assert_eq!(out, text);
            assert_eq!(read("OK|EVENTS", &out).unwrap(), e);
        }
        let bare = EventEntry {
            app: None,
            replica: None,
            node: None,
            kind: EventKind::NodeLost,
            ..entry("x")
        };
        let mut out = String::new();
        write(&mut out, &bare).unwrap();
        assert_eq!(out, "42:1765152000123:node-lost::::x");
        assert_eq!(read("OK|EVENTS", &out).unwrap(), bare);
    }

    #[test]
    fn kinds_are_distinct_keywords() {
        let words: std::collections::HashSet<_> =
            EventKind::all().map(EventKind::keyword).collect();
        assert_eq!(words.len(), KINDS.len());
        for k in EventKind::all() {
            assert_eq!(EventKind::parse_field("v", "f", k.keyword()), Ok(k));
        }
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "1:2:exited:::",
            "x:2:exited::::",
            "1:2:nope::::",
            "1:2:exited:bad name::::",
            "1:2:exited::::%zz",
            "1:2:exited::::%2",
            "1:2:exited:::::extra",
        ] {
            assert!(read("OK|EVENTS", bad).is_err(), "{bad}");
        }
    }
}
