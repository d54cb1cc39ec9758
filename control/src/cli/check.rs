//! `skr8tr check FILE…`: validates manifests without a cluster.
//!
//! For each file, the normalised form goes to stdout (secrets `<redacted>` unless
//! `--show-secrets`), or every error to stderr as `file:line:col: message`. With several files,
//! each normalised form is preceded by a `# FILE` comment line, so the output still parses.
//! Owns only reading files and reporting; the language is `skr8tr_proto::manifest`'s.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use skr8tr_proto::manifest::{self, Manifest, PrintOptions};

/// Checks every file, in order. Exit code 0 only if every file is valid.
///
/// # Errors
/// Only when stdout or stderr cannot be written; bad or unreadable files are reported on
/// stderr and make the exit code 1.
pub fn run(files: &[PathBuf], show_secrets: bool) -> anyhow::Result<ExitCode> {
    let options = PrintOptions {
        redact_secrets: !show_secrets,
    };
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let mut all_valid = true;
    let mut printed = 0_usize;
    for path in files {
        let name = path.display().to_string();
        match check_file(path, &name, &options) {
            Ok(normalised) => {
                if files.len() > 1 {
                    if printed > 0 {
                        writeln!(out).context("writing to stdout")?;
                    }
                    // A line break in a path would end the comment early.
                    let header = name.replace(['\n', '\r'], "?");
                    writeln!(out, "# {header}").context("writing to stdout")?;
                }
                out.write_all(normalised.as_bytes())
                    .context("writing to stdout")?;
                printed += 1;
            }
            Err(lines) => {
                all_valid = false;
                for line in lines {
                    writeln!(err, "{line}").context("writing to stderr")?;
                }
            }
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The normalised form of one file, or the lines to report.
fn check_file(path: &Path, name: &str, options: &PrintOptions) -> Result<String, Vec<String>> {
    load(path, name).map(|(_, m)| manifest::print(&m, options))
}

/// Reads and validates one manifest file (`name` is how errors call it): its text and the
/// parsed manifest, or every problem as a `file[:line:col]: message` line. Shared with the
/// commands that send manifests (`up`, `rollout`), which validate before sending.
pub(crate) fn load(path: &Path, name: &str) -> Result<(String, Manifest), Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| vec![format!("{name}: cannot read: {e}")])?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, col) = position(e.as_bytes(), e.utf8_error().valid_up_to());
        vec![format!(
            "{name}:{line}:{col}: the file is not valid UTF-8 text"
        )]
    })?;
    match manifest::parse(name, &text) {
        Ok(m) => Ok((text, m)),
        Err(errors) => Err(errors.errors.iter().map(ToString::to_string).collect()),
    }
}

/// The 1-based line and character column of byte `offset`, whose prefix is valid UTF-8.
fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let prefix = bytes.get(..offset).unwrap_or_default();
    let prefix = String::from_utf8_lossy(prefix);
    let line = prefix.matches('\n').count() + 1;
    let col = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::position;

    #[test]
    fn position_of_a_byte() {
        assert_eq!(position(b"", 0), (1, 1));
        assert_eq!(position(b"ab\ncd\xff", 5), (2, 3));
        assert_eq!(position(b"\xc3\xa9\n\xc3\xa9x\xff", 6), (2, 3));
    }
}
