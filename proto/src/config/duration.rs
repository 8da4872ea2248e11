//! Go duration strings (`3m0s`, `1.5h`, `500ms`): parsing and Go's canonical formatting.
//!
//! Rook's config file stores durations the way Go's `time.ParseDuration` reads them and
//! `time.Duration.String` writes them, so a file written for Rook's tester must read the same
//! here. Go allows negative durations; no duration in a run configuration can be negative, so
//! they are refused. The range stops where Go's does (an `int64` of nanoseconds, about 2562047h).

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// Nanoseconds per unit, by the unit names Go accepts (both micro signs included).
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The largest duration Go can represent.
const MAX_NANOS: u128 = i64::MAX as u128;

/// A non-negative duration written and read as a Go duration string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// Zero, written `0s`.
    pub const ZERO: GoDuration = GoDuration(Duration::ZERO);

    /// Whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        GoDuration(Duration::from_secs(secs))
    }

    /// Whole milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        GoDuration(Duration::from_millis(millis))
    }

    /// The standard-library duration.
    pub const fn as_std(self) -> Duration {
        self.0
    }

    /// Reads a Go duration string: a sequence of decimal numbers, each with an optional
    /// fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), as in `1h30m` or `1.5s`.
    /// A bare `0` is zero, as in Go. The error says what is wrong, for the caller to prefix
    /// with the field it came from.
    pub fn parse(text: &str) -> Result<Self, String> {
        let body = match text.strip_prefix(['+', '-']) {
            Some(rest) => rest,
            None => text,
        };
        let negative = text.starts_with('-');
        if body == "0" {
            return Ok(Self::ZERO);
        }
        if body.is_empty() {
            return Err(format!("{text:?} is not a duration: it is empty"));
        }
        let mut rest = body;
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let (nanos, after) = parse_term(rest).map_err(|why| format!("{text:?} {why}"))?;
            total = total
                .checked_add(nanos)
                .filter(|t| *t <= MAX_NANOS)
                .ok_or_else(|| format!("{text:?} is too long: the limit is about 2562047h"))?;
            rest = after;
        }
        if negative && total > 0 {
            return Err(format!("{text:?} is negative, and a duration cannot be"));
        }
        let secs = u64::try_from(total / 1_000_000_000)
            .map_err(|_| format!("{text:?} is too long: the limit is about 2562047h"))?;
        // The remainder of a division by 10^9 always fits in u32.
        let subsec = (total % 1_000_000_000) as u32;
        Ok(GoDuration(Duration::new(secs, subsec)))
    }
}

/// One `<number><unit>` term at the start of `text`: its length in nanoseconds and the rest.
fn parse_term(text: &str) -> Result<(u128, &str), String> {
    let whole_len = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (whole, mut rest) = text.split_at(whole_len);
    let mut fraction = "";
    if let Some(after_dot) = rest.strip_prefix('.') {
        let len = after_dot
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_dot.len());
        (fraction, rest) = after_dot.split_at(len);
    }
    if whole.is_empty() && fraction.is_empty() {
        return Err(
            "is not a duration: expected a number such as 90 or 1.5 before each unit".into(),
        );
    }
    let unit_len = rest
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_len);
    if unit.is_empty() {
        return Err(
            "has a number without a unit: expected one of ns, us, ms, s, m, h (e.g. 90s)".into(),
        );
    }
    let per_unit = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, nanos)| *nanos)
        .ok_or_else(|| format!("has unknown unit {unit:?}: expected one of ns, us, ms, s, m, h"))?;
    let too_long = || "is too long: the limit is about 2562047h".to_string();
    let mut nanos: u128 = 0;
    for digit in whole.bytes() {
        nanos = nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(digit - b'0')))
            .filter(|n| *n <= MAX_NANOS)
            .ok_or_else(too_long)?;
    }
    nanos = nanos.checked_mul(per_unit).ok_or_else(too_long)?;
    // 18 fraction digits are finer than a nanosecond of the largest unit; Go also drops the
    // precision it cannot hold, truncating toward zero.
    let kept = &fraction[..fraction.len().min(18)];
    if !kept.is_empty() {
        let mut numerator: u128 = 0;
        for digit in kept.bytes() {
            numerator = numerator * 10 + u128::from(digit - b'0');
        }
        let scale = 10u128.pow(kept.len() as u32);
        nanos = nanos
            .checked_add(numerator * per_unit / scale)
            .ok_or_else(too_long)?;
    }
    Ok((nanos, rest))
}

