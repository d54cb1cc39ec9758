//! The [`Checker`]: collects located errors and reads one statement's value as a typed,
//! range-checked value (text, number, duration, size, keyword…), reporting what is wrong.
//!
//! Every reader returns `None` after reporting an error, so callers simply skip the value and go
//! on: all errors of a file are reported, none twice.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::error::{Located, ManifestErrorKind};
use super::limits;
use super::model::ByteSize;
use super::suggest;
use super::syntax::{Stmt, Word};
use super::units::{self, NumberError};

/// What a key's single value looks like: drives the "needs a value" and "one value" messages.
#[derive(Debug, Clone)]
pub(super) enum Shape {
    /// Free text, described (`"a path, like `/usr/bin/api`"`).
    Text(&'static str),
    /// A whole number in a range.
    Number(RangeInclusive<u64>),
    Duration,
    Size,
    /// One of a fixed list of words, described.
    Keyword(&'static str),
}

impl Shape {
    fn expected(&self) -> String {
        match self {
            Self::Text(what) | Self::Keyword(what) => (*what).to_owned(),
            Self::Number(r) => format!("a whole number from {} to {}", r.start(), r.end()),
            Self::Duration => "a duration with a unit, like `10s` or `500ms`".to_owned(),
            Self::Size => "a size with a unit, like `512mb` or `4gb`".to_owned(),
        }
    }

    fn too_many_hint(&self) -> &'static str {
        match self {
            Self::Text(_) => "quote the value if it contains spaces",
            Self::Duration => "write the number and its unit together, like `10s`",
            Self::Size => "write the number and its unit together, like `16gb`",
            Self::Number(_) | Self::Keyword(_) => "",
        }
    }
}

/// Where a statement is, for [`Checker::unknown_key`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Context<'a> {
    /// At app level, in the app of this name.
    App(&'a str),
    /// In the block of this name, whose own keys are given.
    Block(&'a str, &'a [&'a str]),
}

/// Keys accepted at app level (block names included).
pub(super) const APP_KEYS: &[&str] = &[
    "exec", "bin", "args", "type", "port", "replicas", "ram", "cpu", "cpus", "gpu", "restart",
    "drain", "health", "scale", "rollout", "env", "secret", "volume", "build", "serve", "vm",
    "route", "schedule", "timezone",
];

/// Keys of each sub-block with fixed keys.
pub(super) const BLOCK_KEYS: &[(&str, &[&str])] = &[
    ("health", &["check", "interval", "timeout", "retries"]),
    (
        "scale",
        &["min", "max", "cpu-above", "cpu-below", "cooldown"],
    ),
    (
        "rollout",
        &["settle", "healthy-deadline", "auto-revert", "canary"],
    ),
    ("volume", &["path", "env"]),
    ("build", &["run", "out"]),
    ("serve", &["static", "port", "spa", "cache"]),
    (
        "route",
        &[
            "service",
            "strip-prefix",
            "max-body",
            "timeout",
            "rate",
            "https-only",
        ],
    ),
    (
        "vm",
        &[
            "hypervisor",
            "kernel",
            "initrd",
            "rootfs",
            "vcpus",
            "memory",
            "net",
            "args",
        ],
    ),
];

/// The block a key that is not an app key belongs to.
fn owning_block(key: &str) -> Option<&'static str> {
    if APP_KEYS.contains(&key) {
        return None;
    }
    BLOCK_KEYS
        .iter()
        .find(|(_, keys)| keys.contains(&key))
        .map(|&(block, _)| block)
}

/// The first line (and column) each key of one block was seen on, to report duplicates.
#[derive(Debug, Default)]
pub(super) struct Seen(HashMap<&'static str, (u32, u32)>);

impl Seen {
    /// Where `slot` was first given, if it was.
    pub fn get(&self, slot: &str) -> Option<(u32, u32)> {
        self.0.get(slot).copied()
    }

    pub fn has(&self, slot: &str) -> bool {
        self.0.contains_key(slot)
    }
}

/// Collects errors while the validator walks the statement tree.
#[derive(Debug)]
pub(super) struct Checker<'e> {
    pub errors: &'e mut Vec<Located>,
}

impl Checker<'_> {
    pub fn error(&mut self, line: u32, col: u32, kind: ManifestErrorKind) {
        self.errors.push(Located::new(line, col, kind));
    }

    pub fn at(&mut self, word: &Word, kind: ManifestErrorKind) {
        self.error(word.line, word.col, kind);
    }

    /// How many errors so far (to tell whether a part added any).
    pub fn count(&self) -> usize {
        self.errors.len()
    }

    /// Records `stmt` under `slot`; reports a duplicate (and returns `false`) if it was seen.
    pub fn once(&mut self, seen: &mut Seen, slot: &'static str, stmt: &Stmt) -> bool {
        if let Some((first_line, _)) = seen.get(slot) {
            let kind = ManifestErrorKind::DuplicateKey {
                key: stmt.key.text.clone(),
                first_line,
            };
            self.at(&stmt.key, kind);
            return false;
        }
        seen.0.insert(slot, (stmt.key.line, stmt.key.col));
        true
    }

    /// Reports a block on a key that takes none; `true` when there is none.
    pub fn no_block(&mut self, stmt: &Stmt) -> bool {
        match &stmt.block {
            Some(block) => {
                let kind = ManifestErrorKind::UnexpectedBlock {
                    key: stmt.key.text.clone(),
                };
                self.error(block.line, block.col, kind);
                false
            }
            None => true,
        }
    }

    /// Reports `key` as unknown where it is, with the most helpful message.
    pub fn unknown_key(&mut self, key: &Word, context: Context<'_>) {
        let text = key.text.as_str();
        let kind = if text == "app" {
            ManifestErrorKind::NestedApp
        } else {
            match context {
                Context::App(app) => match owning_block(text) {
                    Some(block) => ManifestErrorKind::KeyOutsideBlock {
                        key: text.to_owned(),
                        block: block.to_owned(),
                    },
                    None => ManifestErrorKind::UnknownKey {
                        key: text.to_owned(),
                        context: format!("app `{app}`"),
                        suggestion: suggest::nearest(text, APP_KEYS).map(str::to_owned),
                    },
                },
                Context::Block(block, keys) => {
                    if APP_KEYS.contains(&text) {
                        ManifestErrorKind::AppKeyInBlock {
                            key: text.to_owned(),
                            block: block.to_owned(),
                        }
                    } else if let Some(owner) = owning_block(text) {
                        ManifestErrorKind::KeyOutsideBlock {
                            key: text.to_owned(),
                            block: owner.to_owned(),
                        }
                    } else {
                        ManifestErrorKind::UnknownKey {
                            key: text.to_owned(),
                            context: format!("the `{block}` block"),
                            suggestion: suggest::nearest(text, keys).map(str::to_owned),
                        }
                    }
                }
            }
        };
        self.at(key, kind);
    }

    /// The one value of `stmt` (reports a missing value, several values or a block).
    pub fn single<'s>(&mut self, stmt: &'s Stmt, shape: &Shape) -> Option<&'s Word> {
        if !self.no_block(stmt) {
            return None;
        }
        match stmt.values.as_slice() {
            [] => {
                let kind = ManifestErrorKind::MissingValue {
                    key: stmt.key.text.clone(),
                    expected: shape.expected(),
                };
                self.at(&stmt.key, kind);
                None
            }
            [value] => Some(value),
            [_, extra, ..] => {
                let kind = ManifestErrorKind::TooManyValues {
                    key: stmt.key.text.clone(),
                    found: stmt.values.len(),
                    hint: shape.too_many_hint(),
                };
                self.at(extra, kind);
                None
            }
        }
    }

    /// A key that takes no value (`strip-prefix`): reports a value or a block.
    pub fn flag(&mut self, stmt: &Stmt) -> bool {
        if !self.no_block(stmt) {
            return false;
        }
        if let Some(word) = stmt.values.first() {
            let kind = ManifestErrorKind::FlagWithValue {
                key: stmt.key.text.clone(),
                value: word.text.clone(),
            };
            self.at(word, kind);
            return false;
        }
        true
    }

    /// One non-empty text value.
    pub fn text(&mut self, stmt: &Stmt, what: &'static str) -> Option<String> {
        let word = self.single(stmt, &Shape::Text(what))?;
        if word.text.is_empty() {
            self.at(
                word,
                ManifestErrorKind::EmptyValue {
                    key: stmt.key.text.clone(),
                },
            );
            return None;
        }
        Some(word.text.clone())
    }

    /// One absolute path.
    pub fn abs_path(&mut self, stmt: &Stmt) -> Option<String> {
        let what = "an absolute path, like `/var/lib/app`";
        let word = self.single(stmt, &Shape::Text(what))?;
        if !word.text.starts_with('/') {
            self.invalid(&stmt.key.text, word, what);
            return None;
        }
        Some(word.text.clone())
    }

    /// Reports `word` as an invalid value of `key`.
    pub fn invalid(&mut self, key: &str, word: &Word, expected: impl Into<String>) {
        let kind = ManifestErrorKind::InvalidValue {
            key: key.to_owned(),
            value: word.text.clone(),
            expected: expected.into(),
        };
        self.at(word, kind);
    }

    /// Reports `word` as out of `min..=max` (already formatted).
    pub fn out_of_range(&mut self, key: &str, word: &Word, min: String, max: String) {
        let kind = ManifestErrorKind::OutOfRange {
            key: key.to_owned(),
            value: word.text.clone(),
            min,
            max,
        };
        self.at(word, kind);
    }

    /// One whole number in `range`.
    pub fn number(&mut self, stmt: &Stmt, range: RangeInclusive<u64>) -> Option<u64> {
        let word = self.single(stmt, &Shape::Number(range.clone()))?;
        self.number_word(&stmt.key.text, word, range)
    }

    /// `word` as a whole number in `range`.
    pub fn number_word(
        &mut self,
        key: &str,
        word: &Word,
        range: RangeInclusive<u64>,
    ) -> Option<u64> {
        match units::parse_number(&word.text) {
            Ok(n) if range.contains(&n) => Some(n),
            Ok(_) | Err(NumberError::Overflow) => {
                self.out_of_range(
                    key,
                    word,
                    range.start().to_string(),
                    range.end().to_string(),
                );
                None
            }
            Err(NumberError::Invalid) => {
                self.invalid(key, word, Shape::Number(range).expected());
                None
            }
        }
    }

    /// One whole number in `range` that fits a `u32` (every such range does).
    pub fn number_u32(&mut self, stmt: &Stmt, range: RangeInclusive<u64>) -> Option<u32> {
        self.number(stmt, range).and_then(|n| u32::try_from(n).ok())
    }

    /// One duration in `range_ms` (milliseconds).
    pub fn duration(&mut self, stmt: &Stmt, range_ms: RangeInclusive<u64>) -> Option<Duration> {
        let word = self.single(stmt, &Shape::Duration)?;
        let key = &stmt.key.text;
        match units::parse_duration_ms(&word.text) {
            Ok(ms) if range_ms.contains(&ms) => Some(Duration::from_millis(ms)),
            Ok(_) | Err(NumberError::Overflow) => {
                let min = units::format_duration_ms(*range_ms.start());
                self.out_of_range(key, word, min, units::format_duration_ms(*range_ms.end()));
                None
            }
            Err(NumberError::Invalid) => {
                let kind = ManifestErrorKind::ExpectedDuration {
                    key: key.clone(),
                    value: word.text.clone(),
                };
                self.at(word, kind);
                None
            }
        }
    }

    /// One size in `range` (bytes).
    pub fn size(&mut self, stmt: &Stmt, range: RangeInclusive<u64>) -> Option<ByteSize> {
        let word = self.single(stmt, &Shape::Size)?;
        let key = &stmt.key.text;
        match units::parse_size(&word.text) {
            Ok(bytes) if range.contains(&bytes) => Some(ByteSize(bytes)),
            Ok(_) => {
                let (min, max) = (
                    units::format_size(*range.start()),
                    units::format_size(*range.end()),
                );
                self.out_of_range(key, word, min, max);
                None
            }
            Err(problem) => {
                let kind = ManifestErrorKind::InvalidSize {
                    key: key.clone(),
                    value: word.text.clone(),
                    problem,
                };
                self.at(word, kind);
                None
            }
        }
    }

    /// One percentage (`80` or `80%`) in [`limits::PERCENT`].
    pub fn percent(&mut self, stmt: &Stmt) -> Option<u8> {
        let range = limits::PERCENT;
        let word = self.single(stmt, &Shape::Number(range.clone()))?;
        match units::parse_percent(&word.text) {
            Ok(n) if range.contains(&n) => u8::try_from(n).ok(),
            Ok(_) | Err(NumberError::Overflow) => {
                let (min, max) = (format!("{}%", range.start()), format!("{}%", range.end()));
                self.out_of_range(&stmt.key.text, word, min, max);
                None
            }
            Err(NumberError::Invalid) => {
                self.invalid(
                    &stmt.key.text,
                    word,
                    "a percentage from 1 to 100, like `80` or `80%`",
                );
                None
            }
        }
    }

    /// One of `choices` (`expected` describes them all).
    pub fn keyword<T: Copy>(
        &mut self,
        stmt: &Stmt,
        choices: &[(&str, T)],
        expected: &'static str,
    ) -> Option<T> {
        let word = self.single(stmt, &Shape::Keyword(expected))?;
        let found = choices
            .iter()
            .find(|(name, _)| *name == word.text)
            .map(|&(_, value)| value);
        if found.is_none() {
            self.invalid(&stmt.key.text, word, expected);
        }
        found
    }
}
