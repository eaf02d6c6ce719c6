//! Simulated time: integer nanoseconds, and durations written with units in model files.
//!
//! The clock never holds a float. A sampled `f64` becomes a [`SimDuration`] only through
//! [`SimDuration::from_nanos_f64`], which rounds to the nearest nanosecond.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in simulated time, in nanoseconds since the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(pub u64);

/// A length of simulated time, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimDuration(pub u64);

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: f64 = 1e9;

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// The largest representable time, used as "never".
    pub const NEVER: SimTime = SimTime(u64::MAX);

    /// This time plus a duration, saturating at [`SimTime::NEVER`].
    #[inline]
    pub fn after(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
    /// Time elapsed since `earlier` (zero if `earlier` is later).
    #[inline]
    pub fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
    /// Seconds since the start, as a float (for reports only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC
    }
}

impl SimDuration {
    /// Zero length.
    pub const ZERO: SimDuration = SimDuration(0);

    /// Rounds a non-negative, finite number of nanoseconds to the nearest nanosecond.
    /// Negative or NaN values become zero; huge values saturate.
    #[inline(always)]
    pub fn from_nanos_f64(ns: f64) -> SimDuration {
        if (0.0..4.0e18).contains(&ns) {
            // The common case, in one conversion instruction instead of a saturating cast.
            // SAFETY: `ns + 0.5` is finite, non-negative and below i64::MAX, so the
            // truncation is defined, and equal to what `as u64` gives.
            SimDuration(unsafe { (ns + 0.5).to_int_unchecked::<i64>() } as u64)
        } else if ns >= 0.0 {
            // `as` saturates for values above u64::MAX.
            SimDuration((ns + 0.5) as u64)
        } else {
            SimDuration(0)
        }
    }
    /// A duration of whole seconds given as a float.
    pub fn from_secs_f64(s: f64) -> SimDuration {
        Self::from_nanos_f64(s * NANOS_PER_SEC)
    }
    /// Length in seconds (for reports only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC
    }
    /// Length in milliseconds (for reports only).
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

/// The units a duration may be written in, with their length in nanoseconds.
pub const UNITS: [(&str, f64); 7] = [
    ("ns", 1.0),
    ("us", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
    ("d", 86400e9),
];

/// Parses `"250us"`, `"5ms"`, `"1.5s"`, `"10m"`, `"2h"` into nanoseconds (as a float, so that
/// a distribution parameter such as a mean keeps its sub-nanosecond precision).
pub fn parse_duration_nanos(text: &str) -> Result<f64, String> {
    let t = text.trim();
    // The unit is the trailing run of letters, so that "1e3ms" reads as 1e3 milliseconds.
    let split = t.trim_end_matches(char::is_alphabetic).len();
    if split == t.len() {
        return Err(format!(
            "expected a duration with a unit such as \"5ms\" (units: ns, us, ms, s, m, h, d), got \"{text}\""
        ));
    }
    let (num, unit) = t.split_at(split);
    let unit = if unit == "µs" { "us" } else { unit.trim() };
    let value: f64 = num.trim().parse().map_err(|_| {
        format!("expected a number before the unit in a duration such as \"5ms\", got \"{text}\"")
    })?;
    let scale = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            format!(
                "unknown time unit \"{unit}\" in \"{text}\"; expected one of ns, us, ms, s, m, h, d"
            )
        })?;
    if !value.is_finite() {
        return Err(format!("duration must be finite, got \"{text}\""));
    }
    if value < 0.0 {
        return Err(format!("duration must not be negative, got \"{text}\""));
    }
    Ok(value * scale)
}

/// Formats nanoseconds with the largest unit that keeps the number readable.
pub fn format_duration_nanos(ns: f64) -> String {
    if ns >= 1e24 {
        // Longer than the clock holds: seconds in exponent notation ("1e30s"), which reads
        // back as the same duration.
        let text = format!("{:.6e}", ns / 1e9);
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exponent}s");
    }
    let (unit, scale) = if ns >= 60e9 && (ns / 60e9).fract() == 0.0 {
        ("m", 60e9)
    } else if ns >= 1e9 {
        ("s", 1e9)
    } else if ns >= 1e6 {
        ("ms", 1e6)
    } else if ns >= 1e3 {
        ("us", 1e3)
    } else {
        ("ns", 1.0)
    };
    let v = ns / scale;
    let mut s = format!("{v:.6}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    format!("{s}{unit}")
}

