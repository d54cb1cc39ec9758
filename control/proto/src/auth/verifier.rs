//! Verification of signed datagrams for one key role: what a daemon calls before it acts.
//!
//! ```text
//! datagram ─parse─▶ timestamp within ±window of the clock? ─▶ seen before? (cheap lookup)
//!          ─▶ signature verifies under one of the trusted keys? ─▶ remember it ─▶ bare command
//! ```
//!
//! Owns the trusted key set of one [`KeyRole`], the clock (injectable: tests pass a closure),
//! the window and the [`ReplayGuard`]. The cheap checks come first so that garbage costs no
//! signature verification, and the replay cache is written only after a signature verified, so
//! that garbage cannot fill it. The early "seen before?" lookup is sound because a remembered
//! entry is the canonical form of a datagram that already verified.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::AuthError;
use super::keys::VerifyingKey;
use super::replay::{DEFAULT_REPLAY_CAPACITY, ReplayGuard};
use super::role::KeyRole;
use super::signed::SignedCommand;

/// Default accepted clock difference between signer and verifier, each way (SPEC §3: ±30 s).
pub const DEFAULT_WINDOW_SECS: u64 = 30;

/// Where a [`Verifier`] gets the time: whole seconds since the Unix epoch.
///
/// Implemented by [`SystemClock`] and by any `Fn() -> u64 + Send + Sync` closure (tests use a
/// fixed or steerable one).
pub trait Clock: Send + Sync {
    /// The current Unix time in seconds.
    fn now_unix(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The current Unix time in seconds (0 if the system clock is before 1970).
    #[must_use]
    pub fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        Self::now()
    }
}

impl<F: Fn() -> u64 + Send + Sync> Clock for F {
    fn now_unix(&self) -> u64 {
        self()
    }
}

/// A command that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The bare command, e.g. `EVICT|api`.
    pub command: &'a str,
    /// The signer's timestamp.
    pub timestamp: u64,
    /// Index into [`Verifier::keys`] of the key that verified it (for audit logs: use its
    /// fingerprint).
    pub key_index: usize,
    /// What the replay cache remembers it by (a daemon that keeps its cache across restarts
    /// stores this with the timestamp, and gives both back to [`Verifier::remember`]).
    pub replay_id: [u8; 32],
}

/// Verifies signed datagrams against the trusted keys of one role, within a time window, once.
pub struct Verifier {
    role: KeyRole,
    keys: Vec<VerifyingKey>,
    window_s: u64,
    clock: Box<dyn Clock>,
    replay: ReplayGuard,
}

impl Verifier {
    /// A verifier trusting `keys` (duplicates are dropped) for `role`, on the system clock, with
    /// the ±30 s window and a replay cache of [`DEFAULT_REPLAY_CAPACITY`] entries.
    ///
    /// With no keys it refuses every datagram ([`AuthError::BadSignature`]).
    #[must_use]
    pub fn new(role: KeyRole, keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let mut unique: Vec<VerifyingKey> = Vec::new();
        for key in keys {
            if !unique.contains(&key) {
                unique.push(key);
            }
        }
        Self {
            role,
            keys: unique,
            window_s: DEFAULT_WINDOW_SECS,
            clock: Box::new(SystemClock),
            replay: ReplayGuard::new(DEFAULT_WINDOW_SECS, DEFAULT_REPLAY_CAPACITY),
        }
    }

    /// Accepts timestamps within ±`window_s` of the clock (and forgets the replay cache).
    #[must_use]
    pub fn with_window_secs(mut self, window_s: u64) -> Self {
        self.window_s = window_s;
        self.replay = ReplayGuard::new(window_s, self.replay.capacity());
        self
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Holds at most `capacity` live entries in the replay cache (and forgets the current ones).
    #[must_use]
    pub fn with_replay_capacity(mut self, capacity: usize) -> Self {
        self.replay = ReplayGuard::new(self.window_s, capacity);
        self
    }

    /// The role whose keys this verifier trusts.
    #[must_use]
    pub const fn role(&self) -> KeyRole {
        self.role
    }

    /// The trusted keys, without duplicates, in the order given.
    #[must_use]
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The accepted clock difference, each way, in seconds.
    #[must_use]
    pub const fn window_secs(&self) -> u64 {
        self.window_s
    }

    /// The replay cache (for metrics: its length and capacity).
    #[must_use]
    pub const fn replay_guard(&self) -> &ReplayGuard {
        &self.replay
    }

    /// Checks `datagram` and returns the bare command it authorises.
    ///
    /// # Errors
    /// The first failed check as an [`AuthError`]: a parse error, then
    /// [`AuthError::TimestampOutsideWindow`], [`AuthError::Replayed`],
    /// [`AuthError::BadSignature`], [`AuthError::ReplayCacheFull`].
    pub fn verify<'a>(&mut self, datagram: &'a str) -> Result<&'a str, AuthError> {
        self.verify_detailed(datagram).map(|v| v.command)
    }

    /// [`Verifier::verify`], also saying when it was signed and by which key.
    ///
    /// # Errors
    /// As [`Verifier::verify`].
    pub fn verify_detailed<'a>(&mut self, datagram: &'a str) -> Result<Verified<'a>, AuthError> {
        let signed = SignedCommand::parse(datagram)?;
        let now = self.clock.now_unix();
        self.check_window(signed.timestamp(), now)?;
        let id = signed.replay_id();
        if self.replay.contains(signed.timestamp(), &id) {
            return Err(AuthError::Replayed);
        }
        let key_index = self
            .keys
            .iter()
            .position(|key| signed.is_signed_by(key))
            .ok_or(AuthError::BadSignature { role: self.role })?;
        self.replay.insert(signed.timestamp(), id, now)?;
        Ok(Verified {
            command: signed.command(),
            timestamp: signed.timestamp(),
            key_index,
            replay_id: id,
        })
    }

    /// Remembers a command an earlier run of the daemon accepted (timestamp and replay id),
    /// so that it is refused as a replay here too. One whose timestamp has left the window is
    /// not kept (the window alone refuses it).
    ///
    /// # Errors
    /// [`AuthError::ReplayCacheFull`].
    pub fn remember(&mut self, timestamp: u64, replay_id: [u8; 32]) -> Result<(), AuthError> {
        let now = self.clock.now_unix();
        if self.check_window(timestamp, now).is_err() {
            return Ok(());
        }
        match self.replay.insert(timestamp, replay_id, now) {
            Ok(()) | Err(AuthError::Replayed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn check_window(&self, timestamp: u64, now: u64) -> Result<(), AuthError> {
        let skew = i128::from(timestamp) - i128::from(now);
        if skew.unsigned_abs() > u128::from(self.window_s) {
            let skew_s = i64::try_from(skew).unwrap_or(if skew < 0 { i64::MIN } else { i64::MAX });
            return Err(AuthError::TimestampOutsideWindow {
                skew_s,
                window_s: self.window_s,
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("role", &self.role)
            .field("keys", &self.keys)
            .field("window_s", &self.window_s)
            .field("replay_entries", &self.replay.len())
            .field("replay_capacity", &self.replay.capacity())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
