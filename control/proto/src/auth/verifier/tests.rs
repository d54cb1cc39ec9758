//! Tests of the verifier: every refusal with its own variant, the window edges, replays, several
//! operators, role separation, check order, the bounded replay cache, and fuzzing.

use proptest::prelude::*;

use super::super::keys::SigningKey;
use super::super::signed::sign_command;
use super::super::sizes::SIGNATURE_HEX_LEN;
use super::super::testkit::{ManualClock, Pair, alice, bob, mallory, mesh};
use super::*;

const NOW: u64 = 1_767_225_600;

fn operators(clock: &ManualClock) -> Verifier {
    Verifier::new(
        KeyRole::Operator,
        [alice().public.clone(), bob().public.clone()],
    )
    .with_clock(clock.source())
}

fn sign(pair: &Pair, cmd: &str, ts: u64) -> String {
    sign_command(&pair.secret, cmd, ts).unwrap()
}

#[test]
fn a_signed_command_round_trips_to_its_bare_form() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    assert_eq!(v.verify(&sign(alice(), "EVICT|api", NOW)), Ok("EVICT|api"));
    assert_eq!(
        v.verify(&sign(alice(), "EXEC|api|a|b", NOW)),
        Ok("EXEC|api|a|b")
    );
}

#[test]
fn a_flipped_bit_in_the_signature_is_a_bad_signature() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    let wire = sign(alice(), "EVICT|api", NOW);
    // Flip the low bit of one hex digit's value: `0`↔`1`, `a`↔`b`, … (stays hex).
    for offset in [1, 100, 3000, 6617] {
        let at = wire.len() - SIGNATURE_HEX_LEN + offset;
        let mut bytes = wire.clone().into_bytes();
        let nibble = char::from(bytes[at]).to_digit(16).unwrap() ^ 1;
        bytes[at] = u8::try_from(char::from_digit(nibble, 16).unwrap()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            v.verify(&text),
            Err(AuthError::BadSignature {
                role: KeyRole::Operator
            }),
            "offset {offset}"
        );
    }
    assert_eq!(
        v.verify(&wire),
        Ok("EVICT|api"),
        "the original still verifies"
    );
}

#[test]
fn a_flipped_bit_in_the_command_or_timestamp_is_a_bad_signature() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    let wire = sign(alice(), "EVICT|api", NOW);
    let tampered_cmd = wire.replacen("EVICT|api", "EVICT|apj", 1);
    assert_eq!(
        v.verify(&tampered_cmd),
        Err(AuthError::BadSignature {
            role: KeyRole::Operator
        })
    );
    let tampered_ts = wire.replacen(&NOW.to_string(), &(NOW ^ 1).to_string(), 1);
    assert_ne!(tampered_ts, wire);
    assert_eq!(
        v.verify(&tampered_ts),
        Err(AuthError::BadSignature {
            role: KeyRole::Operator
        })
    );
}

#[test]
fn an_untrusted_key_is_a_bad_signature() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    let err = v.verify(&sign(mallory(), "EVICT|api", NOW)).unwrap_err();
    assert_eq!(
        err,
        AuthError::BadSignature {
            role: KeyRole::Operator
        }
    );
    assert_eq!(err.code(), "bad_signature");
}

#[test]
fn the_window_is_plus_or_minus_30_s_inclusive() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    assert_eq!(v.verify(&sign(alice(), "LIST", NOW - 30)), Ok("LIST"));
    assert_eq!(v.verify(&sign(alice(), "LIST", NOW + 30)), Ok("LIST"));
    assert_eq!(
        v.verify(&sign(alice(), "LIST", NOW - 31)),
        Err(AuthError::TimestampOutsideWindow {
            skew_s: -31,
            window_s: 30
        })
    );
    assert_eq!(
        v.verify(&sign(alice(), "LIST", NOW + 31)),
        Err(AuthError::TimestampOutsideWindow {
            skew_s: 31,
            window_s: 30
        })
    );
}

