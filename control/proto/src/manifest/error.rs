//! The errors a manifest can have: [`ManifestErrorKind`] says what is wrong, [`ManifestError`]
//! adds where (file, line, column), [`ManifestErrors`] holds every error of one file. While a
//! file is read, every stage (lexer, syntax, values, blocks, parser) collects `Located` errors:
//! a kind at a line and column, the file name added at the end.
//!
//! Messages are written for the operator reading `skr8tr check` output: they name the key, the
//! value found and what was expected. They never contain a secret's value (a bad secret *value*
//! cannot exist: any text is a valid secret). Lines and columns are 1-based; columns count
//! characters, not bytes.

use std::fmt;

use crate::name::NameError;
use crate::route::RouteError;

/// An error at a line and column of the file being read (the file name is added at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Located {
    pub line: u32,
    pub col: u32,
    pub kind: ManifestErrorKind,
}

impl Located {
    pub fn new(line: u32, col: u32, kind: ManifestErrorKind) -> Self {
        Self { line, col, kind }
    }
}

/// Every error found in one manifest file, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestErrors {
    pub errors: Vec<ManifestError>,
}

impl ManifestErrors {
    /// The errors collected while reading `file`, in source order, each once.
    pub(super) fn of_file(file: &str, mut located: Vec<Located>) -> Self {
        located.sort_by_key(|e| (e.line, e.col));
        located.dedup();
        let errors = located
            .into_iter()
            .map(|e| ManifestError {
                file: file.to_owned(),
                line: e.line,
                column: e.col,
                kind: e.kind,
            })
            .collect();
        Self { errors }
    }
}

impl fmt::Display for ManifestErrors {
    /// One error per line, `file:line:col: message`, without a trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestErrors {}

/// One error with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The name the caller gave the file (usually its path as typed).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based character column of the offending token.
    pub column: u32,
    pub kind: ManifestErrorKind,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.kind
        )
    }
}

impl std::error::Error for ManifestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

/// How a size value (`ram`, `memory`) is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeProblem {
    #[error("a size needs a unit: b, kb, mb, gb or tb (like `512mb`)")]
    MissingUnit,
    #[error("unknown unit `{unit}`; expected b, kb, mb, gb or tb")]
    UnknownUnit { unit: String },
    #[error("expected a whole number followed by a unit, like `512mb`")]
    NotANumber,
    #[error("it does not fit in 64 bits")]
    Overflow,
}

