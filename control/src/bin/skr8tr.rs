//! The `skr8tr` operator CLI; the logic lives in `skr8tr_control::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match skr8tr_control::cli::run(std::env::args_os()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("skr8tr: {err:#}");
            ExitCode::FAILURE
        }
    }
}