#[test]
fn extreme_timestamps_report_a_saturated_skew() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    let zeros = "0".repeat(SIGNATURE_HEX_LEN);
    let err = v.verify(&format!("LIST|0|{zeros}")).unwrap_err();
    assert_eq!(
        err,
        AuthError::TimestampOutsideWindow {
            skew_s: -(NOW as i64),
            window_s: 30
        }
    );
    let err = v.verify(&format!("LIST|{}|{zeros}", u64::MAX)).unwrap_err();
    assert_eq!(
        err,
        AuthError::TimestampOutsideWindow {
            skew_s: i64::MAX,
            window_s: 30
        }
    );
}

#[test]
fn the_window_is_configurable() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock).with_window_secs(5);
    assert_eq!(v.window_secs(), 5);
    assert_eq!(v.verify(&sign(alice(), "LIST", NOW - 5)), Ok("LIST"));
    assert_eq!(
        v.verify(&sign(alice(), "LIST", NOW - 6)),
        Err(AuthError::TimestampOutsideWindow {
            skew_s: -6,
            window_s: 5
        })
    );
}

#[test]
fn an_exact_replay_is_refused_but_a_re_signed_retry_is_accepted() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    let wire = sign(alice(), "EVICT|api", NOW);
    assert_eq!(v.verify(&wire), Ok("EVICT|api"));
    clock.set(NOW + 10);
    assert_eq!(v.verify(&wire), Err(AuthError::Replayed));
    // The same signature spelled in uppercase is the same command.
    let (head, sig) = wire.rsplit_once('|').unwrap();
    assert_eq!(
        v.verify(&format!("{head}|{}", sig.to_ascii_uppercase())),
        Err(AuthError::Replayed)
    );
    // A client retry signs again (hedged signing): a new signature, accepted.
    assert_eq!(v.verify(&sign(alice(), "EVICT|api", NOW)), Ok("EVICT|api"));
}

#[test]
fn a_replay_after_the_window_is_refused_by_the_clock() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    let wire = sign(alice(), "EVICT|api", NOW);
    assert_eq!(v.verify(&wire), Ok("EVICT|api"));
    clock.set(NOW + 31);
    assert!(matches!(
        v.verify(&wire),
        Err(AuthError::TimestampOutsideWindow { skew_s: -31, .. })
    ));
    assert_eq!(v.verify(&sign(alice(), "LIST", NOW + 31)), Ok("LIST"));
    assert_eq!(v.replay_guard().len(), 1, "the expired entry was dropped");
}

#[test]
fn malformed_datagrams_get_their_own_variants() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    let wire = sign(alice(), "LIST", NOW);
    assert_eq!(v.verify("LIST"), Err(AuthError::NotSigned));
    assert_eq!(v.verify("EVICT|api"), Err(AuthError::NotSigned));
    assert_eq!(
        v.verify(&wire[..wire.len() - 2]),
        Err(AuthError::SignatureWrongLength { len: 6616 })
    );
    let non_hex = format!("{}x", &wire[..wire.len() - 1]);
    assert_eq!(v.verify(&non_hex), Err(AuthError::SignatureNotHex));
    let bad_ts = wire.replacen(&NOW.to_string(), "soon", 1);
    assert_eq!(v.verify(&bad_ts), Err(AuthError::TimestampNotNumber));
}

#[test]
fn several_operators_are_trusted_and_the_signer_is_identified() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    let (one, two) = (
        sign(alice(), "SCALE|api|3", NOW),
        sign(bob(), "SCALE|api|4", NOW - 1),
    );
    let by_alice = v.verify_detailed(&one).unwrap();
    let by_bob = v.verify_detailed(&two).unwrap();
    assert_eq!((by_alice.command, by_alice.key_index), ("SCALE|api|3", 0));
    assert_eq!(
        (by_bob.command, by_bob.timestamp, by_bob.key_index),
        ("SCALE|api|4", NOW - 1, 1)
    );
    assert_eq!(v.keys()[by_bob.key_index], bob().public);
    assert!(v.verify(&sign(mallory(), "SCALE|api|0", NOW)).is_err());
}

