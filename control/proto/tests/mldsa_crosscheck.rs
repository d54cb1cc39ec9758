//! Cross-checks skr8tr's ML-DSA-65 (the `fips204` crate) against an independent implementation,
//! RustCrypto's `ml-dsa`: keys, signatures and the signed wire form must be interchangeable in
//! both directions — pure ML-DSA-65, empty context, raw FIPS 204 encodings (1952 / 4032 / 3309
//! bytes, as liboqs writes them).
//!
//! `ml-dsa` 0.1 prefers 32-byte seeds, but still exposes the 4032-byte expanded secret-key
//! encoding through its deprecated `to_expanded` / `from_expanded`; those are used on purpose.

#![allow(deprecated)] // ml-dsa's expanded secret-key encoding, see above.

use ml_dsa::{
    EncodedVerifyingKey, ExpandedSigningKey, ExpandedSigningKeyBytes, KeyExport, MlDsa65,
    Signature, SigningKey as RcSigningKey, VerifyingKey as RcVerifyingKey,
};
use skr8tr_proto::auth::{
    KeyRole, PUBLIC_KEY_LEN, SECRET_KEY_LEN, SIGNATURE_LEN, SignedCommand, SigningKey, Verifier,
    VerifyingKey, sign_command,
};

const NOW: u64 = 1_767_225_600;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rc_public(bytes: &[u8]) -> RcVerifyingKey<MlDsa65> {
    let encoded = EncodedVerifyingKey::<MlDsa65>::try_from(bytes).expect("1952 bytes");
    RcVerifyingKey::decode(&encoded)
}

fn rc_signature(bytes: &[u8]) -> Signature<MlDsa65> {
    Signature::try_from(bytes).expect("a decodable signature")
}

fn verifier_for(public: VerifyingKey) -> Verifier {
    Verifier::new(KeyRole::Operator, [public]).with_clock(|| NOW)
}

#[test]
fn fips204_signs_and_ml_dsa_verifies() {
    let (secret, public) = SigningKey::generate().unwrap();
    let rc = rc_public(public.as_bytes());
    assert_eq!(
        rc.encode().as_slice(),
        public.as_bytes(),
        "same public key encoding"
    );

    let wire = sign_command(&secret, "EVICT|api", NOW).unwrap();
    let parsed = SignedCommand::parse(&wire).unwrap();
    let sig = rc_signature(parsed.signature());
    assert!(
        rc.verify_with_context(parsed.signed_bytes(), &[], &sig),
        "pure, empty context"
    );
    assert!(ml_dsa::Verifier::verify(&rc, b"EVICT|api|1767225600", &sig).is_ok());
    // A non-empty context or another message must not verify: the check is meaningful.
    assert!(!rc.verify_with_context(parsed.signed_bytes(), b"skr8tr", &sig));
    assert!(!rc.verify_with_context(b"EVICT|api|1767225601", &[], &sig));
}

#[test]
fn ml_dsa_keys_from_a_seed_load_into_skr8tr_and_sign_for_ml_dsa() {
    let seed = ml_dsa::B32::from([7u8; 32]);
    let rc_secret = RcSigningKey::<MlDsa65>::from_seed(&seed);
    let rc_public = rc_secret.expanded_key().verifying_key();
    let public_bytes = rc_public.encode();
    let secret_bytes = rc_secret.expanded_key().to_expanded();
    assert_eq!(public_bytes.len(), PUBLIC_KEY_LEN);
    assert_eq!(secret_bytes.len(), SECRET_KEY_LEN);

    let secret = SigningKey::from_bytes(&secret_bytes).unwrap();
    let public = VerifyingKey::from_bytes(&public_bytes).unwrap();
    assert_eq!(
        secret.verifying_key(),
        public,
        "fips204 derives the same public key"
    );
    assert_eq!(
        &secret.to_bytes()[..],
        secret_bytes.as_slice(),
        "and re-encodes identically"
    );

    let wire = sign_command(&secret, "ROLLOUT|api", NOW).unwrap();
    let parsed = SignedCommand::parse(&wire).unwrap();
    assert!(rc_public.verify_with_context(
        parsed.signed_bytes(),
        &[],
        &rc_signature(parsed.signature())
    ));
    assert_eq!(verifier_for(public).verify(&wire), Ok("ROLLOUT|api"));
}

