//! Autoscale from an app's `scale { min max cpu-above cpu-below cooldown }`: one replica more
//! when the app's average CPU stays above `cpu-above`, one fewer when it stays below
//! `cpu-below`, never outside `min..=max`, and never two changes within `cooldown`.
//!
//! A pure decision per app and evaluation; the caller keeps the [`Track`] between evaluations
//! and applies the new desired count (a removed replica is stopped like any scale-down: the
//! node deregisters it and waits for the edge to drain it before signalling). CPU is the
//! per-replica figure nodes report in heartbeats, in percent of the replica's `cpu` limit when
//! it has one, else of one core.

use std::time::{Duration, Instant};

use skr8tr_proto::manifest::Scale;

/// How long a condition must hold before it counts ("stays above").
pub const SUSTAIN: Duration = Duration::from_secs(3);

/// What the autoscaler remembers about one app between evaluations.
#[derive(Debug, Clone, Default)]
pub struct Track {
    above_since: Option<Instant>,
    below_since: Option<Instant>,
    last_change: Option<Instant>,
}

/// Evaluates one app: its current desired count, the CPU of each of its running replicas and
/// its `scale` block. Returns the new desired count when it should change.
pub fn evaluate(
    track: &mut Track,
    scale: &Scale,
    desired: u32,
    replica_cpu_pct: &[f64],
    cpu_limit_cores: Option<f64>,
    now: Instant,
) -> Option<u32> {
    // Out of bounds (a SCALE or a changed manifest): back inside at once.
    if desired < scale.min {
        return Some(scale.min);
    }
    if desired > scale.max {
        return Some(scale.max);
    }
    if replica_cpu_pct.is_empty() {
        track.above_since = None;
        track.below_since = None;
        return None;
    }
    let per = cpu_limit_cores.filter(|c| *c > 0.0).unwrap_or(1.0);
    let avg = replica_cpu_pct.iter().sum::<f64>() / replica_cpu_pct.len() as f64 / per;
    let above = avg > f64::from(scale.cpu_above.0);
    let below = avg < f64::from(scale.cpu_below.0);
    track.above_since = if above {
        track.above_since.or(Some(now))
    } else {
        None
    };
    track.below_since = if below {
        track.below_since.or(Some(now))
    } else {
        None
    };
    let cooled = track
        .last_change
        .is_none_or(|t| now.duration_since(t) >= scale.cooldown);
    let held = |since: Option<Instant>| since.is_some_and(|s| now.duration_since(s) >= SUSTAIN);
    let next = if held(track.above_since) && cooled && desired < scale.max {
        Some(desired + 1)
    } else if held(track.below_since) && cooled && desired > scale.min {
        Some(desired - 1)
    } else {
        None
    };
    if next.is_some() {
        track.last_change = Some(now);
        track.above_since = None;
        track.below_since = None;
    }
    next
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::manifest::Percent;

    use super::*;

    fn scale() -> Scale {
        Scale {
            min: 1,
            max: 3,
            cpu_above: Percent(80),
            cpu_below: Percent(20),
            cooldown: Duration::from_secs(10),
        }
    }

    #[test]
    fn grows_when_busy_for_long_enough_then_cools_down() {
        let s = scale();
        let mut t = Track::default();
        let t0 = Instant::now();
        assert_eq!(
            evaluate(&mut t, &s, 1, &[95.0], None, t0),
            None,
            "not yet sustained"
        );
        assert_eq!(
            evaluate(&mut t, &s, 1, &[95.0], None, t0 + Duration::from_secs(3)),
            Some(2)
        );
        // still busy, but cooling down
        assert_eq!(
            evaluate(
                &mut t,
                &s,
                2,
                &[95.0, 90.0],
                None,
                t0 + Duration::from_secs(7)
            ),
            None
        );
        assert_eq!(
            evaluate(
                &mut t,
                &s,
                2,
                &[95.0, 90.0],
                None,
                t0 + Duration::from_secs(13)
            ),
            Some(3)
        );
        // at max: no further growth
        assert_eq!(
            evaluate(
                &mut t,
                &s,
                3,
                &[99.0; 3],
                None,
                t0 + Duration::from_secs(40)
            ),
            None
        );
        assert_eq!(
            evaluate(
                &mut t,
                &s,
                3,
                &[99.0; 3],
                None,
                t0 + Duration::from_secs(50)
            ),
            None
        );
    }

    #[test]
    fn shrinks_to_min_when_idle_and_never_flaps_on_a_blip() {
        let s = scale();
        let mut t = Track::default();
        let t0 = Instant::now();
        assert_eq!(evaluate(&mut t, &s, 3, &[5.0, 5.0, 5.0], None, t0), None);
        // a blip above the lower bound resets the timer
        assert_eq!(
            evaluate(
                &mut t,
                &s,
                3,
                &[50.0, 5.0, 5.0],
                None,
                t0 + Duration::from_secs(2)
            ),
            None
        );
        assert_eq!(
            evaluate(
                &mut t,
                &s,
                3,
                &[5.0, 5.0, 5.0],
                None,
                t0 + Duration::from_secs(4)
            ),
            None
        );
        assert_eq!(
            evaluate(
                &mut t,
                &s,
                3,
                &[5.0, 5.0, 5.0],
                None,
                t0 + Duration::from_secs(7)
            ),
            Some(2)
        );
        assert_eq!(
            evaluate(
                &mut t,
                &s,
                2,
                &[5.0, 5.0],
                None,
                t0 + Duration::from_secs(18)
            ),
            None,
            "sustain again"
        );
        assert_eq!(
            evaluate(
                &mut t,
                &s,
                2,
                &[5.0, 5.0],
                None,
                t0 + Duration::from_secs(21)
            ),
            Some(1)
        );
        assert_eq!(
            evaluate(&mut t, &s, 1, &[5.0], None, t0 + Duration::from_secs(40)),
            None,
            "at min"
        );
    }

    #[test]
    fn cpu_is_relative_to_the_limit_and_out_of_range_counts_snap_back() {
        let s = scale();
        let mut t = Track::default();
        let t0 = Instant::now();
        // 45% of a core is 90% of a half-core limit
        evaluate(&mut t, &s, 1, &[45.0], Some(0.5), t0);
        assert_eq!(
            evaluate(
                &mut t,
                &s,
                1,
                &[45.0],
                Some(0.5),
                t0 + Duration::from_secs(3)
            ),
            Some(2)
        );
        assert_eq!(
            evaluate(&mut Track::default(), &s, 0, &[], None, t0),
            Some(1)
        );
        assert_eq!(
            evaluate(&mut Track::default(), &s, 9, &[], None, t0),
            Some(3)
        );
    }
}
