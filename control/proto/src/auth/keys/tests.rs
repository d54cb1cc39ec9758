//! Tests of key sizes, encodings, signing and key files (modes, sizes, atomic no-clobber writes).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::super::testkit::{alice, bob};
use super::*;

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
}

#[test]
fn sizes_match_fips_204_and_liboqs() {
    assert_eq!(PUBLIC_KEY_LEN, 1952);
    assert_eq!(SECRET_KEY_LEN, 4032);
    assert_eq!(SIGNATURE_LEN, 3309);
    assert_eq!(SIGNATURE_HEX_LEN, 6618);
    let pair = alice();
    assert_eq!(pair.secret.to_bytes().len(), 4032);
    assert_eq!(pair.public.as_bytes().len(), 1952);
    assert_eq!(pair.secret.sign(b"x").unwrap().len(), 3309);
}

#[test]
fn the_public_half_is_derived_from_the_secret() {
    assert_eq!(alice().secret.verifying_key(), alice().public);
    assert_ne!(alice().public, bob().public);
}

#[test]
fn secret_bytes_round_trip() {
    let bytes = alice().secret.to_bytes();
    let again = SigningKey::from_bytes(&bytes[..]).unwrap();
    assert_eq!(*again.to_bytes(), *bytes);
    assert_eq!(again.verifying_key(), alice().public);
}

#[test]
fn public_bytes_round_trip() {
    let again = VerifyingKey::from_bytes(alice().public.as_bytes()).unwrap();
    assert_eq!(again, alice().public);
    assert_eq!(again.as_bytes(), alice().public.as_bytes());
}

#[test]
fn wrong_lengths_are_refused() {
    let secret = alice().secret.to_bytes();
    for len in [0, 1, SECRET_KEY_LEN - 1] {
        let err = SigningKey::from_bytes(&secret[..len]).unwrap_err();
        assert!(
            matches!(err, KeyError::WrongLength { kind: "secret", expected: 4032, actual } if actual == len)
        );
    }
    let mut long = secret.to_vec();
    long.push(0);
    assert!(matches!(
        SigningKey::from_bytes(&long),
        Err(KeyError::WrongLength { .. })
    ));
    let public = alice().public.as_bytes();
    let err = VerifyingKey::from_bytes(&public[..100]).unwrap_err();
    assert!(matches!(
        err,
        KeyError::WrongLength {
            kind: "public",
            expected: 1952,
            actual: 100
        }
    ));
}

#[test]
fn a_secret_key_with_out_of_range_coefficients_is_invalid() {
    let garbage = [0xffu8; SECRET_KEY_LEN];
    let err = SigningKey::from_bytes(&garbage).unwrap_err();
    assert!(
        matches!(err, KeyError::Invalid { kind: "secret", .. }),
        "{err:?}"
    );
}

#[test]
fn signing_is_hedged_and_verifies() {
    let pair = alice();
    let one = pair.secret.sign(b"EVICT|api|1").unwrap();
    let two = pair.secret.sign(b"EVICT|api|1").unwrap();
    assert_ne!(
        one, two,
        "randomised signing gives a new signature each time"
    );
    assert!(pair.public.verify(b"EVICT|api|1", &one));
    assert!(pair.public.verify(b"EVICT|api|1", &two));
    assert!(!pair.public.verify(b"EVICT|api|2", &one));
    assert!(!bob().public.verify(b"EVICT|api|1", &one));
}

#[test]
fn debug_never_shows_the_secret() {
    let shown = format!("{:?} {:#?}", alice().secret, alice().secret);
    assert_eq!(shown, "SigningKey(<redacted>) SigningKey(<redacted>)");
    let public = format!("{:?}", alice().public);
    assert_eq!(
        public,
        format!("VerifyingKey({})", alice().public.fingerprint())
    );
}

#[test]
fn the_fingerprint_is_16_hex_of_the_sha256_of_the_raw_key() {
    let fp = alice().public.fingerprint();
    assert_eq!(fp.len(), 16);
    assert!(
        fp.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let digest = Sha256::digest(alice().public.as_bytes());
    assert_eq!(fp, hex::encode(&digest[..8]));
    assert_ne!(fp, bob().public.fingerprint());
}

#[test]
fn save_writes_the_secret_0600_and_the_public_0644() {
    let dir = tempfile::tempdir().unwrap();
    let sec = dir.path().join("signing.sec");
    let public = dir.path().join("signing.pub");
    alice().secret.save(&sec, false).unwrap();
    alice().public.save(&public, false).unwrap();
    assert_eq!(mode_of(&sec), 0o600);
    assert_eq!(mode_of(&public), 0o644);
    assert_eq!(fs::read(&sec).unwrap().len(), 4032);
    assert_eq!(fs::read(&public).unwrap(), alice().public.as_bytes());
    assert_eq!(
        *SigningKey::load(&sec).unwrap().to_bytes(),
        *alice().secret.to_bytes()
    );
    assert_eq!(VerifyingKey::load(&public).unwrap(), alice().public);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left behind: {names:?}");
}

#[test]
fn save_refuses_to_overwrite_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let sec = dir.path().join("signing.sec");
    alice().secret.save(&sec, false).unwrap();
    let err = bob().secret.save(&sec, false).unwrap_err();
    assert!(
        matches!(&err, KeyError::AlreadyExists { path } if *path == sec),
        "{err:?}"
    );
    assert!(err.to_string().contains("signing.sec"));
    assert_eq!(
        SigningKey::load(&sec).unwrap().verifying_key(),
        alice().public,
        "untouched"
    );

    bob().secret.save(&sec, true).unwrap();
    assert_eq!(
        SigningKey::load(&sec).unwrap().verifying_key(),
        bob().public
    );
    assert_eq!(mode_of(&sec), 0o600);

    let public = dir.path().join("k.pub");
    alice().public.save(&public, false).unwrap();
    assert!(matches!(
        bob().public.save(&public, false),
        Err(KeyError::AlreadyExists { .. })
    ));
    bob().public.save(&public, true).unwrap();
    assert_eq!(VerifyingKey::load(&public).unwrap(), bob().public);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn save_refuses_to_replace_a_dangling_symlink_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("signing.sec");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
    assert!(matches!(
        alice().secret.save(&link, false),
        Err(KeyError::AlreadyExists { .. })
    ));
    assert!(
        !dir.path().join("nowhere").exists(),
        "did not write through the link"
    );
}

