//! Header values written and read by hand on every event: `ce_time` and
//! `ce_minorversion`.
//!
//! chrono's formatter goes through `core::fmt` and its RFC 3339 parser handles every
//! offset and precision; both cost more than the rest of a small event's headers
//! (about 2 300 and 500 instructions). The producer always writes one shape,
//! `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, so that shape is written and read here digit by
//! digit; anything else (a year beyond 9999, a leap second, another offset or
//! precision) goes to chrono, and the unit tests hold both ways to chrono's answers.

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};

/// Length of `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
const TIME_LEN: usize = 32;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// `ce_time` text in its one canonical shape, on the stack.
pub(super) struct TimeText([u8; TIME_LEN]);

impl TimeText {
    /// The text of `time`, or `None` for what only chrono writes: a year outside
    /// 0..=9999 or a leap second.
    pub(super) fn of(time: &DateTime<Utc>) -> Option<Self> {
        let nanos = time.nanosecond();
        if nanos >= 1_000_000_000 {
            return None;
        }
        let seconds = time.timestamp();
        let (year, month, day) = civil_date(seconds.div_euclid(DAY));
        if !(0..=9999).contains(&year) {
            return None;
        }
        let of_day = seconds.rem_euclid(DAY);
        let mut out = *b"0000-00-00T00:00:00.000000+00:00";
        put_digits(&mut out[0..4], year.unsigned_abs());
        put_digits(&mut out[5..7], month);
        put_digits(&mut out[8..10], day);
        put_digits(&mut out[11..13], (of_day / 3600) as u64);
        put_digits(&mut out[14..16], (of_day / 60 % 60) as u64);
        put_digits(&mut out[17..19], (of_day % 60) as u64);
        put_digits(&mut out[20..26], u64::from(nanos / 1_000));
        Some(Self(out))
    }

    /// The text.
    pub(super) fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// `ce_time` in the canonical shape, read without chrono's parser; `None` for any
/// other text (the caller then asks chrono, which may still accept it).
pub(super) fn parse_canonical_time(text: &str) -> Option<DateTime<Utc>> {
    let bytes: &[u8; TIME_LEN] = text.as_bytes().try_into().ok()?;
    let punctuation = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'+'),
        (29, b':'),
    ];
    if punctuation.iter().any(|&(at, byte)| bytes[at] != byte) || &bytes[27..] != b"00:00" {
        return None;
    }
    // Four digits: at most 9999.
    let year = read_digits(&bytes[0..4])? as i32;
    let date = NaiveDate::from_ymd_opt(
        year,
        read_digits(&bytes[5..7])?,
        read_digits(&bytes[8..10])?,
    )?;
    let time = NaiveTime::from_hms_micro_opt(
        read_digits(&bytes[11..13])?,
        read_digits(&bytes[14..16])?,
        read_digits(&bytes[17..19])?,
        read_digits(&bytes[20..26])?,
    )?;
    Some(date.and_time(time).and_utc())
}

/// A `u32` in decimal, on the stack.
pub(super) struct DecimalText {
    digits: [u8; 10],
    start: usize,
}

impl DecimalText {
    /// The decimal text of `n`.
    pub(super) fn of(mut n: u32) -> Self {
        let mut digits = [b'0'; 10];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Self { digits, start }
    }

    /// The text.
    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[self.start..]).unwrap_or_default()
    }
}

/// Writes `n` into `out` in decimal, zero-padded to its length (higher digits that
/// do not fit are dropped; callers pass numbers that fit).
fn put_digits(out: &mut [u8], mut n: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The number written by ASCII digits only.
fn read_digits(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0_u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

/// (year, month, day) of the proleptic Gregorian calendar for a count of days since
/// 1970-01-01: the civil-from-days conversion over 400-year eras (146 097 days each).
fn civil_date(days: i64) -> (i64, u64, u64) {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u64;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u64;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use chrono::{SecondsFormat, TimeZone};
    use proptest::prelude::*;

    use super::*;

    fn chrono_text(time: &DateTime<Utc>) -> String {
        time.to_rfc3339_opts(SecondsFormat::Micros, false)
    }

    /// Seconds from 0000-01-01 to the end of 9999, and a little beyond both ends.
    const FIRST: i64 = -62_167_219_200 - 86_400;
    const LAST: i64 = 253_402_300_799 + 86_400;

    proptest! {
        #[test]
        fn written_as_chrono_writes_it(seconds in FIRST..LAST, nanos in 0_u32..1_000_000_000) {
            let Some(time) = Utc.timestamp_opt(seconds, nanos).single() else {
                return Ok(());
            };
            match TimeText::of(&time) {
                Some(text) => {
                    let ours = text.as_str().to_owned();
                    prop_assert_eq!(ours, chrono_text(&time));
                }
                None => prop_assert!(!(0..=9999).contains(&chrono::Datelike::year(&time))),
            }
        }

        #[test]
        fn read_as_chrono_reads_it(seconds in FIRST..LAST, micros in 0_u32..1_000_000) {
            let Some(time) = Utc.timestamp_opt(seconds, micros * 1_000).single() else {
                return Ok(());
            };
            let text = chrono_text(&time);
            let chrono_read = DateTime::parse_from_rfc3339(&text).ok().map(|t| t.to_utc());
            prop_assert_eq!(parse_canonical_time(&text), chrono_read);
        }

        #[test]
        fn any_text_reads_as_chrono_reads_it_or_not_at_all(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}\\+00:[0-9]{2}") {
            let chrono_read = DateTime::parse_from_rfc3339(&text).ok().map(|t| t.to_utc());
            if let Some(ours) = parse_canonical_time(&text) {
                prop_assert_eq!(Some(ours), chrono_read);
            }
        }

        #[test]
        fn decimals_as_display_writes_them(n in any::<u32>()) {
            let text = DecimalText::of(n);
            prop_assert_eq!(text.as_str(), n.to_string());
        }
    }

    #[test]
    fn other_shapes_are_left_to_chrono() {
        for text in [
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20.000005+01:00",
            "2023-11-14T22:13:20.000005-00:00",
            "2023-11-14T22:13:20.0000050+00:00",
            "2016-12-31T23:59:60.000000+00:00",
            "2023-02-30T22:13:20.000005+00:00",
            "２023-11-14T22:13:20.000005+00:00",
        ] {
            assert_eq!(parse_canonical_time(text), None, "{text}");
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_500_000))
            .map(|t| t.and_utc());
        assert!(leap.is_some_and(|t| TimeText::of(&t).is_none()));
    }

    #[test]
    fn decimal_edges() {
        assert_eq!(DecimalText::of(0).as_str(), "0");
        assert_eq!(DecimalText::of(u32::MAX).as_str(), "4294967295");
    }
}