/// What went wrong, with the pieces of the message as fields.
///
/// A [`NameError`] is shown inside the message (not as a `source`) because each error is printed
/// on one line, `file:line:col: message`, and the reason is what the operator needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestErrorKind {
    // ── syntax ──────────────────────────────────────────────────────────────────────────────
    #[error("unterminated string: the `{quote}` opened here is never closed on this line")]
    UnterminatedQuote { quote: char },
    #[error("`\\` at the end of a line escapes nothing (a value cannot continue on the next line)")]
    DanglingBackslash,
    #[error("the `{block}` block opened on line {opened_at_line} is never closed: missing `}}`")]
    UnterminatedBlock { block: String, opened_at_line: u32 },
    #[error("unexpected `}}`: there is no open block to close")]
    UnexpectedCloseBrace,
    #[error("unexpected `{{`: a block must follow a key, like `health {{`")]
    UnexpectedOpenBrace,
    #[error(
        "inconsistent indentation: this line mixes tabs and spaces differently from the line that opened the block"
    )]
    InconsistentIndentation,

    // ── structure ───────────────────────────────────────────────────────────────────────────
    #[error("no app in this file: expected `app NAME`")]
    NoApp,
    #[error("`{key}` appears before any `app NAME` line")]
    KeyBeforeApp { key: String },
    #[error("`{key}` is outside app `{app}`, whose block is already closed")]
    KeyAfterApp { key: String, app: String },
    #[error("`app` cannot appear inside another block")]
    NestedApp,
    #[error("invalid app name: {0}")]
    InvalidName(NameError),
    #[error("app `{name}` is defined twice (first on line {first_line})")]
    DuplicateApp { name: String, first_line: u32 },
    #[error("unknown key `{key}` in {context}{}", did_you_mean(suggestion.as_deref()))]
    UnknownKey {
        key: String,
        context: String,
        suggestion: Option<String>,
    },
    #[error("`{key}` belongs in a `{block}` block")]
    KeyOutsideBlock { key: String, block: String },
    #[error("`{key}` belongs at app level, not in the `{block}` block")]
    AppKeyInBlock { key: String, block: String },
    #[error("`{key}` is given twice (first on line {first_line})")]
    DuplicateKey { key: String, first_line: u32 },
    #[error("`{key}` does not take a block")]
    UnexpectedBlock { key: String },
    #[error(
        "`health` takes either a one-line check like `health GET /healthz 200` or a block, not both"
    )]
    CheckAndBlock,
    #[error("`{key}` takes a block (`{key} {{ … }}`), found `{found}`")]
    ExpectedBlock { key: String, found: String },

    // ── values ──────────────────────────────────────────────────────────────────────────────
    #[error("`{key}` needs a value: {expected}")]
    MissingValue { key: String, expected: String },
    #[error("`{key}` takes one value, found {found}{}", hint_suffix(hint))]
    TooManyValues {
        key: String,
        found: usize,
        hint: &'static str,
    },
    #[error("`{key}`: expected {expected}, found `{value}`")]
    InvalidValue {
        key: String,
        value: String,
        expected: String,
    },
    #[error("`{key}` cannot be empty")]
    EmptyValue { key: String },
    #[error("`{key}`: expected a duration with a unit: ms, s, m or h, found `{value}`")]
    ExpectedDuration { key: String, value: String },
    #[error("`{key}`: invalid size `{value}`: {problem}")]
    InvalidSize {
        key: String,
        value: String,
        problem: SizeProblem,
    },
    #[error("`{key}` must be between {min} and {max}, found `{value}`")]
    OutOfRange {
        key: String,
        value: String,
        min: String,
        max: String,
    },

    #[error("`{key}` takes no value, found `{value}`")]
    FlagWithValue { key: String, value: String },

    // ── routes ──────────────────────────────────────────────────────────────────────────────
    #[error("invalid route `{value}`: {problem}")]
    InvalidRoute { value: String, problem: RouteError },
    #[error("an app's route names no `service`: the app itself is the service")]
    ServiceInAppRoute,
    #[error("route `{target}` is given twice (first on line {first_line})")]
    DuplicateRoute { target: String, first_line: u32 },
    #[error("route `{target}` names no service: add it after the route or as `service NAME`")]
    RouteWithoutService { target: String },
    #[error("route `{target}` names its service twice (after the route and as `service`)")]
    RouteServiceTwice { target: String },
    #[error("invalid service name: {0}")]
    InvalidServiceName(NameError),
    #[error("`{key}` is not a routes-file statement: expected `route [HOST]/PREFIX SERVICE` or `/PREFIX SERVICE`{}", did_you_mean(suggestion.as_deref()))]
    NotARoute {
        key: String,
        suggestion: Option<String>,
    },

    // ── schedules ───────────────────────────────────────────────────────────────────────────
    #[error("invalid schedule `{value}`: {problem} (expected a cron pattern, like `*/5 * * * *`)")]
    InvalidSchedule { value: String, problem: String },
    #[error("`schedule` is for `type job` apps (this one is `{kind}`)")]
    ScheduleNotJob { kind: String },
    #[error("`timezone` goes with a `schedule`")]
    TimezoneWithoutSchedule,
    #[error("unknown time zone `{value}`: expected an IANA name, like `UTC` or `Europe/Berlin`")]
    UnknownTimezone { value: String },

    // ── env and secret ──────────────────────────────────────────────────────────────────────
    #[error(
        "invalid variable name `{key}` in `{block}`: expected letters, digits and `_`, not starting with a digit"
    )]
    InvalidEnvKey { key: String, block: String },
    #[error("`{key}` is set by skr8tr itself and cannot be given in `{block}`")]
    ReservedEnvKey { key: String, block: String },
    #[error("`{key}` is set twice in `{block}` (first on line {first_line})")]
    DuplicateVar {
        key: String,
        block: String,
        first_line: u32,
    },
    #[error("`{key}` is in both `env` and `secret` (also on line {other_line})")]
    EnvAndSecret { key: String, other_line: u32 },

    // ── whole-block and whole-app rules ─────────────────────────────────────────────────────
    #[error("the `{block}` block needs {needs}")]
    MissingRequired { block: String, needs: String },
    #[error(
        "app `{app}` has nothing to run: add `exec PATH`, `build {{ out PATH }}`, `serve {{ static DIR }}` or, with `type vm`, a `vm` block"
    )]
    NothingToRun { app: String },
    #[error("app `{app}` has `type vm` but no `vm` block")]
    VmWithoutBlock { app: String },
    #[error("a `vm` block needs `type vm` (this app is `{kind}`)")]
    VmBlockWithoutType { kind: String },
    #[error(
        "an app with a `serve` block runs skr8tr's static server, so it cannot also have `{key}`"
    )]
    ServeConflict { key: String },
    #[error("a `type vm` app runs its `vm` block, so it cannot also have `{key}`")]
    VmConflict { key: String },
    #[error("`check tcp` needs the app to have a `port`")]
    TcpCheckWithoutPort,
    #[error("`timeout` ({timeout}{}) must be shorter than `interval` ({interval})", if *default_timeout { ", the default" } else { "" })]
    TimeoutNotBelowInterval {
        timeout: String,
        interval: String,
        default_timeout: bool,
    },
    #[error("`max` ({max}) must be at least `min` ({min})")]
    MaxBelowMin { min: u32, max: u32 },
    #[error("`cpu-below` ({below}%) must be lower than `cpu-above` ({above}%)")]
    CpuBelowNotBelowAbove { below: u8, above: u8 },
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!("; did you mean `{s}`?"))
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    }
}
