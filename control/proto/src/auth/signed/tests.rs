//! Tests of the signed wire form: layout, each parse error, hex in both cases, and fuzzing.

use proptest::prelude::*;

use super::super::testkit::{alice, bob};
use super::*;

const TS: u64 = 1_767_225_600;

fn signed(cmd: &str) -> String {
    sign_command(&alice().secret, cmd, TS).unwrap()
}

/// A well-formed datagram with a signature of zeros (parses, never verifies).
fn zero_signed(cmd: &str, ts: &str) -> String {
    format!("{cmd}|{ts}|{}", "0".repeat(SIGNATURE_HEX_LEN))
}

#[test]
fn the_wire_form_is_cmd_ts_lowercase_hex() {
    let wire = signed("EVICT|api");
    let (head, sig) = wire.rsplit_once('|').unwrap();
    assert_eq!(head, format!("EVICT|api|{TS}"));
    assert_eq!(sig.len(), 6618);
    assert!(
        sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "lowercase hex"
    );
}

#[test]
fn the_signature_covers_exactly_cmd_pipe_ts() {
    let wire = signed("EVICT|api");
    let parsed = SignedCommand::parse(&wire).unwrap();
    assert_eq!(parsed.signed_bytes(), format!("EVICT|api|{TS}").as_bytes());
    assert!(
        alice()
            .public
            .verify(format!("EVICT|api|{TS}").as_bytes(), parsed.signature())
    );
    assert!(parsed.is_signed_by(&alice().public));
    assert!(!parsed.is_signed_by(&bob().public));
}

#[test]
fn parse_splits_from_the_right_so_commands_may_contain_pipes() {
    let wire = signed("EXEC|api|sh -c 'a | b'");
    let parsed = SignedCommand::parse(&wire).unwrap();
    assert_eq!(parsed.command(), "EXEC|api|sh -c 'a | b'");
    assert_eq!(parsed.timestamp(), TS);
    assert!(parsed.is_signed_by(&alice().public));
}

#[test]
fn signing_an_empty_command_is_refused() {
    assert_eq!(
        sign_command(&alice().secret, "", TS),
        Err(AuthError::EmptyCommand)
    );
}

#[test]
fn signing_twice_gives_two_datagrams() {
    assert_ne!(signed("LIST"), signed("LIST"));
}

#[test]
fn unsigned_text_is_not_signed() {
    for text in ["", "LIST", "PING", "EVICT|api", "|", "no pipes at all"] {
        assert_eq!(
            SignedCommand::parse(text).unwrap_err(),
            AuthError::NotSigned,
            "{text:?}"
        );
    }
}

#[test]
fn an_empty_command_is_refused() {
    assert_eq!(
        SignedCommand::parse(&zero_signed("", "1")).unwrap_err(),
        AuthError::EmptyCommand
    );
    assert_eq!(
        SignedCommand::parse("||").unwrap_err(),
        AuthError::EmptyCommand
    );
}

#[test]
fn a_timestamp_that_is_not_a_decimal_u64_is_refused() {
    for ts in [
        "",
        "abc",
        "12a",
        "+12",
        "-1",
        " 12",
        "12 ",
        "1.5",
        "0x10",
        "１２",
        "18446744073709551616",
        "999999999999999999999999",
    ] {
        let err = SignedCommand::parse(&zero_signed("EVICT|api", ts)).unwrap_err();
        assert_eq!(err, AuthError::TimestampNotNumber, "{ts:?}");
    }
    // An unsigned command with a third field lands here too (its "timestamp" is the app).
    assert_eq!(
        SignedCommand::parse("EXEC|api|ls").unwrap_err(),
        AuthError::TimestampNotNumber
    );
}

#[test]
fn timestamps_up_to_u64_max_parse() {
    for (text, value) in [("0", 0), ("0001", 1), ("18446744073709551615", u64::MAX)] {
        let wire = zero_signed("LIST", text);
        assert_eq!(SignedCommand::parse(&wire).unwrap().timestamp(), value);
    }
}

#[test]
fn a_signature_of_the_wrong_length_is_refused_with_its_length() {
    let wire = signed("LIST");
    let truncated = &wire[..wire.len() - 1];
    assert_eq!(
        SignedCommand::parse(truncated).unwrap_err(),
        AuthError::SignatureWrongLength { len: 6617 }
    );
    let long = format!("{wire}0");
    assert_eq!(
        SignedCommand::parse(&long).unwrap_err(),
        AuthError::SignatureWrongLength { len: 6619 }
    );
    let halved = &wire[..wire.len() - 3309];
    assert_eq!(
        SignedCommand::parse(halved).unwrap_err(),
        AuthError::SignatureWrongLength { len: 3309 }
    );
    assert_eq!(
        SignedCommand::parse(&format!("LIST|{TS}|")).unwrap_err(),
        AuthError::SignatureWrongLength { len: 0 }
    );
    // A trailing newline (`echo` without `-n`) is not silently accepted.
    assert_eq!(
        SignedCommand::parse(&format!("{wire}\n")).unwrap_err(),
        AuthError::SignatureWrongLength { len: 6619 }
    );
}

