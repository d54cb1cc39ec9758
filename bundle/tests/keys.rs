//! `skr8tr keygen`, `sign` and `verify` as an operator runs them: files, modes and sizes, refusal
//! to overwrite, `--force`, `--mesh`, `--out`, and `sign | verify` round trips with tampering.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use skr8tr_proto::auth::{SigningKey, SystemClock, sign_command};

/// A fake operator: a `$HOME` and a working directory, both temporary.
struct Operator {
    _root: tempfile::TempDir,
    home: PathBuf,
    cwd: PathBuf,
}

impl Operator {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temporary directory");
        let home = root.path().join("home");
        let cwd = root.path().join("work");
        fs::create_dir(&home).expect("create home");
        fs::create_dir(&cwd).expect("create working directory");
        Self {
            _root: root,
            home,
            cwd,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_skr8tr"))
            .args(args)
            .env("HOME", &self.home)
            .current_dir(&self.cwd)
            .output()
            .expect("run the skr8tr binary")
    }

    fn secret(&self) -> PathBuf {
        self.home.join(".skr8tr/signing.sec")
    }

    fn public(&self) -> PathBuf {
        self.cwd.join("skrtrview.pub")
    }

    fn keygen(&self) {
        let out = self.run(&["keygen"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    fn sign(&self, command: &str) -> String {
        let out = self.run(&["sign", utf8(&self.secret()), command]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let line = text(&out.stdout);
        assert_eq!(line.lines().count(), 1, "{line}");
        line.trim_end().to_owned()
    }

    fn verify(&self, public: &Path, signed: &str) -> (i32, String) {
        let out = self.run(&["verify", utf8(public), signed]);
        (out.status.code().expect("an exit code"), text(&out.stdout))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// Temporary paths are UTF-8 here; the binary takes them as arguments.
fn utf8(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn keygen_writes_the_secret_0600_in_home_and_the_public_0644_here() {
    let op = Operator::new();
    let out = op.run(&["keygen"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&op.home.join(".skr8tr")), 0o700);
    assert_eq!(mode(&op.secret()), 0o600);
    assert_eq!(mode(&op.public()), 0o644);
    assert_eq!(fs::read(op.secret()).unwrap().len(), 4032);
    assert_eq!(fs::read(op.public()).unwrap().len(), 1952);

    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("signing.sec") && stdout.contains("skrtrview.pub"),
        "{stdout}"
    );
    let fingerprint = SigningKey::load(&op.secret())
        .unwrap()
        .verifying_key()
        .fingerprint();
    assert!(
        stdout.contains(&format!("fingerprint  {fingerprint}")),
        "{stdout}"
    );
    let secret_hex = hex(&fs::read(op.secret()).unwrap()[..24]);
    assert!(!stdout.contains(&secret_hex) && !text(&out.stderr).contains(&secret_hex));
}

#[test]
fn keygen_refuses_to_overwrite_and_force_replaces() {
    let op = Operator::new();
    op.keygen();
    let first_secret = fs::read(op.secret()).unwrap();
    let first_public = fs::read(op.public()).unwrap();

    let out = op.run(&["keygen"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&op.secret().display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(fs::read(op.secret()).unwrap(), first_secret, "untouched");
    assert_eq!(fs::read(op.public()).unwrap(), first_public, "untouched");

    // Only the public half is there: still refused, and the secret is not written either.
    fs::remove_file(op.secret()).unwrap();
    let out = op.run(&["keygen"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("skrtrview.pub"));
    assert!(!op.secret().exists(), "no half-written pair");

    let out = op.run(&["keygen", "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_ne!(fs::read(op.public()).unwrap(), first_public, "a new key");
    assert_eq!(mode(&op.secret()), 0o600);
    assert_eq!(mode(&op.public()), 0o644);
    let derived = SigningKey::load(&op.secret()).unwrap().verifying_key();
    assert_eq!(
        derived.as_bytes().as_slice(),
        fs::read(op.public()).unwrap(),
        "one pair"
    );
}

#[test]
fn keygen_mesh_writes_both_halves_in_home() {
    let op = Operator::new();
    let out = op.run(&["keygen", "--mesh"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = op.home.join(".skr8tr/mesh.sec");
    let public = op.home.join(".skr8tr/mesh.pub");
    assert_eq!(
        (mode(&secret), fs::read(&secret).unwrap().len()),
        (0o600, 4032)
    );
    assert_eq!(
        (mode(&public), fs::read(&public).unwrap().len()),
        (0o644, 1952)
    );
    assert!(
        !op.public().exists(),
        "the operator public key is not touched"
    );
    assert!(text(&out.stdout).contains("--mesh-key"));
    assert_eq!(op.run(&["keygen", "--mesh"]).status.code(), Some(1));
}

#[test]
fn keygen_out_puts_both_halves_in_the_directory() {
    let op = Operator::new();
    let dir = op.cwd.join("keys/new");
    let out = op.run(&["keygen", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&dir.join("signing.sec")), 0o600);
    assert_eq!(mode(&dir.join("skrtrview.pub")), 0o644);
    assert!(!op.home.join(".skr8tr").exists());

    let out = op.run(&["keygen", "--mesh", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fs::read(dir.join("mesh.sec")).unwrap().len(), 4032);
    assert_eq!(fs::read(dir.join("mesh.pub")).unwrap().len(), 1952);
}

#[test]
fn keygen_without_home_needs_out() {
    let op = Operator::new();
    let out = Command::new(env!("CARGO_BIN_EXE_skr8tr"))
        .arg("keygen")
        .env_remove("HOME")
        .current_dir(&op.cwd)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("$HOME"), "{}", text(&out.stderr));
}

#[test]
fn sign_then_verify_is_valid() {
    let op = Operator::new();
    op.keygen();
    let signed = op.sign("EVICT|api-server");
    let (head, sig) = signed.rsplit_once('|').unwrap();
    assert!(head.starts_with("EVICT|api-server|"));
    assert_eq!(sig.len(), 6618);
    let (code, stdout) = op.verify(&op.public(), &signed);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "VALID — bare command: EVICT|api-server\n")
    );
}

#[test]
fn a_tampered_command_is_invalid() {
    let op = Operator::new();
    op.keygen();
    let signed = op.sign("EVICT|api-server");
    let tampered = signed.replacen("api-server", "db-server", 1);
    let (code, stdout) = op.verify(&op.public(), &tampered);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with("INVALID: the signature does not verify with"),
        "{stdout}"
    );

    let truncated = &signed[..signed.len() - 10];
    let (code, stdout) = op.verify(&op.public(), truncated);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with("INVALID: the signature has 6608 hex characters"),
        "{stdout}"
    );

    let (code, stdout) = op.verify(&op.public(), "EVICT|api-server");
    assert_eq!(
        (code, stdout.starts_with("INVALID: not a signed command")),
        (1, true),
        "{stdout}"
    );
}

#[test]
fn verify_with_another_key_is_invalid() {
    let op = Operator::new();
    op.keygen();
    let signed = op.sign("ROLLOUT|/srv/api.skr8tr");
    let other = op.cwd.join("other");
    assert!(
        op.run(&["keygen", "--out", other.to_str().unwrap()])
            .status
            .success()
    );
    let (code, stdout) = op.verify(&other.join("skrtrview.pub"), &signed);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("does not verify") && stdout.contains("fingerprint"),
        "{stdout}"
    );
}

#[test]
fn a_stale_signature_is_invalid_with_its_skew() {
    let op = Operator::new();
    op.keygen();
    let key = SigningKey::load(&op.secret()).unwrap();
    let stale = sign_command(&key, "EVICT|api", SystemClock::now() - 120).unwrap();
    let (code, stdout) = op.verify(&op.public(), &stale);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with("INVALID: the timestamp is -12"),
        "{stdout}"
    );
    assert!(stdout.contains("±30 s"), "{stdout}");
}

#[test]
fn sign_refuses_a_secret_key_others_can_read() {
    let op = Operator::new();
    op.keygen();
    fs::set_permissions(op.secret(), fs::Permissions::from_mode(0o644)).unwrap();
    let out = op.run(&["sign", op.secret().to_str().unwrap(), "LIST"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("chmod 600 {}", op.secret().display())),
        "{stderr}"
    );
}

#[test]
fn missing_or_wrong_size_key_files_are_errors_naming_the_file() {
    let op = Operator::new();
    let out = op.run(&["verify", "absent.pub", "LIST|1|00"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("absent.pub"),
        "{}",
        text(&out.stderr)
    );

    let short = op.cwd.join("short.pub");
    fs::write(&short, [0u8; 100]).unwrap();
    fs::set_permissions(&short, fs::Permissions::from_mode(0o644)).unwrap();
    let out = op.run(&["verify", short.to_str().unwrap(), "LIST|1|00"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("short.pub") && stderr.contains("1952"),
        "{stderr}"
    );

    let out = op.run(&["sign", short.to_str().unwrap(), "LIST"]);
    assert_eq!(out.status.code(), Some(1));
}
