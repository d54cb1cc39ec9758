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
    let why = format!("{name} is needed on PATH ({install})");
    assert!(
        std::env::var_os("SKR8TR_REQUIRE_EXTERNAL").is_none(),
        "{test}: {why}"
    );
    eprintln!("skipped {test}: {why}");
    None
}