#[test]
fn a_non_hex_signature_is_refused() {
    let wire = signed("LIST");
    let sig_start = wire.len() - SIGNATURE_HEX_LEN;
    for (offset, bad) in [(0, "g"), (100, "z"), (6617, " "), (3000, "-"), (1, "G")] {
        let mut text = wire.clone();
        text.replace_range(sig_start + offset..sig_start + offset + 1, bad);
        assert_eq!(
            SignedCommand::parse(&text).unwrap_err(),
            AuthError::SignatureNotHex,
            "{bad:?}"
        );
    }
    // Two bytes of UTF-8 in place of two hex digits: right byte length, not hex.
    let mut text = wire.clone();
    text.replace_range(sig_start + 10..sig_start + 12, "é");
    assert_eq!(
        SignedCommand::parse(&text).unwrap_err(),
        AuthError::SignatureNotHex
    );
}

#[test]
fn uppercase_hex_is_accepted_and_means_the_same_signature() {
    let wire = signed("LIST");
    let (head, sig) = wire.rsplit_once('|').unwrap();
    let upper = format!("{head}|{}", sig.to_ascii_uppercase());
    let a = SignedCommand::parse(&wire).unwrap();
    let b = SignedCommand::parse(&upper).unwrap();
    assert_eq!(a.signature(), b.signature());
    assert!(b.is_signed_by(&alice().public));
    assert_eq!(
        a.replay_id(),
        b.replay_id(),
        "one replay id whatever the hex case"
    );
}

#[test]
fn replay_ids_tell_signatures_apart() {
    let one = signed("LIST");
    let two = signed("LIST");
    let a = SignedCommand::parse(&one).unwrap();
    let b = SignedCommand::parse(&two).unwrap();
    assert_ne!(a.replay_id(), b.replay_id());
    assert_eq!(
        a.replay_id(),
        SignedCommand::parse(&one).unwrap().replay_id()
    );
}

#[test]
fn tampering_with_any_part_breaks_the_signature() {
    let wire = signed("EVICT|api");
    let parsed = SignedCommand::parse(&wire).unwrap();
    // A flipped bit in the signature.
    let mut sig = *parsed.signature();
    sig[1000] ^= 0x01;
    assert!(!alice().public.verify(parsed.signed_bytes(), &sig));
    // A flipped bit in the command (`E` → `D`) and in the timestamp's last digit.
    let mut bytes = wire.clone().into_bytes();
    bytes[0] ^= 0x01;
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        !SignedCommand::parse(&text)
            .unwrap()
            .is_signed_by(&alice().public)
    );
    let ts_last = "EVICT|api|".len() + TS.to_string().len() - 1;
    let mut bytes = wire.into_bytes();
    bytes[ts_last] ^= 0x01;
    let text = String::from_utf8(bytes).unwrap();
    let parsed = SignedCommand::parse(&text).unwrap();
    assert_eq!(parsed.timestamp(), TS ^ 1);
    assert!(!parsed.is_signed_by(&alice().public));
}

#[test]
fn debug_shows_the_command_and_a_signature_prefix_only() {
    let wire = signed("LIST");
    let shown = format!("{:?}", SignedCommand::parse(&wire).unwrap());
    assert!(
        shown.contains("\"LIST\"") && shown.contains(&TS.to_string()),
        "{shown}"
    );
    assert!(shown.len() < 120, "{shown}");
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = SignedCommand::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_near_miss_datagrams(
        cmd in "[A-Z|]{0,12}",
        ts in "[0-9a-z+-]{0,22}",
        sig in "[0-9a-fA-Fg-zé]{6610,6626}",
    ) {
        let text = format!("{cmd}|{ts}|{sig}");
        if let Ok(parsed) = SignedCommand::parse(&text) {
            prop_assert_eq!(parsed.command(), cmd.as_str());
            prop_assert!(!parsed.is_signed_by(&alice().public));
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes_as_lossy_text(bytes in proptest::collection::vec(any::<u8>(), 0..7000)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = SignedCommand::parse(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn any_command_round_trips(cmd in "\\PC{1,80}", ts in any::<u64>()) {
        let wire = sign_command(&alice().secret, &cmd, ts).unwrap();
        let parsed = SignedCommand::parse(&wire).unwrap();
        prop_assert_eq!(parsed.command(), cmd.as_str());
        prop_assert_eq!(parsed.timestamp(), ts);
        prop_assert!(parsed.is_signed_by(&alice().public));
    }
}
