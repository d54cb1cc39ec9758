//! Field-level reading and writing shared by every message: the datagram checks, the `|` field
//! cursor, typed field values, `,` lists and `:` entries, and the encoder.
//!
//! ```text
//! bytes ─check─▶ &str ─split_verb─▶ verb + Fields ─next/parse/rest─▶ typed values ─finish─▶ message
//! ```
//! Invariant: nothing here trusts a field before it is validated, and nothing panics. Numbers
//! are ASCII digits only (no sign, no `+`, no spaces) and range-checked; names go through
//! [`crate::name`]; IP addresses through [`std::net::IpAddr`]. Free text is only ever the last
//! field ([`Fields::rest`]), so it may contain `|`.

use std::fmt::{self, Display, Write as _};
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;

use super::error::{WireError, quote};
use super::message::MAX_DATAGRAM;
use crate::name::{AppName, NameError, NodeId, ReplicaId, ServiceName};

/// Checks the datagram as a whole: not empty, not too large, UTF-8.
pub(crate) fn check(bytes: &[u8]) -> Result<&str, WireError> {
    if bytes.is_empty() {
        return Err(WireError::Empty);
    }
    if bytes.len() > MAX_DATAGRAM {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max: MAX_DATAGRAM,
        });
    }
    std::str::from_utf8(bytes).map_err(|_| WireError::NotUtf8)
}

/// Splits the first field (the verb, or `OK`/`ERR`) off `text`.
///
/// A message that is a bare verb may end in one `\n` or `\r\n`, so that `echo LIST` works as
/// well as `echo -n LIST`; a message with fields may not (its last field would change).
pub(crate) fn split_verb(text: &str) -> (&str, Option<&str>) {
    match text.split_once('|') {
        Some((verb, rest)) => (verb, Some(rest)),
        None => {
            let bare = text
                .strip_suffix('\n')
                .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
            (bare, None)
        }
    }
}