/// Writes `value / 10^digits` as a decimal with trailing zeros of the fraction trimmed.
fn write_decimal(f: &mut fmt::Formatter<'_>, value: u128, digits: u32) -> fmt::Result {
    let scale = 10u128.pow(digits);
    let (whole, fraction) = (value / scale, value % scale);
    write!(f, "{whole}")?;
    if fraction > 0 {
        let padded = format!("{fraction:0width$}", width = digits as usize);
        write!(f, ".{}", padded.trim_end_matches('0'))?;
    }
    Ok(())
}

impl fmt::Display for GoDuration {
    /// Go's `Duration.String`: `0s`, `750ms`, `1.5s`, `3m0s`, `1h0m0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        match nanos {
            0 => f.write_str("0s"),
            1..1_000 => write!(f, "{nanos}ns"),
            1_000..1_000_000 => write_decimal(f, nanos, 3).and_then(|()| f.write_str("\u{b5}s")),
            1_000_000..1_000_000_000 => write_decimal(f, nanos, 6).and_then(|()| f.write_str("ms")),
            _ => {
                let secs = self.0.as_secs();
                let (hours, minutes) = (secs / 3600, secs / 60 % 60);
                if hours > 0 {
                    write!(f, "{hours}h{minutes}m")?;
                } else if minutes > 0 {
                    write!(f, "{minutes}m")?;
                }
                let in_minute = u128::from(secs % 60) * 1_000_000_000 + nanos % 1_000_000_000;
                write_decimal(f, in_minute, 9)?;
                f.write_str("s")
            }
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl From<Duration> for GoDuration {
    fn from(duration: Duration) -> Self {
        GoDuration(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> GoDuration {
        GoDuration::parse(text).expect("valid duration in test")
    }

    #[test]
    fn reads_what_go_reads() {
        let cases: [(&str, u64); 14] = [
            ("3m0s", 180_000),
            ("1h", 3_600_000),
            ("90s", 90_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("1.5h", 5_400_000),
            ("0", 0),
            ("0s", 0),
            ("-0s", 0),
            ("+5s", 5_000),
            (".5s", 500),
            ("1.s", 1_000),
            ("1h0m0s", 3_600_000),
            ("2h45m", 9_900_000),
        ];
        for (text, millis) in cases {
            assert_eq!(parse(text), GoDuration::from_millis(millis), "{text}");
        }
        assert_eq!(parse("1500us").as_std(), Duration::from_micros(1500));
        assert_eq!(parse("7\u{b5}s").as_std(), Duration::from_micros(7));
        assert_eq!(parse("7\u{3bc}s").as_std(), Duration::from_micros(7));
        assert_eq!(parse("1.0000000001s").as_std(), Duration::from_secs(1));
        assert_eq!(
            parse("2562047h47m16.854775807s").as_std().as_nanos(),
            MAX_NANOS
        );
    }

    #[test]
    fn refuses_what_go_refuses_and_negatives() {
        for bad in [
            "", "-", "s", "5", "180", "3 m", "1x", "1.5", ".s", "1h-5m", "-5s", "2562048h", "1e3s",
            "3m0", "m5",
        ] {
            let err = GoDuration::parse(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        let err = GoDuration::parse("5x").expect_err("unknown unit");
        assert!(err.contains("expected one of ns, us, ms, s, m, h"), "{err}");
    }

    #[test]
    fn writes_what_go_writes() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(180), "3m0s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(10), "10ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(1500), "1.5\u{b5}s"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::from_nanos(3_600_000_000_001), "1h0m0.000000001s"),
        ];
        for (duration, text) in cases {
            assert_eq!(GoDuration(duration).to_string(), text);
        }
        let json = serde_json::to_string(&GoDuration::from_secs(30)).expect("serializes");
        assert_eq!(json, "\"30s\"");
    }

    proptest! {
        /// Formatting is exact: what is written reads back as the same duration, and writing it
        /// again gives the same text.
        #[test]
        fn format_parse_round_trip(nanos in 0u64..=i64::MAX as u64) {
            let duration = GoDuration(Duration::from_nanos(nanos));
            let text = duration.to_string();
            let back = GoDuration::parse(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!(back, duration);
            prop_assert_eq!(back.to_string(), text);
        }

        /// Arbitrary text never panics the parser.
        #[test]
        fn parse_never_panics(text in "\\PC{0,24}") {
            let _ = GoDuration::parse(&text);
        }

        /// Text shaped like durations never panics either, and what parses formats stably.
        #[test]
        fn duration_like_text_is_stable(text in "[-+]?([0-9]{0,20}(\\.[0-9]{0,20})?(ns|us|ms|s|m|h|x)?){1,4}") {
            if let Ok(duration) = GoDuration::parse(&text) {
                let again = GoDuration::parse(&duration.to_string()).map_err(TestCaseError::fail)?;
                prop_assert_eq!(again, duration);
            }
        }
    }
}
