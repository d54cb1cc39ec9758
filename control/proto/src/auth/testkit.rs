//! Test fixtures shared by the auth unit tests: key pairs generated once per test binary (key
//! generation and signing are slow in debug builds) and a clock the test can move.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use super::keys::{SigningKey, VerifyingKey};

/// A key pair made once per test binary.
pub(crate) struct Pair {
    pub secret: SigningKey,
    pub public: VerifyingKey,
}

fn pair() -> Pair {
    let (secret, public) = SigningKey::generate().expect("key generation");
    Pair { secret, public }
}

static ALICE: LazyLock<Pair> = LazyLock::new(pair);
static BOB: LazyLock<Pair> = LazyLock::new(pair);
static MALLORY: LazyLock<Pair> = LazyLock::new(pair);
static MESH: LazyLock<Pair> = LazyLock::new(pair);

/// An operator.
pub(crate) fn alice() -> &'static Pair {
    &ALICE
}

/// Another operator.
pub(crate) fn bob() -> &'static Pair {
    &BOB
}

/// Someone whose key nobody trusts.
pub(crate) fn mallory() -> &'static Pair {
    &MALLORY
}

/// The cluster's mesh key.
pub(crate) fn mesh() -> &'static Pair {
    &MESH
}

/// A clock a test sets by hand.
#[derive(Debug, Clone)]
pub(crate) struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub(crate) fn at(now: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now)))
    }

    pub(crate) fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// A closure reading this clock, to hand to a `Verifier`.
    pub(crate) fn source(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let now = Arc::clone(&self.0);
        move || now.load(Ordering::SeqCst)
    }
}
