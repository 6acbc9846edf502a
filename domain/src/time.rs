//! Instants as RFC 3339 text, the way chrono's serde writes and reads them,
//! without going through `fmt` and its parser for the common shape.
//!
//! Every envelope, notification and status view carries a time, and each is
//! written and read several times on its way through the store, the stream,
//! the bus and the consumers: chrono's `Display`-based writer and its relaxed
//! parser took about 8 % of the local runner's instructions (BENCHMARKS.md).
//! Use as `#[serde(with = "crate::time")]`. The text is the same as chrono's
//! (property tests below); anything off the fast path goes to chrono.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Deserializer, Serializer, de};
use std::fmt;

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, the longest text of the fast path.
const LONGEST: usize = 30;

/// A time's text, on the stack.
pub struct Text {
    bytes: [u8; LONGEST],
    len: usize,
}

impl Text {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// The text chrono's serde writes (`SecondsFormat::AutoSi`, `Z`), for years
/// 0 to 9999 and no leap second; `None` for the rest.
pub fn write(time: &DateTime<Utc>) -> Option<Text> {
    let (year, nano) = (time.year(), time.nanosecond());
    if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
        return None;
    }
    let mut bytes = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for digit in bytes[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, time.month());
    put(8, 2, time.day());
    put(11, 2, time.hour());
    put(14, 2, time.minute());
    put(17, 2, time.second());
    // AutoSi: milli-, micro- or nanoseconds, whichever shows the whole
    // fraction; the `Z` goes where the fraction ends.
    let end = match nano {
        0 => 19,
        _ if nano % 1_000_000 == 0 => {
            put(20, 3, nano / 1_000_000);
            23
        }
        _ if nano % 1_000 == 0 => {
            put(20, 6, nano / 1_000);
            26
        }
        _ => {
            put(20, 9, nano);
            29
        }
    };
    bytes[end] = b'Z';
    Some(Text { bytes, len: end + 1 })
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction]Z` itself and any other RFC 3339
/// text through chrono, so it accepts exactly what chrono's serde does.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match parse_fast(text.as_bytes()) {
        Some(time) => Ok(time),
        None => text.parse::<DateTime<chrono::FixedOffset>>().map(|time| time.with_timezone(&Utc)),
    }
}

fn parse_fast(text: &[u8]) -> Option<DateTime<Utc>> {
    let number = |range: std::ops::Range<usize>| {
        text.get(range)?.iter().try_fold(0u32, |value, byte| byte.is_ascii_digit().then(|| value * 10 + u32::from(byte - b'0')))
    };
    let shape = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if text.last() != Some(&b'Z') || !shape.iter().all(|(at, separator)| text.get(*at) == Some(separator)) {
        return None;
    }
    let nano = match text.get(19..text.len() - 1)? {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => number(20..text.len() - 1)? * 10u32.pow(9 - fraction.len() as u32),
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
    // A leap second (60) takes chrono's own path.
    let time = date.and_hms_nano_opt(number(11..13)?, number(14..16)?, number(17..19).filter(|second| *second < 60)?, nano)?;
    Some(time.and_utc())
}

pub fn serialize<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    match write(time) {
        Some(text) => serializer.serialize_str(text.as_str()),
        None => serde::Serialize::serialize(time, serializer),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    struct Visitor;
    impl de::Visitor<'_> for Visitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("an RFC 3339 formatted date and time string")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<DateTime<Utc>, E> {
            parse(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Visitor)
}

/// `serialize` for an `Option<DateTime<Utc>>` field:
/// `#[serde(serialize_with = "crate::time::serialize_optional")]`.
pub fn serialize_optional<S: Serializer>(time: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serialize(time, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn chrono_text(time: &DateTime<Utc>) -> String {
        serde_json::to_value(time).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
    }

    #[test]
    fn writes_each_precision_as_chrono_does() {
        for (nano, expected) in [
            (0, "2026-11-23T02:37:05Z"),
            (120_000_000, "2026-11-23T02:37:05.120Z"),
            (120_300_000, "2026-11-23T02:37:05.120300Z"),
            (120_300_004, "2026-11-23T02:37:05.120300004Z"),
        ] {
            let time = Utc.with_ymd_and_hms(2026, 11, 23, 2, 37, 5).single().map(|t| t.with_nanosecond(nano));
            let time = time.flatten().expect("a valid time");
            assert_eq!(write(&time).as_ref().map(Text::as_str), Some(expected));
            assert_eq!(chrono_text(&time), expected);
            assert_eq!(parse(expected), Ok(time));
        }
    }

    #[test]
    fn leaves_years_past_9999_and_leap_seconds_to_chrono() {
        let far = Utc.with_ymd_and_hms(12026, 1, 1, 0, 0, 0).single().expect("a valid time");
        assert!(write(&far).is_none());
        let json = serde_json::to_string(&Wrapped(far)).expect("serializes");
        assert_eq!(json, format!("\"{}\"", chrono_text(&far)));
        let leap = "2016-12-31T23:59:60Z";
        assert_eq!(parse(leap), leap.parse::<DateTime<chrono::FixedOffset>>().map(|t| t.with_timezone(&Utc)));
    }

    #[test]
    fn reads_other_offsets_and_refuses_what_chrono_refuses() {
        assert_eq!(parse("2026-11-23T11:37:05+09:00"), parse("2026-11-23T02:37:05Z"));
        for bad in ["", "2026-11-23", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T02:37:05.Z"] {
            assert!(parse(bad).is_err(), "{bad} was read");
        }
        assert!(serde_json::from_str::<Wrapped>("\"tomorrow\"").is_err());
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Wrapped(#[serde(with = "super")] DateTime<Utc>);

    #[test]
    fn an_optional_time_is_written_as_the_time_or_null() {
        #[derive(serde::Serialize)]
        struct Maybe(#[serde(serialize_with = "super::serialize_optional")] Option<DateTime<Utc>>);
        let time = Utc.with_ymd_and_hms(2026, 11, 23, 2, 37, 5).single().expect("a valid time");
        assert_eq!(serde_json::to_string(&Maybe(Some(time))).ok(), Some(format!("\"{}\"", chrono_text(&time))));
        assert_eq!(serde_json::to_string(&Maybe(None)).ok(), Some("null".to_owned()));
    }

    proptest! {
        #[test]
        fn writes_what_chrono_writes_and_reads_it_back(seconds in -62_135_596_800i64..253_402_300_799, nano in 0u32..1_000_000_000, round in 0usize..4) {
            // Whole seconds, milli- and microseconds are common: cover them.
            let nano = [0, nano / 1_000_000 * 1_000_000, nano / 1_000 * 1_000, nano][round];
            let time = DateTime::from_timestamp(seconds, nano).expect("in range");
            let json = serde_json::to_string(&Wrapped(time)).expect("serializes");
            prop_assert_eq!(&json, &serde_json::to_string(&time).expect("serializes"));
            prop_assert_eq!(serde_json::from_str::<Wrapped>(&json).expect("reads back"), Wrapped(time));
        }

        #[test]
        fn reads_what_chrono_reads(
            (year, month, day) in (0u32..10_000, 0u32..14, 0u32..33),
            (hour, minute, second) in (0u32..25, 0u32..61, 0u32..62),
            fraction in "(\\.[0-9]{0,10})?",
            zone in "Z|z|[+-][0-9]{2}:[0-9]{2}|",
        ) {
            // Near and past the edges of every field, so that both what is
            // read and what is refused are compared.
            let text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{zone}");
            let chrono = text.parse::<DateTime<chrono::FixedOffset>>().map(|time| time.with_timezone(&Utc)).ok();
            prop_assert_eq!(parse(&text).ok(), chrono);
        }

        #[test]
        fn reads_any_text_as_chrono_does(text in "[0-9T:.Z+-]{0,32}") {
            let chrono = text.parse::<DateTime<chrono::FixedOffset>>().map(|time| time.with_timezone(&Utc)).ok();
            prop_assert_eq!(parse(&text).ok(), chrono);
        }
    }
}