/// Opens a request or push datagram: [`check`]ed, its verb looked up in `verbs`, and a cursor
/// over the fields after it ([`Fields::verb`] is the verb).
pub(crate) fn open<'a>(bytes: &'a [u8], verbs: &[&'static str]) -> Result<Fields<'a>, WireError> {
    let text = check(bytes)?;
    let (verb, rest) = split_verb(text);
    let verb = lookup(verbs, verb).ok_or_else(|| unknown_verb(verb))?;
    Ok(Fields::new(verb, rest))
}

/// The error for an unknown verb, quoting at most a short prefix of it.
pub(crate) fn unknown_verb(verb: &str) -> WireError {
    WireError::UnknownVerb { verb: quote(verb) }
}

/// A cursor over the `|`-separated fields after a verb.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    verb: &'static str,
    rest: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// `rest` is everything after the verb's `|`, or `None` when the verb stood alone.
    pub(crate) fn new(verb: &'static str, rest: Option<&'a str>) -> Self {
        Self { verb, rest }
    }

    pub(crate) fn verb(&self) -> &'static str {
        self.verb
    }

    /// Whether another field follows.
    pub(crate) fn has_more(&self) -> bool {
        self.rest.is_some()
    }

    /// The next field as raw text.
    pub(crate) fn next(&mut self, field: &'static str) -> Result<&'a str, WireError> {
        self.next_opt().ok_or(WireError::MissingField {
            verb: self.verb,
            field,
        })
    }

    /// The next field as raw text, or `None` at the end of the message.
    pub(crate) fn next_opt(&mut self) -> Option<&'a str> {
        let rest = self.rest.take()?;
        match rest.split_once('|') {
            Some((field, more)) => {
                self.rest = Some(more);
                Some(field)
            }
            None => Some(rest),
        }
    }

    /// Everything that is left, `|` included: the free-text last field.
    pub(crate) fn rest(&mut self, field: &'static str) -> Result<&'a str, WireError> {
        self.rest.take().ok_or(WireError::MissingField {
            verb: self.verb,
            field,
        })
    }

    /// The next field parsed as `T`.
    pub(crate) fn parse<T: FieldValue>(&mut self, field: &'static str) -> Result<T, WireError> {
        let raw = self.next(field)?;
        T::parse_field(self.verb, field, raw)
    }

    /// The next field parsed as `T`, or `None` at the end of the message.
    pub(crate) fn parse_opt<T: FieldValue>(
        &mut self,
        field: &'static str,
    ) -> Result<Option<T>, WireError> {
        self.next_opt()
            .map(|raw| T::parse_field(self.verb, field, raw))
            .transpose()
    }

    /// The next field as an unsigned integer within `range`.
    pub(crate) fn uint<T: TryFrom<u64>>(
        &mut self,
        field: &'static str,
        range: RangeInclusive<u64>,
    ) -> Result<T, WireError> {
        let raw = self.next(field)?;
        uint_in(self.verb, field, raw, range)
    }

    /// An entry count `n` followed by a `,` list of that many entries, each parsed by `entry`.
    /// When `n` is 0 the list field may be absent (the seed may end a message at the count).
    pub(crate) fn counted_list<T>(
        &mut self,
        field: &'static str,
        entry: impl FnMut(&'a str) -> Result<T, WireError>,
    ) -> Result<Vec<T>, WireError> {
        let n: usize = self.uint("n", 0..=MAX_DATAGRAM as u64)?;
        let raw = match self.next_opt() {
            Some(raw) => raw,
            None if n == 0 => "",
            None => {
                return Err(WireError::MissingField {
                    verb: self.verb,
                    field,
                });
            }
        };
        let items = list(raw, entry)?;
        if items.len() != n {
            return Err(self.bad(
                "n",
                format!("says {n} entries, the list has {}", items.len()),
            ));
        }
        Ok(items)
    }

    /// Succeeds only if every field was consumed.
    pub(crate) fn finish(self) -> Result<(), WireError> {
        match self.rest {
            Some(_) => Err(WireError::ExtraField { verb: self.verb }),
            None => Ok(()),
        }
    }

    /// A [`WireError::BadField`] for this message.
    pub(crate) fn bad(&self, field: &'static str, reason: impl Into<String>) -> WireError {
        WireError::BadField {
            verb: self.verb,
            field,
            reason: reason.into(),
        }
    }
}

/// A value that can be read from one field (or one part of a list entry).
pub(crate) trait FieldValue: Sized {
    fn parse_field(verb: &'static str, field: &'static str, raw: &str) -> Result<Self, WireError>;
}

macro_rules! name_field {
    ($($ty:ty),*) => {$(
        impl FieldValue for $ty {
            fn parse_field(verb: &'static str, field: &'static str, raw: &str) -> Result<Self, WireError> {
                <$ty>::new(raw).map_err(|source: NameError| WireError::BadName { verb, field, source })
            }
        }
    )*};
}
name_field!(AppName, ServiceName, NodeId, ReplicaId);

macro_rules! uint_field {
    ($($ty:ty),*) => {$(
        impl FieldValue for $ty {
            fn parse_field(verb: &'static str, field: &'static str, raw: &str) -> Result<Self, WireError> {
                uint_in(verb, field, raw, 0..=u64::from(<$ty>::MAX))
            }
        }
    )*};
}
uint_field!(u8, u16, u32, u64);

impl FieldValue for IpAddr {
    fn parse_field(verb: &'static str, field: &'static str, raw: &str) -> Result<Self, WireError> {
        IpAddr::from_str(raw).map_err(|_| {
            bad(
                verb,
                field,
                format!("{:?} is not an IP address", quote(raw)),
            )
        })
    }
}

/// `0` or `1`.
impl FieldValue for bool {
    fn parse_field(verb: &'static str, field: &'static str, raw: &str) -> Result<Self, WireError> {
        match raw {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(bad(
                verb,
                field,
                format!("expected 0 or 1, found {:?}", quote(raw)),
            )),
        }
    }
}

/// A [`WireError::BadField`].
pub(crate) fn bad(verb: &'static str, field: &'static str, reason: impl Into<String>) -> WireError {
    WireError::BadField {
        verb,
        field,
        reason: reason.into(),
    }
}

/// Parses ASCII digits (nothing else: no sign, no `+`, no space) into a `u64`.
pub(crate) fn uint(verb: &'static str, field: &'static str, raw: &str) -> Result<u64, WireError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            verb,
            field,
            format!("expected a whole number, found {:?}", quote(raw)),
        ));
    }
    raw.parse::<u64>()
        .map_err(|_| bad(verb, field, format!("{} is out of range", quote(raw))))
}

/// [`uint`] within `range`, converted to `T`.
pub(crate) fn uint_in<T: TryFrom<u64>>(
    verb: &'static str,
    field: &'static str,
    raw: &str,
    range: RangeInclusive<u64>,
) -> Result<T, WireError> {
    let n = uint(verb, field, raw)?;
    let out_of_range = || {
        bad(
            verb,
            field,
            format!("{n} is outside {}..={}", range.start(), range.end()),
        )
    };
    if !range.contains(&n) {
        return Err(out_of_range());
    }
    T::try_from(n).map_err(|_| out_of_range())
}

