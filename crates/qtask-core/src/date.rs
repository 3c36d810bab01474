//! Parsing and formatting of the dates found in task documents.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::Value;

use crate::error::{CoreError, Result};

/// Parses `YYYY-MM-DD`, optionally followed by a time (`YYYY-MM-DD HH:MM[:SS[.f]]` or with a `T`).
///
/// A time matters for alignment: `2020-01-02 10:00` is after the trading day `2020-01-02`,
/// exactly as `pandas.Timestamp` compares it.
pub fn parse_point(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Some(d.and_time(NaiveTime::MIN));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(dt);
        }
    }
    None
}

/// Parses a calendar day (`YYYY-MM-DD`, a trailing midnight time is accepted).
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    parse_point(text).and_then(|dt| (dt.time() == NaiveTime::MIN).then_some(dt.date()))
}

/// Formats a day as `YYYY-MM-DD`.
pub fn fmt_day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Reads an optional time point from a JSON value: `null` is an open end, a string must be a date.
///
/// `context` says where the value came from, for the error message.
pub fn point_from_json(v: &Value, context: &str) -> Result<Option<NaiveDateTime>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_point(s).map(Some).ok_or_else(|| CoreError::BadDate {
            value: s.clone(),
            context: format!(" at {context}"),
        }),
        other => Err(CoreError::BadDate {
            value: other.to_string(),
            context: format!(" at {context}"),
        }),
    }
}

/// JSON for an optional day: `"YYYY-MM-DD"` or `null`.
pub fn day_to_json(d: Option<NaiveDate>) -> Value {
    d.map_or(Value::Null, |d| Value::String(fmt_day(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_and_times() {
        let d = NaiveDate::from_ymd_opt(2020, 1, 2).unwrap();
        assert_eq!(parse_point("2020-01-02"), Some(d.and_time(NaiveTime::MIN)));
        assert_eq!(parse_point(" 2020-01-02 00:00:00 ").unwrap().date(), d);
        assert_eq!(
            parse_point("2020-01-02T10:30").unwrap().time(),
            NaiveTime::from_hms_opt(10, 30, 0).unwrap()
        );
        assert_eq!(parse_day("2020-01-02 00:00:00"), Some(d));
        assert_eq!(parse_day("2020-01-02 09:00:00"), None);
        assert_eq!(parse_point("2020-13-01"), None);
        assert_eq!(parse_point("yesterday"), None);
    }

    #[test]
    fn json_points() {
        assert_eq!(point_from_json(&Value::Null, "x").unwrap(), None);
        let err = point_from_json(&Value::from("2020-02-30"), "segments.test.0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`2020-02-30` is not a date (expected YYYY-MM-DD) at segments.test.0"
        );
        assert!(point_from_json(&Value::from(3), "x").is_err());
    }
}
