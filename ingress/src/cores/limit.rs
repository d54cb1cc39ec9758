//! Per-route rate limits by client address (`rate N/s burst M` in the routes file): one token
//! bucket per (route, client address) on each core.
//!
//! How the cores together keep the rate: each of the `cores` cores refills its buckets at
//! `N / cores` per second and holds at most `max(1, M / cores)` tokens. The kernel spreads
//! connections over the cores' `SO_REUSEPORT` listeners by a hash of the 4-tuple, so a client
//! whose requests arrive over several connections is admitted at most `N` per second in all
//! (each core admits at most its share); a client on one keep-alive connection is held to one
//! core's share. With one core (`--threads 1`) the bucket is exact.
//!
//! Owns the buckets and their pruning (full buckets are dropped once the table passes
//! [`MAX_BUCKETS`], so a scan over many addresses costs memory only up to a bound). Pure:
//! time is an argument. Must not be shared across threads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::route::RateLimit;

/// Buckets kept before full ones are dropped.
pub const MAX_BUCKETS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// One core's buckets; reset when the routes change.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: HashMap<(u32, IpAddr), Bucket>,
}

impl Limiter {
    /// Forgets every bucket (the route indexes changed).
    pub fn reset(&mut self) {
        self.buckets.clear();
    }

    /// Admits one request of `client` on route `route` at `now`, or says in how many whole
    /// seconds (at least 1) a token will be there.
    ///
    /// # Errors
    /// The `Retry-After` seconds when the bucket is empty.
    pub fn admit(
        &mut self,
        route: u32,
        rate: RateLimit,
        cores: usize,
        client: IpAddr,
        now: Instant,
    ) -> Result<(), u32> {
        let cores = cores.max(1) as f64;
        let per_s = f64::from(rate.per_second) / cores;
        let burst = (f64::from(rate.burst) / cores).max(1.0);
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(&(route, client)) {
            self.buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * per_s < burst
            });
        }
        let bucket = self.buckets.entry((route, client)).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_s).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = if per_s > 0.0 {
            ((1.0 - bucket.tokens) / per_s).ceil()
        } else {
            3600.0
        };
        // In range by the clamp; `as` saturates anyway.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Err(wait.clamp(1.0, 3600.0) as u32)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn burst_then_rate_then_recovery() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        let rate = RateLimit {
            per_second: 2,
            burst: 3,
        };
        let a = ip("10.0.0.1");
        for _ in 0..3 {
            assert_eq!(l.admit(0, rate, 1, a, t0), Ok(()));
        }
        assert_eq!(l.admit(0, rate, 1, a, t0), Err(1));
        // Another client and another route have their own buckets.
        assert_eq!(l.admit(0, rate, 1, ip("10.0.0.2"), t0), Ok(()));
        assert_eq!(l.admit(1, rate, 1, a, t0), Ok(()));
        // Half a second later: one token (2/s).
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.admit(0, rate, 1, a, t1), Ok(()));
        assert_eq!(l.admit(0, rate, 1, a, t1), Err(1));
        // Long after: a full burst again, never more.
        let t2 = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(l.admit(0, rate, 1, a, t2), Ok(()));
        }
        assert!(l.admit(0, rate, 1, a, t2).is_err());
    }

    #[test]
    fn retry_after_says_when_a_token_comes() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        let slow = RateLimit {
            per_second: 0,
            burst: 1,
        };
        let a = ip("::1");
        assert_eq!(l.admit(0, slow, 1, a, t0), Ok(()));
        assert_eq!(l.admit(0, slow, 1, a, t0), Err(3600));
        let mut l = Limiter::default();
        let tenth = RateLimit {
            per_second: 1,
            burst: 1,
        };
        assert_eq!(l.admit(0, tenth, 1, a, t0), Ok(()));
        assert_eq!(l.admit(0, tenth, 1, a, t0), Err(1));
    }

    #[test]
    fn each_core_gets_its_share() {
        // 100/s burst 200 over 4 cores: each core admits 50 at once and 25/s after.
        let rate = RateLimit {
            per_second: 100,
            burst: 200,
        };
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        let mut admitted = 0;
        for mut l in (0..4).map(|_| Limiter::default()) {
            for step in 0..=100u64 {
                let now = t0 + Duration::from_millis(step * 10);
                while l.admit(0, rate, 4, a, now).is_ok() {
                    admitted += 1;
                }
            }
        }
        // Over one second: the burst (200) plus one second of rate (100), within a token
        // per core.
        assert!((296..=304).contains(&admitted), "{admitted}");
    }

    #[test]
    fn full_buckets_are_pruned_past_the_bound() {
        let mut l = Limiter::default();
        let rate = RateLimit {
            per_second: 10,
            burst: 1,
        };
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS as u32 {
            let _ = l.admit(0, rate, 1, IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(l.buckets.len(), MAX_BUCKETS);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(l.admit(0, rate, 1, ip("255.255.255.255"), later), Ok(()));
        assert_eq!(l.buckets.len(), 1);
    }
}
