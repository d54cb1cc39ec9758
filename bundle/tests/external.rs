//! External programs some tests need besides Rust (a wasm runtime, `wat2wasm`, QEMU): looked
//! up on `PATH`. Without one, a test says it skipped, unless `SKR8TR_REQUIRE_EXTERNAL` is set
//! (as `.ci/run` sets it, after installing them all), when it fails.

use std::path::PathBuf;

/// `name` on `PATH`; `None` (after saying why) when `test` should skip.
pub fn program(test: &str, name: &str, install: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_some() {
        return found;
    }
    skip(test, &format!("{name} is needed on PATH ({install})"))
}

/// Says that `test` skips and why; fails it instead when `SKR8TR_REQUIRE_EXTERNAL` is set.
pub fn skip<T>(test: &str, why: &str) -> Option<T> {
    assert!(
        std::env::var_os("SKR8TR_REQUIRE_EXTERNAL").is_none(),
        "{test}: {why}"
    );
    eprintln!("skipped {test}: {why}");
    None
}

/// A binary of this workspace that `cargo test --workspace` builds beside `skr8tr` (another
/// package's, which this one cannot name with `CARGO_BIN_EXE_`); `None` (after saying why)
/// when `test` should skip.
pub fn built(test: &str, name: &str) -> Option<PathBuf> {
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_skr8tr")).with_file_name(name);
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "{} is needed (cargo test --workspace builds it)",
        path.display()
    );
    assert!(
        std::env::var_os("SKR8TR_REQUIRE_EXTERNAL").is_none(),
        "{test}: {why}"
    );
    eprintln!("skipped {test}: {why}");
    None
}
