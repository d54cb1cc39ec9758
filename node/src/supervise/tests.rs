use super::*;

const MS: Duration = Duration::from_millis(1);
const SHORT: Duration = Duration::from_millis(10);
const LONG: Duration = Duration::from_secs(31);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn lifecycle(policy: RestartPolicy) -> Lifecycle {
    Lifecycle::new(policy, BackoffPolicy::default())
}

#[test]
fn exit_decisions_follow_the_policy() {
    use RestartPolicy::{Always, Never, OnFailure};
    use Termination::{Code, LaunchFailed, Signal, Unknown};
    let restart = ExitDecision::Restart { after: ms(100) };
    let exited = ExitDecision::Finish(Phase::Exited);
    let failed = ExitDecision::Finish(Phase::Failed);
    let table = [
        (Always, Code(0), restart),
        (Always, Code(1), restart),
        (Always, Signal(9), restart),
        (Always, Unknown, restart),
        (OnFailure, Code(0), exited),
        (OnFailure, Code(1), restart),
        (OnFailure, Code(137), restart),
        (OnFailure, Signal(11), restart),
        (OnFailure, Unknown, restart),
        (Never, Code(0), exited),
        (Never, Code(1), failed),
        (Never, Signal(9), failed),
        (Never, Unknown, failed),
        (Never, LaunchFailed, failed),
    ];
    for (policy, termination, want) in table {
        let mut l = lifecycle(policy);
        l.on_started();
        assert_eq!(
            l.on_exit(termination, SHORT),
            want,
            "{policy:?} {termination:?}"
        );
        let phase = match want {
            ExitDecision::Restart { .. } => Phase::BackingOff,
            ExitDecision::Finish(p) => p,
        };
        assert_eq!(l.phase(), phase);
    }
}

#[test]
fn a_kill_always_ends_the_replica_whatever_the_policy_or_status() {
    for policy in [
        RestartPolicy::Always,
        RestartPolicy::OnFailure,
        RestartPolicy::Never,
    ] {
        for term in [
            Termination::Code(0),
            Termination::Signal(15),
            Termination::Signal(9),
        ] {
            let mut l = lifecycle(policy);
            l.on_started();
            l.on_healthy();
            l.begin_stop(StopCause::Kill);
            assert_eq!(l.phase(), Phase::Stopping);
            assert_eq!(l.on_exit(term, SHORT), ExitDecision::Finish(Phase::Exited));
            assert!(l.phase().is_terminal());
        }
    }
}

#[test]
fn a_kill_during_a_restart_stop_wins() {
    let mut l = lifecycle(RestartPolicy::Always);
    l.on_started();
    assert_eq!(l.on_unhealthy(), Some(UnhealthyAction::Restart));
    l.begin_stop(StopCause::Restart);
    l.begin_stop(StopCause::Kill);
    assert_eq!(
        l.on_exit(Termination::Signal(15), SHORT),
        ExitDecision::Finish(Phase::Exited)
    );
}

#[test]
fn unhealthy_restarts_unless_the_policy_is_never() {
    let table = [
        (RestartPolicy::Always, UnhealthyAction::Restart),
        (RestartPolicy::OnFailure, UnhealthyAction::Restart),
        (RestartPolicy::Never, UnhealthyAction::KeepRunning),
    ];
    for (policy, want) in table {
        let mut l = lifecycle(policy);
        l.on_started();
        assert_eq!(l.on_unhealthy(), Some(want), "{policy:?}");
        assert_eq!(l.phase(), Phase::Unhealthy);
        // Reported once, not on every failing probe.
        assert_eq!(l.on_unhealthy(), None);
        if want == UnhealthyAction::Restart {
            l.begin_stop(StopCause::Restart);
            // Even a clean exit 0 after SIGTERM is restarted: the node chose to stop it.
            assert!(matches!(
                l.on_exit(Termination::Code(0), SHORT),
                ExitDecision::Restart { .. }
            ));
        } else {
            assert!(
                l.on_healthy(),
                "an unhealthy replica under `never` may recover"
            );
            assert_eq!(l.phase(), Phase::Healthy);
        }
    }
}

#[test]
fn phase_walk_of_a_crash_loop() {
    let mut l = lifecycle(RestartPolicy::Always);
    assert_eq!(l.phase(), Phase::Starting);
    assert!(!l.on_started(), "the first start is not a restart");
    assert!(l.on_healthy());
    assert!(!l.on_healthy(), "already healthy");
    assert_eq!(l.phase(), Phase::Healthy);
    let mut delays = Vec::new();
    for _ in 0..4 {
        match l.on_exit(Termination::Code(1), SHORT) {
            ExitDecision::Restart { after } => delays.push(after),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(l.phase(), Phase::BackingOff);
        assert!(l.on_started());
    }
    assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800)]);
    assert_eq!(l.restarts(), 4);
}

#[test]
fn backoff_resets_after_a_long_enough_run() {
    let mut l = lifecycle(RestartPolicy::Always);
    l.on_started();
    for _ in 0..5 {
        l.on_exit(Termination::Code(1), SHORT);
        l.on_started();
    }
    assert_eq!(
        l.on_exit(Termination::Code(1), LONG),
        ExitDecision::Restart { after: ms(100) }
    );
}

#[test]
fn failed_launches_back_off_like_exits() {
    let mut l = lifecycle(RestartPolicy::OnFailure);
    l.on_started();
    assert_eq!(
        l.on_exit(Termination::Code(2), SHORT),
        ExitDecision::Restart { after: ms(100) }
    );
    assert_eq!(
        l.on_launch_failed(),
        ExitDecision::Restart { after: ms(200) }
    );
    assert_eq!(
        l.on_launch_failed(),
        ExitDecision::Restart { after: ms(400) }
    );
    let mut never = lifecycle(RestartPolicy::Never);
    assert_eq!(
        never.on_launch_failed(),
        ExitDecision::Finish(Phase::Failed)
    );
}

#[test]
fn kill_while_backing_off_ends_it() {
    let mut l = lifecycle(RestartPolicy::Always);
    l.on_started();
    l.on_exit(Termination::Code(1), SHORT);
    l.on_kill_while_idle();
    assert_eq!(l.phase(), Phase::Exited);
}

#[test]
fn backoff_delay_doubles_and_caps() {
    let p = BackoffPolicy::default();
    let table = [
        (0, ms(100)),
        (1, ms(200)),
        (2, ms(400)),
        (9, ms(51_200)),
        (10, Duration::from_secs(60)),
        (31, Duration::from_secs(60)),
        (u32::MAX, Duration::from_secs(60)),
    ];
    for (attempt, want) in table {
        assert_eq!(backoff_delay(&p, attempt), want, "attempt {attempt}");
    }
    let tiny = BackoffPolicy {
        initial: MS,
        max: ms(5),
        reset_after: ms(10),
    };
    assert_eq!(backoff_delay(&tiny, 3), ms(5));
}

#[test]
fn phases_classify() {
    let running = [
        Phase::Starting,
        Phase::Healthy,
        Phase::Unhealthy,
        Phase::Stopping,
    ];
    for p in running {
        assert!(p.is_running() && !p.is_terminal(), "{p}");
    }
    assert!(!Phase::BackingOff.is_running() && !Phase::BackingOff.is_terminal());
    assert!(Phase::Exited.is_terminal() && Phase::Failed.is_terminal());
    assert_eq!(Phase::BackingOff.to_string(), "backing-off");
    assert_eq!(Termination::Code(3).to_string(), "exit code 3");
}
