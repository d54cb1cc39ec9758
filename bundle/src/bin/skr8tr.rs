//! The `skr8tr` operator CLI and `skr8tr dev`; the logic lives in `skr8tr_bundle::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match skr8tr_bundle::cli::run(std::env::args_os()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("skr8tr: {err:#}");
            ExitCode::FAILURE
        }
    }
}
