//! The `.skr8tr` manifest language (SPEC §4): [`parse()`] text into a validated [`Manifest`],
//! [`print()`] a manifest back in normalised form.
//!
//! ```text
//! text ─lexer─▶ tokens ─syntax─▶ RawManifest ─parser + blocks─▶ Manifest (typed, defaults applied)
//!                                                                   │
//!                                   normalised text ◀──printer──────┘   parse(print(m)) == m
//! ```
//! - `lexer`: shell-like words, quotes, escapes, `#` comments, `{ } ;` (positions in characters);
//! - `syntax`: statements and blocks (braces or indentation), unbalanced braces;
//! - `parser`: apps and app keys, cross-key rules; `blocks`: `health`, `scale`, `env`, …;
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

/// Writes `manifest` in normalised form: every field explicit, fixed key order, brace blocks.
#[must_use]
pub fn print(manifest: &Manifest, options: &PrintOptions) -> String {
    printer::print(manifest, options)
}

#[cfg(test)]
pub(crate) mod strategy;
#[cfg(test)]
mod tests;