#[test]
fn duplicate_keys_are_kept_once() {
    let v = Verifier::new(
        KeyRole::Operator,
        [alice().public.clone(), alice().public.clone()],
    );
    assert_eq!(v.keys().len(), 1);
    assert_eq!(v.role(), KeyRole::Operator);
}

#[test]
fn with_no_trusted_keys_everything_is_refused() {
    let clock = ManualClock::at(NOW);
    let mut v = Verifier::new(KeyRole::Mesh, []).with_clock(clock.source());
    assert_eq!(
        v.verify(&sign(mesh(), "HEARTBEAT|n1|5|100", NOW)),
        Err(AuthError::BadSignature {
            role: KeyRole::Mesh
        })
    );
}

#[test]
fn mesh_and_operator_keys_do_not_mix() {
    let clock = ManualClock::at(NOW);
    let mut ops = operators(&clock);
    let mut mesh_v =
        Verifier::new(KeyRole::Mesh, [mesh().public.clone()]).with_clock(clock.source());
    let by_mesh = sign(mesh(), "EVICT|api", NOW);
    let by_operator = sign(alice(), "LAUNCH|api|1", NOW);

    let err = ops.verify(&by_mesh).unwrap_err();
    assert_eq!(
        err,
        AuthError::BadSignature {
            role: KeyRole::Operator
        }
    );
    assert!(
        err.to_string().contains("operator"),
        "the error names the role: {err}"
    );
    let err = mesh_v.verify(&by_operator).unwrap_err();
    assert_eq!(
        err,
        AuthError::BadSignature {
            role: KeyRole::Mesh
        }
    );
    assert!(err.to_string().contains("mesh"), "{err}");

    assert_eq!(mesh_v.verify(&by_mesh), Ok("EVICT|api"));
    assert_eq!(ops.verify(&by_operator), Ok("LAUNCH|api|1"));
}

#[test]
fn the_cheap_checks_come_before_the_signature() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock);
    // Garbage signature and a stale timestamp: refused for the timestamp.
    let zeros = "0".repeat(SIGNATURE_HEX_LEN);
    assert!(matches!(
        v.verify(&format!("EVICT|api|{}|{zeros}", NOW - 100)),
        Err(AuthError::TimestampOutsideWindow { .. })
    ));
    // A stale replay is refused for the timestamp too, not as a replay.
    let wire = sign(alice(), "LIST", NOW);
    v.verify(&wire).unwrap();
    clock.set(NOW + 40);
    assert!(matches!(
        v.verify(&wire),
        Err(AuthError::TimestampOutsideWindow { .. })
    ));
}

#[test]
fn bad_signatures_never_enter_the_replay_cache() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock).with_replay_capacity(2);
    for i in 0..5 {
        let forged = sign(mallory(), &format!("EVICT|app{i}"), NOW);
        assert!(matches!(
            v.verify(&forged),
            Err(AuthError::BadSignature { .. })
        ));
    }
    assert!(v.replay_guard().is_empty());
    assert_eq!(v.verify(&sign(alice(), "LIST", NOW)), Ok("LIST"));
}

#[test]
fn a_full_replay_cache_fails_closed_until_entries_expire() {
    let clock = ManualClock::at(NOW);
    let mut v = operators(&clock).with_replay_capacity(2);
    assert_eq!(v.replay_guard().capacity(), 2);
    v.verify(&sign(alice(), "LIST", NOW)).unwrap();
    v.verify(&sign(alice(), "LIST", NOW + 5)).unwrap();
    clock.set(NOW + 10);
    let third = sign(bob(), "LIST", NOW + 10);
    assert_eq!(
        v.verify(&third),
        Err(AuthError::ReplayCacheFull { capacity: 2 })
    );
    // The refused command was not remembered: once the first entry expires it is accepted.
    clock.set(NOW + 31);
    assert_eq!(v.verify(&third), Ok("LIST"));
    assert_eq!(v.verify(&third), Err(AuthError::Replayed));
}

