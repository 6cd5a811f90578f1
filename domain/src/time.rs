//! UTC timestamps as RFC 3339 text, written digit by digit.
//!
//! Every order writes dozens of timestamps (rows, execution snapshots, history events), and
//! chrono formats through `core::fmt` with a format string parsed on every call, and through
//! serde one escaped character at a time: measured, that was several percent of all the
//! instructions an order costs. The output is byte for byte chrono's, which the tests check,
//! so stored text does not change; anything unusual (a year outside 0-9999, a leap second)
//! goes to chrono itself.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

/// `YYYY-MM-DDTHH:MM:SS.fffffffffZ` at most.
const MAX_LEN: usize = 30;

/// Writes `t` with `digits` (0, 3, 6 or 9) fraction digits; `None` where chrono must do it.
fn write(t: &DateTime<Utc>, digits: u32, out: &mut [u8; MAX_LEN]) -> Option<usize> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None; // a leap second
    }
    let mut put = |at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    let mut len = 19;
    if digits > 0 {
        put(20, nanos / 10u32.pow(9 - digits), digits as usize);
        out[19] = b'.';
        len = 20 + digits as usize;
    }
    for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        out[at] = sep;
    }
    out[len] = b'Z';
    Some(len + 1)
}

fn with_digits(t: &DateTime<Utc>, digits: u32, seconds: SecondsFormat) -> String {
    let mut buf = [0u8; MAX_LEN];
    match write(t, digits, &mut buf) {
        // Only ASCII digits and separators were written.
        Some(len) => String::from_utf8_lossy(&buf[..len]).into_owned(),
        None => t.to_rfc3339_opts(seconds, true),
    }
}

/// A stored timestamp (any RFC 3339 form) as UTC; `None` if it is not one.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The fixed-width form stored in SQL and shown by the API: milliseconds, `Z`
/// (`%Y-%m-%dT%H:%M:%S%.3fZ`). Fixed width, so text order is time order.
pub fn format_millis(t: DateTime<Utc>) -> String {
    with_digits(&t, 3, SecondsFormat::Millis)
}

/// chrono's own serde form (as many fraction digits as needed: 0, 3, 6 or 9), for
/// `#[serde(with = "orders_domain::time::rfc3339")]` on `DateTime<Utc>` fields.
pub mod rfc3339 {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    fn auto_digits(t: &DateTime<Utc>) -> u32 {
        match t.nanosecond() {
            0 => 0,
            n if n % 1_000_000 == 0 => 3,
            n if n % 1_000 == 0 => 6,
            _ => 9,
        }
    }

    pub fn to_string(t: &DateTime<Utc>) -> String {
        with_digits(t, auto_digits(t), SecondsFormat::AutoSi)
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_string(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }

    /// The same for `Option<DateTime<Utc>>` fields.
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&to_string(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<DateTime<Utc>>::deserialize(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, nanos: u32) -> DateTime<Utc> {
        let naive = NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_nano_opt(h, mi, s, nanos)
            .unwrap();
        Utc.from_utc_datetime(&naive)
    }

    fn cases() -> Vec<DateTime<Utc>> {
        let mut cases = vec![
            at(2026, 11, 22, 5, 55, 28, 0),
            at(2026, 1, 2, 3, 4, 5, 6_000_000),
            at(2026, 12, 31, 23, 59, 59, 999_000_000),
            at(2026, 2, 28, 0, 0, 0, 123_456_000),
            at(2026, 7, 9, 10, 11, 12, 123_456_789),
            at(2026, 7, 9, 10, 11, 12, 1),
            at(0, 1, 1, 0, 0, 0, 0),
            at(9999, 12, 31, 23, 59, 59, 999_999_999),
            // Outside what is written by hand: chrono's output either way.
            at(10000, 1, 1, 0, 0, 0, 0),
            at(-1, 1, 1, 0, 0, 0, 0),
            at(2016, 12, 31, 23, 59, 59, 1_500_000_000),
            Utc::now(),
        ];
        // A spread of instants over the years, with every kind of fraction.
        let mut t = at(1970, 1, 1, 0, 0, 0, 0);
        for i in 0..2_000u32 {
            t += chrono::Duration::seconds(7_919 * 3_613)
                + chrono::Duration::nanoseconds((i * 104_729 % 1_000_000_000).into());
            cases.push(t);
            cases.push(t.with_nanosecond(i % 4 * 250_000_000).unwrap());
        }
        cases
    }

    #[test]
    fn serde_form_is_chronos_own() {
        for t in cases() {
            let ours = serde_json::to_string(&rfc3339::to_string(&t)).unwrap();
            assert_eq!(ours, serde_json::to_string(&t).unwrap(), "{t:?}");
            let back: DateTime<Utc> = serde_json::from_str(&ours).unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn millis_form_is_the_strftime_one() {
        for t in cases() {
            assert_eq!(
                format_millis(t),
                t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "{t:?}"
            );
        }
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Fields {
        #[serde(with = "rfc3339")]
        at: DateTime<Utc>,
        #[serde(default, with = "rfc3339::option")]
        maybe: Option<DateTime<Utc>>,
    }

    #[test]
    fn fields_round_trip_like_plain_chrono_fields() {
        let t = at(2026, 7, 9, 10, 11, 12, 123_456_789);
        for maybe in [Some(t), None] {
            let f = Fields { at: t, maybe };
            let json = serde_json::to_value(&f).unwrap();
            let plain = serde_json::json!({ "at": t, "maybe": maybe });
            assert_eq!(json, plain);
            assert_eq!(serde_json::from_value::<Fields>(json).unwrap(), f);
        }
        let missing: Fields = serde_json::from_str(r#"{"at":"2026-07-09T10:11:12Z"}"#).unwrap();
        assert_eq!(missing.maybe, None);
    }
}