#[test]
fn ml_dsa_signs_and_skr8tr_verifies_on_the_wire() {
    let rc_secret = RcSigningKey::<MlDsa65>::from_seed(&ml_dsa::B32::from([42u8; 32]));
    let public =
        VerifyingKey::from_bytes(&rc_secret.expanded_key().verifying_key().encode()).unwrap();
    let mut verifier = verifier_for(public.clone());

    let signed_part = format!("SUBMIT|/srv/api.skr8tr|{NOW}");
    let deterministic = rc_secret
        .expanded_key()
        .sign_deterministic(signed_part.as_bytes(), &[])
        .unwrap();
    let encoded = deterministic.encode();
    assert_eq!(encoded.len(), SIGNATURE_LEN);
    let wire = format!("{signed_part}|{}", hex(&encoded));
    assert_eq!(verifier.verify(&wire), Ok("SUBMIT|/srv/api.skr8tr"));

    let mut rng = ml_dsa::common::getrandom::SysRng;
    let hedged = rc_secret
        .expanded_key()
        .sign_randomized(signed_part.as_bytes(), &[], &mut rng)
        .unwrap()
        .encode();
    assert_ne!(hedged, encoded, "randomised");
    let wire = format!("{signed_part}|{}", hex(&hedged).to_uppercase());
    assert_eq!(
        verifier.verify(&wire),
        Ok("SUBMIT|/srv/api.skr8tr"),
        "uppercase hex accepted"
    );

    // ml-dsa's signature with a context is not a pure empty-context signature.
    let with_ctx = rc_secret
        .expanded_key()
        .sign_deterministic(signed_part.as_bytes(), b"x")
        .unwrap();
    let sig: [u8; SIGNATURE_LEN] = with_ctx.encode().as_slice().try_into().unwrap();
    assert!(!public.verify(signed_part.as_bytes(), &sig));
}

#[test]
fn a_fips204_secret_key_signs_inside_ml_dsa() {
    let (secret, public) = SigningKey::generate().unwrap();
    let bytes = secret.to_bytes();
    let expanded = ExpandedSigningKeyBytes::<MlDsa65>::try_from(&bytes[..]).unwrap();
    let rc_secret = ExpandedSigningKey::<MlDsa65>::from_expanded(&expanded);
    assert_eq!(
        rc_secret.verifying_key().encode().as_slice(),
        public.as_bytes()
    );
    let sig = rc_secret
        .sign_deterministic(b"KILL|r-1|1767225600", &[])
        .unwrap()
        .encode();
    let sig: [u8; SIGNATURE_LEN] = sig.as_slice().try_into().unwrap();
    assert!(public.verify(b"KILL|r-1|1767225600", &sig));
}

#[test]
fn both_implementations_derive_identical_keys_from_a_seed() {
    use fips204::traits::{KeyGen, SerDes};
    for byte in [0u8, 1, 0x5a, 0xff] {
        let xi = [byte; 32];
        let (pk, sk) = fips204::ml_dsa_65::KG::keygen_from_seed(&xi);
        let rc = RcSigningKey::<MlDsa65>::from_seed(&ml_dsa::B32::from(xi));
        let pk_bytes = pk.into_bytes();
        assert_eq!(
            pk_bytes.as_slice(),
            rc.expanded_key().verifying_key().encode().as_slice()
        );
        assert_eq!(
            sk.into_bytes().as_slice(),
            rc.expanded_key().to_expanded().as_slice()
        );
        let rc_public: &RcVerifyingKey<MlDsa65> = rc.as_ref();
        assert_eq!(rc_public.to_bytes().as_slice(), pk_bytes.as_slice());
    }
}
