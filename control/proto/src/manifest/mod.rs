//! The `.skr8tr` manifest language (SPEC §4): [`parse()`] text into a validated [`Manifest`],
//! [`print()`] a manifest back in normalised form; [`print_app`] and [`parse_app`] do the same for
//! the single-app text in which one app spec travels and is stored; [`parse_routes`] reads an
//! edge's routes file, the same language with `route` statements at the top.
//!
//! ```text
//! text ─lexer─▶ tokens ─syntax─▶ RawManifest ─parser + blocks─▶ Manifest (typed, defaults applied)
//!                                                                   │
//!                                   normalised text ◀──printer──────┘   parse(print(m)) == m
//! ```
//! - `lexer`: shell-like words, quotes, escapes, `#` comments, `{ } ;` (positions in characters);
//! - `syntax`: statements and blocks (braces or indentation), unbalanced braces;
//! - `parser`: apps and app keys, cross-key rules; `blocks`: `health`, `scale`, `env`, `route`…;
//! - `routes_file`: a routes file's statements (`route …`, `/PREFIX SERVICE`);
//! - `values`, `units`, `limits`, `suggest`: typed values, their ranges and "did you mean";
//! - `model`: the typed manifest and its defaults; `error`: what can be wrong, and where.
//!
//! Imports follow the pipeline: a module uses only modules before it (`parser` uses `blocks`,
//! `blocks` uses `values`, `values` uses `syntax`, `syntax` uses `lexer`) and the leaves `model`,
//! `error`, `units`, `limits`, `suggest`; no module imports this one, which only re-exports.
//!
//! Errors carry file, line and column; all errors of a file are reported at once, in source
//! order. The parser never panics, whatever the input; no error message contains a secret.

mod blocks;
mod error;
mod lexer;
mod limits;
mod model;
mod parser;
mod printer;
mod routes_file;
mod suggest;
mod syntax;
mod units;
mod values;

pub use error::{ManifestError, ManifestErrorKind, ManifestErrors, SizeProblem};
pub use model::*;
pub use printer::PrintOptions;

/// Parses and validates the text of one manifest file.
///
/// `file` is the name used in error messages (usually the path as the operator typed it).
///
/// # Errors
/// Every error of the file, in source order.
pub fn parse(file: &str, text: &str) -> Result<Manifest, ManifestErrors> {
    parser::parse(file, text)
}

/// Parses and validates an edge's routes file (SPEC §7.1): `route [HOST]/PREFIX SERVICE`
/// statements, one-line or with a block of the keys an app's `route` takes, and the first
/// format's `/PREFIX SERVICE` lines. `file` names it in errors.
///
/// # Errors
/// Every error of the file, in source order.
pub fn parse_routes(
    file: &str,
    text: &str,
) -> Result<Vec<crate::route::ServiceRoute>, ManifestErrors> {
    routes_file::parse(file, text)
}

/// Writes `manifest` in normalised form: every field explicit, fixed key order, brace blocks.
#[must_use]
pub fn print(manifest: &Manifest, options: &PrintOptions) -> String {
    printer::print(manifest, options)
}

/// `app` as the normalised text of a single-app manifest, secrets included: the one form in
/// which an app spec travels (LAUNCH) and is kept on disk (the Conductor's store, a node's
/// replica records). Never log it.
#[must_use]
pub fn print_app(app: &App) -> String {
    let manifest = Manifest {
        apps: vec![app.clone()],
    };
    print(
        &manifest,
        &PrintOptions {
            redact_secrets: false,
        },
    )
}

/// Why a text is not a single-app manifest ([`parse_app`]).
#[derive(Debug, thiserror::Error)]
pub enum SingleAppError {
    #[error(transparent)]
    Manifest(#[from] ManifestErrors),
    #[error("expected exactly one app, found {count}")]
    Count { count: usize },
}

/// Parses the text of a manifest that must hold exactly one app: the inverse of
/// [`print_app`] (`parse_app(f, &print_app(a)) == Ok(a)`).
///
/// # Errors
/// The manifest's errors, or [`SingleAppError::Count`] when it holds no app or several.
pub fn parse_app(file: &str, text: &str) -> Result<App, SingleAppError> {
    let manifest = parse(file, text)?;
    let count = manifest.apps.len();
    let mut apps = manifest.apps.into_iter();
    match (apps.next(), count) {
        (Some(app), 1) => Ok(app),
        _ => Err(SingleAppError::Count { count }),
    }
}

#[cfg(test)]
pub(crate) mod strategy;
#[cfg(test)]
mod tests;
