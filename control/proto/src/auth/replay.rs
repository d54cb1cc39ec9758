//! The replay cache: remembers every accepted signed command until its timestamp has left the
//! window, in bounded memory.
//!
//! Owns one ordered set of `(timestamp, replay id)`: ordered by timestamp, it answers "seen?"
//! and yields the oldest entries first for expiry. An entry for timestamp `ts` expires at
//! `ts + window + 1` — from then on the timestamp check alone refuses that command, so forgetting
//! it is safe.
//!
//! Invariant: a live entry is never evicted. When the cache is full of live entries, the new
//! command is refused ([`AuthError::ReplayCacheFull`]): fail closed, never forget. Only
//! signatures that verified are inserted (the [`super::Verifier`] guarantees it), so an attacker
//! without a key cannot fill the cache.
//!
//! Assumes the clock does not step back by more than the window: an entry forgotten at
//! `ts + window + 1` would be accepted again if the clock then went back into the window.

use std::collections::BTreeSet;

use super::error::AuthError;

/// Default number of live entries (a 60 s window at ~1,000 signed commands per second).
pub const DEFAULT_REPLAY_CAPACITY: usize = 65_536;

/// Bounded set of recently accepted signed commands.
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    window_s: u64,
    capacity: usize,
    /// `(timestamp, replay id)`: the timestamp first, so iteration is oldest first.
    entries: BTreeSet<(u64, [u8; 32])>,
}

impl ReplayGuard {
    /// A cache for timestamps accepted within ±`window_s`, holding at most `capacity` entries.
    #[must_use]
    pub const fn new(window_s: u64, capacity: usize) -> Self {
        Self {
            window_s,
            capacity,
            entries: BTreeSet::new(),
        }
    }

    /// Whether the command with this timestamp and replay id was accepted before (and is still
    /// remembered).
    #[must_use]
    pub fn contains(&self, timestamp: u64, id: &[u8; 32]) -> bool {
        self.entries.contains(&(timestamp, *id))
    }

    /// Records an accepted command. Expired entries are dropped first.
    ///
    /// # Errors
    /// [`AuthError::Replayed`] when it is already there; [`AuthError::ReplayCacheFull`] when
    /// `capacity` live entries remain after expiry.
    pub fn insert(&mut self, timestamp: u64, id: [u8; 32], now: u64) -> Result<(), AuthError> {
        self.expire(now);
        if self.entries.contains(&(timestamp, id)) {
            return Err(AuthError::Replayed);
        }
        if self.entries.len() >= self.capacity {
            return Err(AuthError::ReplayCacheFull {
                capacity: self.capacity,
            });
        }
        self.entries.insert((timestamp, id));
        Ok(())
    }

    /// Drops every entry whose timestamp is outside the window at `now`.
    pub fn expire(&mut self, now: u64) {
        while let Some(&(timestamp, _)) = self.entries.first() {
            if !self.is_expired(timestamp, now) {
                break;
            }
            self.entries.pop_first();
        }
    }

