//! Tests of the secure-by-default policy and of loading a daemon's keys.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;

use super::super::error::AuthError;
use super::super::signed::sign_command;
use super::super::testkit::{alice, bob, mesh};
use super::super::verifier::SystemClock;
use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn no_keys_means_loopback_unless_insecure() {
    assert!(requires_loopback(false, false));
    assert!(!requires_loopback(false, true));
    assert!(!requires_loopback(true, false));
    assert!(!requires_loopback(true, true));
    assert_eq!(bind_policy(false, false), BindPolicy::LoopbackOnly);
    assert_eq!(bind_policy(false, true), BindPolicy::AnyAddress);
    assert_eq!(bind_policy(true, false), BindPolicy::AnyAddress);
}

#[test]
fn loopback_only_keeps_loopback_and_narrows_wildcards() {
    let p = BindPolicy::LoopbackOnly;
    for addr in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
        assert_eq!(p.resolve(ip(addr)), Ok(ip(addr)), "{addr}");
    }
    assert_eq!(p.resolve(ip("0.0.0.0")), Ok(ip("127.0.0.1")));
    assert_eq!(p.resolve(ip("::")), Ok(ip("::1")));
}

#[test]
fn loopback_only_refuses_an_explicit_public_address() {
    let p = BindPolicy::LoopbackOnly;
    for addr in [
        "10.0.0.5",
        "192.168.1.1",
        "8.8.8.8",
        "fe80::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",
    ] {
        let err = p.resolve(ip(addr)).unwrap_err();
        assert_eq!(err, BindError::NeedsAuthentication { addr: ip(addr) });
        let text = err.to_string();
        assert!(text.contains(addr) && text.contains("--insecure"), "{text}");
    }
}

#[test]
fn any_address_allows_everything_as_asked() {
    for addr in ["0.0.0.0", "::", "10.0.0.5", "127.0.0.1"] {
        assert_eq!(BindPolicy::AnyAddress.resolve(ip(addr)), Ok(ip(addr)));
    }
}

#[test]
fn a_daemon_listens_widely_only_with_keys_for_every_role_it_checks() {
    let conductor = [KeyRole::Operator, KeyRole::Mesh];
    let node = [KeyRole::Mesh];
    let none = AuthConfig::new(Vec::new(), None, false);
    assert!(!none.has_keys(KeyRole::Operator) && !none.has_keys(KeyRole::Mesh));
    assert_eq!(none.bind_policy(&conductor), BindPolicy::LoopbackOnly);
    assert_eq!(none.bind_policy(&node), BindPolicy::LoopbackOnly);

    let operators_only = AuthConfig::new(vec![alice().public.clone()], None, false);
    assert_eq!(
        operators_only.bind_policy(&conductor),
        BindPolicy::LoopbackOnly
    );

    let both = AuthConfig::new(vec![alice().public.clone()], Some(mesh_secret()), false);
    assert_eq!(both.bind_policy(&conductor), BindPolicy::AnyAddress);
    assert_eq!(both.bind_policy(&node), BindPolicy::AnyAddress);

    let insecure = AuthConfig::new(Vec::new(), None, true);
    assert!(insecure.insecure());
    assert_eq!(insecure.bind_policy(&conductor), BindPolicy::AnyAddress);
}

fn mesh_secret() -> SigningKey {
    SigningKey::from_bytes(&mesh().secret.to_bytes()[..]).unwrap()
}

#[test]
fn verifiers_exist_only_for_configured_roles() {
    let none = AuthConfig::new(Vec::new(), None, false);
    assert!(none.operator_verifier().is_none());
    assert!(none.mesh_verifier().is_none());
    assert!(none.mesh_signing_key().is_none());

    let config = AuthConfig::new(
        vec![alice().public.clone(), bob().public.clone()],
        Some(mesh_secret()),
        false,
    );
    assert_eq!(config.operator_keys().len(), 2);
    let mut ops = config.operator_verifier().unwrap();
    let mut mesh_v = config.mesh_verifier().unwrap();
    assert_eq!(
        (ops.role(), mesh_v.role()),
        (KeyRole::Operator, KeyRole::Mesh)
    );

    let now = SystemClock::now();
    let heartbeat = sign_command(
        config.mesh_signing_key().unwrap(),
        "HEARTBEAT|n1|3|900",
        now,
    );
    let heartbeat = heartbeat.unwrap();
    assert_eq!(mesh_v.verify(&heartbeat), Ok("HEARTBEAT|n1|3|900"));
    assert_eq!(
        ops.verify(&heartbeat),
        Err(AuthError::BadSignature {
            role: KeyRole::Operator
        })
    );
    let evict = sign_command(&bob().secret, "EVICT|api", now).unwrap();
    assert_eq!(ops.verify(&evict), Ok("EVICT|api"));
    assert_eq!(
        mesh_v.verify(&evict),
        Err(AuthError::BadSignature {
            role: KeyRole::Mesh
        })
    );
}