#[test]
fn overwriting_a_loose_secret_file_leaves_a_private_one() {
    let dir = tempfile::tempdir().unwrap();
    let sec = dir.path().join("signing.sec");
    fs::write(&sec, b"old").unwrap();
    chmod(&sec, 0o666);
    alice().secret.save(&sec, true).unwrap();
    assert_eq!(mode_of(&sec), 0o600);
}

#[test]
fn save_into_a_missing_directory_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let sec = dir.path().join("missing").join("signing.sec");
    let err = alice().secret.save(&sec, false).unwrap_err();
    assert!(
        matches!(
            err,
            KeyError::Io {
                action: "create",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_secret_key_readable_by_group_or_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let sec = dir.path().join("signing.sec");
    alice().secret.save(&sec, false).unwrap();
    for mode in [
        0o644, 0o640, 0o604, 0o660, 0o606, 0o620, 0o610, 0o601, 0o777,
    ] {
        chmod(&sec, mode);
        let err = SigningKey::load(&sec).unwrap_err();
        assert!(matches!(&err, KeyError::InsecurePermissions { mode: m, .. } if *m == mode));
        let text = err.to_string();
        assert!(text.contains(&sec.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", sec.display())),
            "{text}"
        );
        assert!(text.contains(&format!("{mode:04o}")), "{text}");
    }
    for mode in [0o600, 0o400] {
        chmod(&sec, mode);
        assert!(SigningKey::load(&sec).is_ok(), "{mode:o} accepted");
    }
}

#[test]
fn a_key_file_of_the_wrong_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sec = dir.path().join("bad.sec");
    let public = dir.path().join("bad.pub");
    for len in [0usize, 1952, 4031, 4033, 8064] {
        fs::write(&sec, vec![0u8; len]).unwrap();
        chmod(&sec, 0o600);
        let err = SigningKey::load(&sec).unwrap_err();
        assert!(
            matches!(err, KeyError::WrongFileSize { kind: "secret", expected: 4032, actual, .. } if actual == len as u64),
            "{err:?}"
        );
        assert!(err.to_string().contains("bad.sec"));
    }
    for len in [0usize, 1951, 1953, 4032] {
        fs::write(&public, vec![0u8; len]).unwrap();
        chmod(&public, 0o644);
        let err = VerifyingKey::load(&public).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::WrongFileSize {
                    kind: "public",
                    expected: 1952,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn a_secret_file_of_the_right_size_with_a_malformed_key_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let sec = dir.path().join("garbage.sec");
    fs::write(&sec, [0xffu8; SECRET_KEY_LEN]).unwrap();
    chmod(&sec, 0o600);
    let err = SigningKey::load(&sec).unwrap_err();
    assert!(
        matches!(err, KeyError::InvalidFile { kind: "secret", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("garbage.sec"), "{err}");
}

#[test]
fn a_public_key_writable_by_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("op.pub");
    alice().public.save(&public, false).unwrap();
    for mode in [0o664, 0o646, 0o666, 0o620] {
        chmod(&public, mode);
        let err = VerifyingKey::load(&public).unwrap_err();
        assert!(matches!(err, KeyError::PublicKeyWritable { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("chmod 644 {}", public.display()))
        );
    }
    for mode in [0o644, 0o600, 0o444, 0o640] {
        chmod(&public, mode);
        assert_eq!(
            VerifyingKey::load(&public).unwrap(),
            alice().public,
            "{mode:o} accepted"
        );
    }
}

#[test]
fn directories_and_missing_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = SigningKey::load(dir.path()).unwrap_err();
    assert!(matches!(err, KeyError::NotAFile { .. }), "{err:?}");
    let err = VerifyingKey::load(&dir.path().join("absent.pub")).unwrap_err();
    assert!(
        matches!(&err, KeyError::Io { action: "open", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("absent.pub"));
    assert!(
        std::error::Error::source(&err).is_some(),
        "the io::Error is the source"
    );
}

#[test]
fn errors_never_contain_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let sec = dir.path().join("signing.sec");
    alice().secret.save(&sec, false).unwrap();
    chmod(&sec, 0o644);
    let text = format!(
        "{:?} {}",
        SigningKey::load(&sec).unwrap_err(),
        SigningKey::load(&sec).unwrap_err()
    );
    let secret_hex = hex::encode(&alice().secret.to_bytes()[..16]);
    assert!(!text.contains(&secret_hex));
}