/// A duration as written in a model file: a string with a unit (`"5ms"`).
///
/// Keeps the exact nanoseconds as a float so that sub-nanosecond means stay exact.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct DurationSpec(pub f64);

impl DurationSpec {
    /// The duration in nanoseconds.
    pub fn nanos(self) -> f64 {
        self.0
    }
    /// The duration rounded to the clock's resolution.
    pub fn to_sim(self) -> SimDuration {
        SimDuration::from_nanos_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = DurationSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a duration with a unit such as \"5ms\" (units: ns, us, ms, s, m, h, d)",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationSpec, E> {
                parse_duration_nanos(v).map(DurationSpec).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DurationSpec, E> {
                Err(E::custom(format!(
                    "expected a duration with a unit such as \"{v}ms\" or \"{v}s\", got the bare number {v}"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DurationSpec, E> {
                Err(E::custom(format!(
                    "expected a duration with a unit such as \"5ms\", got the bare number {v}"
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DurationSpec, E> {
                Err(E::custom(format!(
                    "expected a duration with a unit such as \"5ms\", got the bare number {v}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration_nanos(self.0))
    }
}

impl JsonSchema for DurationSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^\\s*[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?\\s*(ns|us|µs|ms|s|m|h|d)\\s*$",
            "description": "A duration with a unit: ns, us, ms, s, m, h or d, e.g. \"250us\", \"5ms\", \"2s\", \"10m\"",
            "examples": ["250us", "5ms", "2s", "10m"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration_nanos("250us").unwrap(), 250e3);
        assert_eq!(parse_duration_nanos("5ms").unwrap(), 5e6);
        assert_eq!(parse_duration_nanos("2s").unwrap(), 2e9);
        assert_eq!(parse_duration_nanos("10m").unwrap(), 600e9);
        assert_eq!(parse_duration_nanos("1.5h").unwrap(), 5400e9);
        assert_eq!(parse_duration_nanos("7ns").unwrap(), 7.0);
        assert_eq!(parse_duration_nanos(" 3 ms ").unwrap(), 3e6);
        assert_eq!(parse_duration_nanos("1e3ms").unwrap(), 1e9);
        assert_eq!(parse_duration_nanos("2µs").unwrap(), 2e3);
    }

    #[test]
    fn rejects_bad_durations_with_a_reason() {
        assert!(parse_duration_nanos("5").unwrap_err().contains("unit"));
        assert!(
            parse_duration_nanos("5 parsecs")
                .unwrap_err()
                .contains("unknown time unit")
        );
        assert!(
            parse_duration_nanos("-5ms")
                .unwrap_err()
                .contains("negative")
        );
        assert!(parse_duration_nanos("ms").unwrap_err().contains("number"));
        assert!(parse_duration_nanos("infs").unwrap_err().contains("number"));
        assert!(
            parse_duration_nanos("inf s")
                .unwrap_err()
                .contains("finite")
        );
        assert!(parse_duration_nanos("").unwrap_err().contains("unit"));
    }

    #[test]
    fn rounds_to_nearest_nanosecond() {
        assert_eq!(SimDuration::from_nanos_f64(1.4), SimDuration(1));
        assert_eq!(SimDuration::from_nanos_f64(1.6), SimDuration(2));
        assert_eq!(SimDuration::from_nanos_f64(-3.0), SimDuration(0));
        assert_eq!(SimDuration::from_nanos_f64(f64::NAN), SimDuration(0));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["250us", "5ms", "2s", "10m", "1.5ms", "1e30s"] {
            let ns = parse_duration_nanos(s).unwrap();
            assert_eq!(format_duration_nanos(ns), s);
        }
    }

    #[test]
    fn float_nanoseconds_round_and_saturate() {
        for (ns, want) in [
            (0.0, 0),
            (0.49, 0),
            (0.5, 1),
            (1234.6, 1235),
            (3.9e18, 3_900_000_000_000_000_000),
            (1.0e19, 10_000_000_000_000_000_000),
            (1.0e30, u64::MAX),
            (f64::INFINITY, u64::MAX),
            (-3.0, 0),
            (f64::NAN, 0),
        ] {
            assert_eq!(SimDuration::from_nanos_f64(ns).0, want, "{ns}");
        }
    }
}
