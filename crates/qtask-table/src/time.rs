//! Datetimes as nanoseconds since the Unix epoch (pandas' `datetime64[ns]` values).

use chrono::{DateTime, NaiveDateTime};

use crate::{Result, TableError};

/// Nanoseconds since 1970-01-01T00:00:00 of a naive datetime.
///
/// Fails outside 1677-09-21..2262-04-11, the range pandas' `datetime64[ns]` covers too.
pub fn datetime_to_ns(dt: NaiveDateTime) -> Result<i64> {
    dt.and_utc()
        .timestamp_nanos_opt()
        .ok_or_else(|| TableError::DatetimeRange(dt.to_string()))
}

/// The naive datetime of nanoseconds since 1970-01-01T00:00:00 (every i64 is one).
pub fn ns_to_datetime(ns: i64) -> NaiveDateTime {
    DateTime::from_timestamp_nanos(ns).naive_utc()
}

/// Nanoseconds in one day: datetimes that are multiples of it are midnights.
pub(crate) const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;