/// Writes alice's and bob's public keys and the mesh pair into a fresh directory.
fn key_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    alice()
        .public
        .save(&dir.path().join("alice.pub"), false)
        .unwrap();
    bob()
        .public
        .save(&dir.path().join("bob.pub"), false)
        .unwrap();
    mesh()
        .secret
        .save(&dir.path().join("mesh.sec"), false)
        .unwrap();
    mesh()
        .public
        .save(&dir.path().join("mesh.pub"), false)
        .unwrap();
    dir
}

#[test]
fn load_reads_operator_keys_and_the_mesh_pair() {
    let dir = key_dir();
    let d = dir.path();
    let config = AuthConfig::load(
        &[d.join("alice.pub"), d.join("bob.pub")],
        Some(&d.join("mesh.sec")),
        false,
    )
    .unwrap();
    assert_eq!(
        config.operator_keys(),
        &[alice().public.clone(), bob().public.clone()]
    );
    assert_eq!(
        config.mesh_verifier().unwrap().keys(),
        &[mesh().public.clone()]
    );
    assert!(config.has_keys(KeyRole::Operator) && config.has_keys(KeyRole::Mesh));
}

#[test]
fn the_mesh_public_half_may_be_absent_but_must_match_when_present() {
    let dir = key_dir();
    let d = dir.path();
    fs::remove_file(d.join("mesh.pub")).unwrap();
    let config =
        AuthConfig::load(&[d.join("alice.pub")], Some(&d.join("mesh.sec")), false).unwrap();
    assert_eq!(
        config.mesh_verifier().unwrap().keys(),
        &[mesh().public.clone()]
    );

    alice().public.save(&d.join("mesh.pub"), false).unwrap();
    let err = AuthConfig::load(&[d.join("bob.pub")], Some(&d.join("mesh.sec")), false).unwrap_err();
    assert!(
        matches!(err, AuthConfigError::MeshPairMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("mesh.pub") && err.to_string().contains("mesh.sec"));
}

#[test]
fn the_mesh_key_cannot_also_be_an_operator_key() {
    let dir = key_dir();
    let d = dir.path();
    let err = AuthConfig::load(
        &[d.join("alice.pub"), d.join("mesh.pub")],
        Some(&d.join("mesh.sec")),
        false,
    )
    .unwrap_err();
    assert!(
        matches!(&err, AuthConfigError::MeshKeyAsOperatorKey { path } if path.ends_with("mesh.pub")),
        "{err:?}"
    );
}

#[test]
fn load_reports_the_file_that_failed() {
    let dir = key_dir();
    let d = dir.path();
    fs::set_permissions(d.join("mesh.sec"), fs::Permissions::from_mode(0o644)).unwrap();
    let err =
        AuthConfig::load(&[d.join("alice.pub")], Some(&d.join("mesh.sec")), false).unwrap_err();
    assert!(matches!(
        err,
        AuthConfigError::Key(KeyError::InsecurePermissions { .. })
    ));
    assert!(err.to_string().contains("chmod 600"));

    let missing: &[std::path::PathBuf] = &[d.join("nobody.pub")];
    let err = AuthConfig::load(missing, None, false).unwrap_err();
    assert!(err.to_string().contains("nobody.pub"), "{err}");

    let none: &[&std::path::Path] = &[];
    let empty = AuthConfig::load(none, None, true).unwrap();
    assert!(!empty.has_keys(KeyRole::Operator) && empty.insecure());
}