#[test]
fn with_window_keeps_the_replay_capacity() {
    let v = Verifier::new(KeyRole::Mesh, [])
        .with_replay_capacity(7)
        .with_window_secs(10);
    assert_eq!(v.replay_guard().capacity(), 7);
    assert_eq!(
        Verifier::new(KeyRole::Mesh, []).replay_guard().capacity(),
        DEFAULT_REPLAY_CAPACITY
    );
}

#[test]
fn the_system_clock_is_the_default_and_reads_the_real_time() {
    let now = SystemClock::now();
    assert!(now > 1_700_000_000, "{now}");
    assert!(SystemClock.now_unix() >= now);
    let mut v = Verifier::new(KeyRole::Operator, [alice().public.clone()]);
    assert_eq!(
        v.verify(&sign(alice(), "LIST", SystemClock::now())),
        Ok("LIST")
    );
    assert!(matches!(
        v.verify(&sign(alice(), "LIST", 1_000_000)),
        Err(AuthError::TimestampOutsideWindow { .. })
    ));
}

#[test]
fn debug_is_short_and_names_keys_by_fingerprint() {
    let clock = ManualClock::at(NOW);
    let shown = format!("{:?}", operators(&clock));
    assert!(shown.contains(&alice().public.fingerprint()), "{shown}");
    assert!(shown.contains("Operator") && shown.len() < 300, "{shown}");
}

#[test]
fn the_verifier_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
    assert_send_sync::<SigningKey>();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verify_never_panics_and_refuses_arbitrary_text(text in "\\PC{0,300}") {
        let clock = ManualClock::at(NOW);
        let mut v = operators(&clock);
        prop_assert!(v.verify(&text).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn verify_refuses_well_formed_forgeries(
        cmd in "[A-Z]{1,8}(\\|[a-z0-9|]{0,20})?",
        skew in -40i64..40,
        sig in "[0-9a-fA-F]{6618}",
    ) {
        let clock = ManualClock::at(NOW);
        let mut v = operators(&clock);
        let ts = NOW.saturating_add_signed(skew);
        let err = v.verify(&format!("{cmd}|{ts}|{sig}")).unwrap_err();
        if skew.abs() > 30 {
            prop_assert!(
                matches!(err, AuthError::TimestampOutsideWindow { .. }),
                "unexpected {:?}",
                err
            );
        } else {
            prop_assert_eq!(err, AuthError::BadSignature { role: KeyRole::Operator });
        }
        prop_assert!(v.replay_guard().is_empty());
    }
}

#[test]
fn a_remembered_command_is_a_replay_in_a_new_verifier() {
    let clock = ManualClock::at(NOW);
    let mut first = operators(&clock);
    let datagram = sign(alice(), "EVICT|api", NOW);
    let accepted = first.verify_detailed(&datagram).unwrap();
    assert_eq!(accepted.timestamp, NOW);
    // A restarted daemon: a fresh verifier, told what the first accepted.
    let mut second = operators(&clock);
    second
        .remember(accepted.timestamp, accepted.replay_id)
        .unwrap();
    assert_eq!(second.verify(&datagram), Err(AuthError::Replayed));
    // Remembering twice is harmless; one out of the window is not kept.
    second
        .remember(accepted.timestamp, accepted.replay_id)
        .unwrap();
    let len = second.replay_guard().len();
    second.remember(NOW - 31, [7; 32]).unwrap();
    assert_eq!(second.replay_guard().len(), len);
    // Another signature of the same command is another command.
    assert_eq!(
        second.verify(&sign(alice(), "EVICT|api", NOW)),
        Ok("EVICT|api")
    );
}