    /// Number of remembered entries (expired ones included until the next insert or expire).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most entries it holds.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether a command stamped `timestamp` is outside the window at `now` (from
    /// `timestamp + window + 1` on), without overflow at either end of `u64`.
    const fn is_expired(&self, timestamp: u64, now: u64) -> bool {
        now.saturating_sub(timestamp) > self.window_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn a_second_insert_is_a_replay() {
        let mut guard = ReplayGuard::new(30, 4);
        assert_eq!(guard.insert(100, id(1), 100), Ok(()));
        assert!(guard.contains(100, &id(1)));
        assert_eq!(guard.insert(100, id(1), 100), Err(AuthError::Replayed));
        assert_eq!(guard.insert(100, id(2), 100), Ok(()));
        assert_eq!(guard.len(), 2);
    }

    #[test]
    fn the_timestamp_is_part_of_the_key() {
        let mut guard = ReplayGuard::new(30, 4);
        assert_eq!(guard.insert(100, id(1), 100), Ok(()));
        assert!(!guard.contains(101, &id(1)));
        assert_eq!(guard.insert(101, id(1), 100), Ok(()));
    }

    #[test]
    fn entries_live_until_ts_plus_window_plus_one() {
        let mut guard = ReplayGuard::new(30, 4);
        guard.insert(100, id(1), 100).unwrap();
        guard.expire(130);
        assert!(
            guard.contains(100, &id(1)),
            "still inside the window at ts + 30"
        );
        guard.expire(131);
        assert!(!guard.contains(100, &id(1)), "gone at ts + 31");
        assert!(guard.is_empty());
    }

    #[test]
    fn a_full_cache_refuses_rather_than_evicting_a_live_entry() {
        let mut guard = ReplayGuard::new(30, 3);
        for n in 0..3 {
            guard.insert(100, id(n), 100).unwrap();
        }
        assert_eq!(
            guard.insert(100, id(9), 110),
            Err(AuthError::ReplayCacheFull { capacity: 3 })
        );
        for n in 0..3 {
            assert!(guard.contains(100, &id(n)), "live entry {n} kept");
        }
        // A replay of a live entry is still reported as a replay, not as "full".
        assert_eq!(guard.insert(100, id(1), 110), Err(AuthError::Replayed));
    }

    #[test]
    fn a_full_cache_evicts_expired_entries_first() {
        let mut guard = ReplayGuard::new(30, 3);
        guard.insert(100, id(0), 100).unwrap();
        guard.insert(110, id(1), 110).unwrap();
        guard.insert(120, id(2), 120).unwrap();
        // At 131 only the entry stamped 100 has expired: room for exactly one.
        assert_eq!(guard.insert(131, id(3), 131), Ok(()));
        assert!(!guard.contains(100, &id(0)));
        assert_eq!(
            guard.insert(131, id(4), 131),
            Err(AuthError::ReplayCacheFull { capacity: 3 })
        );
        // At 151 the entries stamped 110 and 120 are gone too.
        assert_eq!(guard.insert(151, id(4), 151), Ok(()));
        assert_eq!(guard.len(), 2);
    }

    #[test]
    fn out_of_order_timestamps_expire_by_timestamp_not_by_arrival() {
        let mut guard = ReplayGuard::new(30, 8);
        guard.insert(130, id(0), 100).unwrap(); // from the future, arrives first
        guard.insert(70, id(1), 100).unwrap(); // from the past, arrives second
        guard.expire(101);
        assert!(!guard.contains(70, &id(1)));
        assert!(guard.contains(130, &id(0)));
        guard.expire(160);
        assert!(guard.contains(130, &id(0)));
        guard.expire(161);
        assert!(guard.is_empty());
    }

    #[test]
    fn timestamps_near_u64_max_never_overflow() {
        let mut guard = ReplayGuard::new(30, 2);
        guard.insert(u64::MAX, id(0), u64::MAX).unwrap();
        guard.expire(u64::MAX);
        assert!(
            guard.contains(u64::MAX, &id(0)),
            "no overflow at the top of the range"
        );
    }

    #[test]
    fn zero_capacity_refuses_everything() {
        let mut guard = ReplayGuard::new(30, 0);
        assert_eq!(
            guard.insert(1, id(0), 1),
            Err(AuthError::ReplayCacheFull { capacity: 0 })
        );
        assert_eq!(guard.capacity(), 0);
    }

    #[test]
    fn memory_stays_bounded_under_a_steady_stream() {
        let mut guard = ReplayGuard::new(30, 100);
        // Three accepted commands per second for ten minutes: ~93 live at any time.
        for second in 0..600u64 {
            for k in 0..3u8 {
                let mut unique = id(k);
                unique[..8].copy_from_slice(&second.to_le_bytes());
                guard.insert(second, unique, second).unwrap();
            }
            assert!(guard.len() <= 93, "{} entries at {second}", guard.len());
        }
    }
}
