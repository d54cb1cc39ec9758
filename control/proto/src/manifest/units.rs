//! Reading and writing the manifest's numbers with units: whole numbers, durations (`500ms`,
//! `10s`, `5m`, `1h`), sizes (`512kb`, `256MB`, binary, case-insensitive), CPU cores (`0.5`)
//! and percentages (`80%`).
//!
//! Pure functions of a string; no ranges here (the parser checks them against `limits`). Writing
//! always picks the largest unit that is exact, so that reading it back gives the same value.

use std::time::Duration;

use super::error::SizeProblem;

/// Why a number could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumberError {
    /// Not of the expected shape at all.
    Invalid,
    /// The right shape, but too large for any range.
    Overflow,
}

/// A decimal whole number: ASCII digits only, no sign.
pub(super) fn parse_number(s: &str) -> Result<u64, NumberError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumberError::Invalid);
    }
    s.parse().map_err(|_| NumberError::Overflow)
}

const DURATION_UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// A duration `N(ms|s|m|h)`, in milliseconds.
pub(super) fn parse_duration_ms(s: &str) -> Result<u64, NumberError> {
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let factor = DURATION_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|&(_, factor)| factor)
        .ok_or(NumberError::Invalid)?;
    parse_number(digits)?
        .checked_mul(factor)
        .ok_or(NumberError::Overflow)
}

/// Writes milliseconds in the largest exact unit (`0s` for zero).
pub(super) fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    for (name, factor) in DURATION_UNITS {
        if ms.is_multiple_of(factor) {
            return format!("{}{name}", ms / factor);
        }
    }
    format!("{ms}ms")
}

/// Writes a [`Duration`] (whole milliseconds; anything finer is dropped).
pub(super) fn format_duration(d: Duration) -> String {
    format_duration_ms(duration_ms(d))
}

/// A duration in whole milliseconds, saturating.
pub(super) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Size units, largest first, with every accepted spelling (compared case-insensitively).
const SIZE_UNITS: [(&[&str], u32, &str); 5] = [
    (&["t", "tb", "tib"], 40, "tb"),
    (&["g", "gb", "gib"], 30, "gb"),
    (&["m", "mb", "mib"], 20, "mb"),
    (&["k", "kb", "kib"], 10, "kb"),
    (&["b"], 0, "b"),
];

/// A size `N unit` in bytes.
pub(super) fn parse_size(s: &str) -> Result<u64, SizeProblem> {
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err(SizeProblem::NotANumber);
    }
    if unit.is_empty() {
        return Err(SizeProblem::MissingUnit);
    }
    let lower = unit.to_ascii_lowercase();
    let shift = SIZE_UNITS
        .iter()
        .find(|(names, _, _)| names.contains(&lower.as_str()))
        .map(|&(_, shift, _)| shift)
        .ok_or_else(|| SizeProblem::UnknownUnit {
            unit: unit.to_owned(),
        })?;
    let n = parse_number(digits).map_err(|_| SizeProblem::Overflow)?;
    n.checked_mul(1_u64 << shift).ok_or(SizeProblem::Overflow)
}

/// Writes bytes in the largest exact unit (`0b` for zero).
pub(super) fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0b".to_owned();
    }
    for (_, shift, name) in SIZE_UNITS {
        if bytes.trailing_zeros() >= shift {
            return format!("{}{name}", bytes >> shift);
        }
    }
    format!("{bytes}b")
}

/// Cores with at most three decimals (`2`, `0.5`, `1.125`), in millicores.
pub(super) fn parse_cores(s: &str) -> Result<u64, NumberError> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if s.ends_with('.')
        || frac.len() > 3
        || (!frac.is_empty() && !frac.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(NumberError::Invalid);
    }
    let whole = parse_number(whole)?;
    let frac = if frac.is_empty() {
        0
    } else {
        parse_number(&format!("{frac:0<3}"))?
    };
    whole
        .checked_mul(1000)
        .and_then(|w| w.checked_add(frac))
        .ok_or(NumberError::Overflow)
}

