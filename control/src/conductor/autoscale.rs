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

    /// One evaluation: seconds after the start, replicas running, their CPU %, the decision.
    type Step<'a> = (u64, u32, &'a [f64], Option<u32>);

    /// Feeds `steps` in order to one track (no CPU limit) and checks each decision.
    fn run(steps: &[Step<'_>]) {
        let s = scale();
        let mut t = Track::default();
        let t0 = Instant::now();
        for (i, &(at, running, cpu, want)) in steps.iter().enumerate() {
            let got = evaluate(&mut t, &s, running, cpu, None, t0 + Duration::from_secs(at));
            assert_eq!(
                got, want,
                "step {i}, at {at} s, {running} running at {cpu:?}"
            );
        }
    }

    #[test]
    fn grows_when_busy_for_long_enough_then_cools_down() {
        run(&[
            (0, 1, &[95.0], None), // not yet sustained
            (3, 1, &[95.0], Some(2)),
            (7, 2, &[95.0, 90.0], None), // still busy, but cooling down
            (13, 2, &[95.0, 90.0], Some(3)),
            (40, 3, &[99.0; 3], None), // at max: no further growth
            (50, 3, &[99.0; 3], None),
        ]);
    }

    #[test]
    fn shrinks_to_min_when_idle_and_never_flaps_on_a_blip() {
        run(&[
            (0, 3, &[5.0, 5.0, 5.0], None),
            (2, 3, &[50.0, 5.0, 5.0], None), // a blip above the lower bound resets the timer
            (4, 3, &[5.0, 5.0, 5.0], None),
            (7, 3, &[5.0, 5.0, 5.0], Some(2)),
            (18, 2, &[5.0, 5.0], None), // sustained again from the change
            (21, 2, &[5.0, 5.0], Some(1)),
            (40, 1, &[5.0], None), // at min
        ]);
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