/// Splits a `,` list; the empty string is the empty list. Each entry goes through `entry`.
pub(crate) fn list<'a, T>(
    raw: &'a str,
    entry: impl FnMut(&'a str) -> Result<T, WireError>,
) -> Result<Vec<T>, WireError> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    raw.split(',').map(entry).collect()
}

/// Splits a list entry at `:` into exactly `N` parts.
pub(crate) fn parts<'a, const N: usize>(
    verb: &'static str,
    field: &'static str,
    entry: &'a str,
) -> Result<[&'a str; N], WireError> {
    let wrong = || {
        bad(
            verb,
            field,
            format!("expected {N} `:`-separated parts in {:?}", quote(entry)),
        )
    };
    let mut out = [""; N];
    let mut it = entry.split(':');
    for slot in &mut out {
        *slot = it.next().ok_or_else(wrong)?;
    }
    if it.next().is_some() {
        return Err(wrong());
    }
    Ok(out)
}

/// Splits a list entry whose middle part is an IP address (which may itself contain `:`, as
/// in `::1`): `L` parts come off the left at `:`, `R` parts off the right, and what is left in
/// the middle is the address text.
pub(crate) fn parts_around_ip<'a, const L: usize, const R: usize>(
    verb: &'static str,
    field: &'static str,
    entry: &'a str,
) -> Result<([&'a str; L], &'a str, [&'a str; R]), WireError> {
    let wrong = || {
        bad(
            verb,
            field,
            format!(
                "expected {} `:`-separated parts in {:?}",
                L + R + 1,
                quote(entry)
            ),
        )
    };
    let mut middle = entry;
    let mut left = [""; L];
    for slot in &mut left {
        let (part, more) = middle.split_once(':').ok_or_else(wrong)?;
        *slot = part;
        middle = more;
    }
    let mut right = [""; R];
    for slot in right.iter_mut().rev() {
        let (more, part) = middle.rsplit_once(':').ok_or_else(wrong)?;
        *slot = part;
        middle = more;
    }
    Ok((left, middle, right))
}

/// Parses one part of a list entry as `T`.
pub(crate) fn part<T: FieldValue>(
    verb: &'static str,
    field: &'static str,
    raw: &str,
) -> Result<T, WireError> {
    T::parse_field(verb, field, raw)
}

/// Builds a message field by field. Callers pass only values whose text cannot contain the
/// separators of the position they go into (names, numbers, keywords, validated text).
#[derive(Debug)]
pub(crate) struct Encoder(String);

impl Encoder {
    /// Starts a message with its verb (or `OK|TAG`).
    pub(crate) fn new(verb: &str) -> Self {
        Self(verb.to_owned())
    }

    /// Appends `|` and `value`.
    pub(crate) fn field(mut self, value: impl Display) -> Self {
        let _ = write!(self.0, "|{value}");
        self
    }

    /// Appends `|` and a `,` list, each entry written by `entry`.
    pub(crate) fn list<T>(
        mut self,
        items: &[T],
        mut entry: impl FnMut(&mut String, &T) -> fmt::Result,
    ) -> Self {
        self.0.push('|');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            let _ = entry(&mut self.0, item);
        }
        self
    }

    /// Appends `|n|` and the `,` list of `n` entries.
    pub(crate) fn counted_list<T>(
        self,
        items: &[T],
        entry: impl FnMut(&mut String, &T) -> fmt::Result,
    ) -> Self {
        let n = items.len();
        self.field(n).list(items, entry)
    }

    pub(crate) fn finish(self) -> String {
        self.0
    }
}

/// The entry of `table` equal to `word`, as a `'static` string for error messages.
pub(crate) fn lookup(table: &[&'static str], word: &str) -> Option<&'static str> {
    table.iter().copied().find(|known| *known == word)
}

/// The entry of `table` (labels written `OK|TAG`) whose tag is `tag`.
pub(crate) fn lookup_tag(table: &[&'static str], tag: &str) -> Option<&'static str> {
    table
        .iter()
        .copied()
        .find(|label| label.strip_prefix("OK|") == Some(tag))
}

/// Writes a `,` list entry's parts separated by `:`.
pub(crate) fn write_parts(out: &mut String, parts: &[&dyn Display]) -> fmt::Result {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        write!(out, "{part}")?;
    }
    Ok(())
}
