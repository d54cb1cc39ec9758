//! What happened in the fleet, for operators (SPEC §7.4 `skr8tr events`, the status page):
//! placements, launches, exits with code or signal, health changes, rollout steps, node joins
//! and losses, each with its time and reason.
//!
//! ```text
//! State (pure) ──note(Event)──▶ its outbox ──take_events──▶ daemon stamps seq + time ──▶ EventLog
//!                                                                         │ (bounded ring)
//!                          EVENTS|after|app ◀── since(after, app) ◀───────┘──▶ status page
//! ```
//! Owns the event type and the ring. [`State`](super::state::State) notes events where it
//! decides or learns something; it reads no clock, so the daemon stamps each event with the
//! Unix time as it takes it. The ring keeps the newest [`CAPACITY`] events in memory only: a
//! restarted Conductor starts a new history (its sequence numbers start again at 1, which a
//! follower of the old ones notices because they go down).

use std::collections::VecDeque;

use skr8tr_proto::name::{AppName, NodeId, ReplicaId};
use skr8tr_proto::wire::{EventEntry, EventKind, OneLine};

/// Events kept.
pub const CAPACITY: usize = 1000;

/// An event as State notes it, before the daemon stamps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub app: Option<AppName>,
    pub replica: Option<ReplicaId>,
    pub node: Option<NodeId>,
    /// Why, or what: one line, never a secret.
    pub detail: String,
}

impl Event {
    /// An event of `kind` about nothing in particular yet.
    #[must_use]
    pub fn new(kind: EventKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            app: None,
            replica: None,
            node: None,
            detail: detail.into(),
        }
    }

    #[must_use]
    pub fn app(mut self, app: &AppName) -> Self {
        self.app = Some(app.clone());
        self
    }

    #[must_use]
    pub fn replica(mut self, replica: &ReplicaId) -> Self {
        self.replica = Some(replica.clone());
        self
    }

    #[must_use]
    pub fn node(mut self, node: &NodeId) -> Self {
        self.node = Some(node.clone());
        self
    }
}

/// The newest events, numbered from 1.
#[derive(Debug, Default)]
pub struct EventLog {
    ring: VecDeque<EventEntry>,
    next_seq: u64,
}

impl EventLog {
    #[must_use]
    pub fn new() -> Self {
        Self {
            ring: VecDeque::with_capacity(64),
            next_seq: 1,
        }
    }

    /// Appends `event` at Unix milliseconds `at_ms`; the oldest goes when the ring is full.
    pub fn push(&mut self, event: Event, at_ms: u64) -> &EventEntry {
        if self.ring.len() >= CAPACITY {
            self.ring.pop_front();
        }
        let seq = self.next_seq.max(1);
        self.next_seq = seq + 1;
        self.ring.push_back(EventEntry {
            seq,
            at_ms,
            kind: event.kind,
            app: event.app,
            replica: event.replica,
            node: event.node,
            detail: OneLine::lossy(&event.detail),
        });
        // Just pushed: the ring is not empty.
        &self.ring[self.ring.len() - 1]
    }

    /// The events after `after` (0: from the oldest kept), of `app` when given, oldest first,
    /// at most `limit`.
    #[must_use]
    pub fn since(&self, after: u64, app: Option<&AppName>, limit: usize) -> Vec<EventEntry> {
        self.ring
            .iter()
            .filter(|e| e.seq > after)
            .filter(|e| app.is_none_or(|a| e.app.as_ref() == Some(a)))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The newest `n` events, oldest first.
    #[must_use]
    pub fn newest(&self, n: usize) -> Vec<EventEntry> {
        let skip = self.ring.len().saturating_sub(n);
        self.ring.iter().skip(skip).cloned().collect()
    }

    /// The sequence number of the newest event (0 when none).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.next_seq.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(s: &str) -> AppName {
        AppName::new(s).unwrap()
    }

    #[test]
    fn the_ring_keeps_the_newest_numbered_in_order() {
        let mut log = EventLog::new();
        assert_eq!(log.last_seq(), 0);
        for i in 0..(CAPACITY + 5) {
            let e = Event::new(EventKind::Placed, format!("e{i}")).app(&app(if i % 2 == 0 {
                "even"
            } else {
                "odd"
            }));
            log.push(e, 1_000 + i as u64);
        }
        assert_eq!(log.last_seq(), (CAPACITY + 5) as u64);
        let all = log.since(0, None, usize::MAX);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].seq, 6, "the five oldest went");
        assert!(all.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
        let after = log.since(1000, None, usize::MAX);
        assert_eq!(after.first().map(|e| e.seq), Some(1001));
        let odd = log.since(1000, Some(&app("odd")), 2);
        assert_eq!(odd.len(), 2);
        assert!(odd.iter().all(|e| e.seq % 2 == 0), "odd apps got even seqs");
        let newest = log.newest(3);
        assert_eq!(
            newest.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1003, 1004, 1005]
        );
    }

    #[test]
    fn details_become_one_line() {
        let mut log = EventLog::new();
        let e = log.push(Event::new(EventKind::LaunchFailed, "a\nb|c"), 5);
        // `|` stays: the wire escapes it inside an event entry.
        assert_eq!(e.detail.as_str(), "a b|c");
    }
}