/// Writes millicores as cores: `2`, `0.5`, `1.125`.
pub(super) fn format_cores(millicores: u32) -> String {
    let (whole, frac) = (millicores / 1000, millicores % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:03}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A percentage `80` or `80%`.
pub(super) fn parse_percent(s: &str) -> Result<u64, NumberError> {
    parse_number(s.strip_suffix('%').unwrap_or(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_decimal() {
        assert_eq!(parse_number("0"), Ok(0));
        assert_eq!(parse_number("0080"), Ok(80));
        for bad in ["", "-1", "+1", "1.0", " 1", "1e3", "٣"] {
            assert_eq!(parse_number(bad), Err(NumberError::Invalid), "{bad}");
        }
        assert_eq!(
            parse_number("18446744073709551616"),
            Err(NumberError::Overflow)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("10s"), Ok(10_000));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        for bad in ["500", "s", "2x", "10S", "1.5s", "-1s", "10 s", "1hm", ""] {
            assert_eq!(parse_duration_ms(bad), Err(NumberError::Invalid), "{bad}");
        }
        assert_eq!(
            parse_duration_ms("99999999999999999h"),
            Err(NumberError::Overflow)
        );
        assert_eq!(
            parse_duration_ms("99999999999999999999999ms"),
            Err(NumberError::Overflow)
        );
    }

    #[test]
    fn durations_are_written_in_the_largest_exact_unit() {
        let cases = [
            (0, "0s"),
            (1, "1ms"),
            (1500, "1500ms"),
            (2000, "2s"),
            (90_000, "90s"),
            (60_000, "1m"),
            (7_200_000, "2h"),
            (5_400_000, "90m"),
        ];
        for (ms, text) in cases {
            assert_eq!(format_duration_ms(ms), text);
            assert_eq!(parse_duration_ms(text), Ok(ms));
        }
        assert_eq!(format_duration(Duration::from_micros(1500)), "1ms");
    }

    #[test]
    fn sizes_are_binary_and_case_insensitive() {
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("256mb"), Ok(256 << 20));
        assert_eq!(parse_size("4GB"), Ok(4 << 30));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("16"), Err(SizeProblem::MissingUnit));
        assert_eq!(
            parse_size("16gbs"),
            Err(SizeProblem::UnknownUnit { unit: "gbs".into() })
        );
        assert_eq!(parse_size("gb"), Err(SizeProblem::NotANumber));
        assert_eq!(
            parse_size("1.5gb"),
            Err(SizeProblem::UnknownUnit {
                unit: ".5gb".into()
            })
        );
        assert_eq!(parse_size("16777216tb"), Err(SizeProblem::Overflow));
        assert_eq!(
            parse_size("99999999999999999999b"),
            Err(SizeProblem::Overflow)
        );
        assert_eq!(parse_size("16777215tb"), Ok(16_777_215 << 40));
    }

    #[test]
    fn sizes_are_written_in_the_largest_exact_unit() {
        let cases = [
            (0, "0b"),
            (100, "100b"),
            (512 << 10, "512kb"),
            (256 << 20, "256mb"),
            (4 << 30, "4gb"),
            (1536 << 20, "1536mb"),
            (3 << 40, "3tb"),
            (1025, "1025b"),
        ];
        for (bytes, text) in cases {
            assert_eq!(format_size(bytes), text);
            assert_eq!(parse_size(text), Ok(bytes));
        }
        assert_eq!(format_size(u64::MAX), "18446744073709551615b");
    }

    #[test]
    fn cores() {
        for (text, milli) in [
            ("2", 2000),
            ("0.5", 500),
            ("1.125", 1125),
            ("0.05", 50),
            ("0.001", 1),
            ("1024", 1_024_000),
        ] {
            assert_eq!(parse_cores(text), Ok(milli), "{text}");
        }
        for bad in ["", ".5", "1.", "1.2345", "a", "-1", "1.-5", "1.+5", "1,5"] {
            assert_eq!(parse_cores(bad), Err(NumberError::Invalid), "{bad}");
        }
        for (milli, text) in [
            (2000, "2"),
            (500, "0.5"),
            (1125, "1.125"),
            (50, "0.05"),
            (1, "0.001"),
            (1_024_000, "1024"),
        ] {
            assert_eq!(format_cores(milli), text);
        }
    }

    #[test]
    fn percent() {
        assert_eq!(parse_percent("80"), Ok(80));
        assert_eq!(parse_percent("80%"), Ok(80));
        assert_eq!(parse_percent("80%%"), Err(NumberError::Invalid));
        assert_eq!(parse_percent("%"), Err(NumberError::Invalid));
    }
}
