//! Any text into the signed-command parser and a verifier: they return, never panic, and
//! nothing unsigned by the trusted key is ever accepted.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use skr8tr_proto::auth::{KeyRole, SignedCommand, SigningKey, Verifier, VerifyingKey};

fn key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().expect("keygen").1)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = SignedCommand::parse(text);
    let mut v = Verifier::new(KeyRole::Operator, [key().clone()]).with_clock(|| 1_767_225_600u64);
    assert!(v.verify(text).is_err(), "a forged datagram verified");
});
