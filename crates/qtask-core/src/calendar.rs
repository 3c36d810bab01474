//! The trading calendar of a Qlib provider folder and Qlib's `TimeAdjuster` alignment rules.
//!
//! Indexes are `i64` so that the two out-of-range values of the spec can be expressed:
//! start alignment may give `n` (after the last day), end alignment may give `-1` (before the
//! first day). Unlike Qlib, a negative index never wraps around to the end of the calendar.

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::date::{fmt_day, parse_day};
use crate::error::{CoreError, Result};

/// An ascending list of trading days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    days: Vec<NaiveDate>,
}

impl Calendar {
    /// Builds a calendar from days that must be strictly ascending and non-empty.
    pub fn new(days: Vec<NaiveDate>) -> std::result::Result<Self, String> {
        if days.is_empty() {
            return Err("the calendar is empty".into());
        }
        if let Some(w) = days.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "days are not strictly ascending ({} then {})",
                fmt_day(w[0]),
                fmt_day(w[1])
            ));
        }
        Ok(Self { days })
    }

    /// Reads a calendar file: one `YYYY-MM-DD` per line (blank lines ignored).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| CoreError::Calendar {
            path: path.to_path_buf(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "file not found".into()
            } else {
                e.to_string()
            },
        })?;
        let mut days = Vec::new();
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let day = parse_day(line).ok_or_else(|| CoreError::Calendar {
                path: path.to_path_buf(),
                message: format!("line {}: `{line}` is not a date", lineno + 1),
            })?;
            days.push(day);
        }
        Self::new(days).map_err(|message| CoreError::Calendar {
            path: path.to_path_buf(),
            message,
        })
    }

    /// The days, ascending.
    pub fn days(&self) -> &[NaiveDate] {
        &self.days
    }

    /// Number of trading days.
    pub fn len(&self) -> usize {
        self.days.len()
    }

    /// Always false: a calendar has at least one day.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// The first trading day.
    pub fn first(&self) -> NaiveDate {
        self.days[0]
    }

    /// The last trading day.
    pub fn last(&self) -> NaiveDate {
        self.days[self.days.len() - 1]
    }
}

/// Which side of a segment a time point is aligned as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// First trading day on or after the point.
    Start,
    /// Last trading day on or before the point.
    End,
}

/// How a segment moves when rolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftKind {
    /// Both ends move.
    Sliding,
    /// Only the end moves.
    Expanding,
}

/// An aligned segment; `None` is an open end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First day, or open.
    pub start: Option<NaiveDate>,
    /// Last day, or open.
    pub end: Option<NaiveDate>,
}

/// A time point as read from a task: `None` is an open end.
pub type Point = Option<NaiveDateTime>;

fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_time(NaiveTime::MIN)
}

/// Qlib's `TimeAdjuster`: alignment on the (future, when present) calendar, plus the last
/// day of the non-future calendar for "end of data" questions.
#[derive(Debug, Clone)]
pub struct TimeAdjuster {
    cal: Calendar,
    data_last_day: NaiveDate,
    source: PathBuf,
}

impl TimeAdjuster {
    /// Builds an adjuster from a calendar used for alignment and the last day that has data.
    pub fn new(cal: Calendar, data_last_day: NaiveDate) -> Self {
        Self {
            cal,
            data_last_day,
            source: PathBuf::new(),
        }
    }

    /// Loads `calendars/day.txt` of a provider folder, and `calendars/day_future.txt` when present
    /// (used for alignment, as Qlib does).
    pub fn from_provider(provider: &Path) -> Result<Self> {
        let day = provider.join("calendars").join("day.txt");
        let data = Calendar::from_file(&day)?;
        let future = provider.join("calendars").join("day_future.txt");
        let (cal, source) = if future.is_file() {
            (Calendar::from_file(&future)?, future)
        } else {
            (data.clone(), day)
        };
        Ok(Self {
            data_last_day: data.last(),
            cal,
            source,
        })
    }

    /// The calendar used for alignment.
    pub fn calendar(&self) -> &Calendar {
        &self.cal
    }

    /// The file the alignment calendar was read from (empty when built in memory).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The last trading day of the non-future calendar (`day.txt`).
    pub fn data_last_day(&self) -> NaiveDate {
        self.data_last_day
    }

    /// Number of days of the alignment calendar.
    pub fn n(&self) -> i64 {
        self.cal.len() as i64
    }

    /// Index of the first day >= `t` (Start, may be `n`) or of the last day <= `t` (End, may be -1).
    pub fn align_idx(&self, t: NaiveDateTime, side: Side) -> i64 {
        let days = self.cal.days();
        match side {
            Side::Start => days.partition_point(|d| midnight(*d) < t) as i64,
            Side::End => days.partition_point(|d| midnight(*d) <= t) as i64 - 1,
        }
    }

    /// `align_idx` of an optional point (`None` stays `None`).
    pub fn align_opt(&self, t: Point, side: Side) -> Option<i64> {
        t.map(|t| self.align_idx(t, side))
    }

    /// The day at `i`, or `None` when `i` is `None` or outside the calendar (no wrap-around).
    pub fn get(&self, i: Option<i64>) -> Option<NaiveDate> {
        let i = i?;
        if i < 0 {
            return None;
        }
        self.cal.days().get(i as usize).copied()
    }

    fn describe_range(&self) -> String {
        format!(
            "the calendar runs {} .. {}",
            fmt_day(self.cal.first()),
            fmt_day(self.cal.last())
        )
    }

    /// Aligns a segment: start to the first day on or after it, end to the last day on or before.
    ///
    /// A start after the calendar or an end before it is an error (Qlib would index past the
    /// end or wrap around).
    pub fn align_seg(&self, start: Point, end: Point, what: &str) -> Result<Segment> {
        let s = self.align_opt(start, Side::Start);
        let e = self.align_opt(end, Side::End);
        if s == Some(self.n()) {
            return Err(CoreError::OutOfCalendar(format!(
                "segment `{what}` starts on {} after the last trading day: {}",
                start.map(|t| fmt_day(t.date())).unwrap_or_default(),
                self.describe_range()
            )));
        }
        if e == Some(-1) {
            return Err(CoreError::OutOfCalendar(format!(
                "segment `{what}` ends on {} before the first trading day: {}",
                end.map(|t| fmt_day(t.date())).unwrap_or_default(),
                self.describe_range()
            )));
        }
        Ok(Segment {
            start: self.get(s),
            end: self.get(e),
        })
    }

    /// `align_idx(a, Start) - align_idx(b, Start)`.
    pub fn cal_interval(&self, a: NaiveDateTime, b: NaiveDateTime) -> i64 {
        self.align_idx(a, Side::Start) - self.align_idx(b, Side::Start)
    }

    /// Moves every point of `seg` to at most `days` trading days before `test_start`.
    ///
    /// An open end counts as unbounded (it becomes the limit); an open start stays open.
    /// Index 0 is accepted (Qlib asserts > 0); a negative index is an error.
    pub fn truncate(
        &self,
        seg: Segment,
        test_start: NaiveDate,
        days: i64,
        what: &str,
    ) -> Result<Segment> {
        let limit = self.align_idx(midnight(test_start), Side::Start) - days;
        let point = |p: Option<NaiveDate>, open_is_limit: bool| -> Result<Option<NaiveDate>> {
            let idx = match p {
                Some(d) => self.align_idx(midnight(d), Side::Start).min(limit),
                None if open_is_limit => limit,
                None => return Ok(None),
            };
            if idx < 0 {
                return Err(CoreError::OutOfCalendar(format!(
                    "segment `{what}` cannot end {days} trading days before the test start {}: \
                     that is before the first trading day ({})",
                    fmt_day(test_start),
                    fmt_day(self.cal.first())
                )));
            }
            Ok(self.get(Some(idx)))
        };
        Ok(Segment {
            start: point(seg.start, false)?,
            end: point(seg.end, true)?,
        })
    }

    /// Shifts a segment by `step` trading days. `None` means the segment left the calendar
    /// (its start is past the calendar's end), which stops rolling.
    pub fn shift(&self, seg: Segment, step: i64, kind: ShiftKind) -> Option<Segment> {
        let mut s = seg.start.map(|d| self.align_idx(midnight(d), Side::Start));
        let mut e = seg.end.map(|d| self.align_idx(midnight(d), Side::End));
        if kind == ShiftKind::Sliding {
            s = s.map(|i| i + step);
        }
        e = e.map(|i| i + step);
        if s.is_some_and(|s| s > self.n()) {
            return None;
        }
        Some(Segment {
            start: self.get(s),
            end: self.get(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        parse_day(s).unwrap()
    }

    fn pt(s: &str) -> NaiveDateTime {
        crate::date::parse_point(s).unwrap()
    }

    fn adjuster() -> TimeAdjuster {
        // Mon..Fri of two weeks, no weekend days.
        let days = [
            "2020-01-06",
            "2020-01-07",
            "2020-01-08",
            "2020-01-09",
            "2020-01-10",
            "2020-01-13",
            "2020-01-14",
            "2020-01-15",
            "2020-01-16",
            "2020-01-17",
        ];
        let cal = Calendar::new(days.iter().map(|d| day(d)).collect()).unwrap();
        let last = cal.last();
        TimeAdjuster::new(cal, last)
    }

    #[test]
    fn align_on_and_between_days() {
        let ta = adjuster();
        assert_eq!(ta.align_idx(pt("2020-01-06"), Side::Start), 0);
        assert_eq!(ta.align_idx(pt("2020-01-11"), Side::Start), 5);
        assert_eq!(ta.align_idx(pt("2020-01-11"), Side::End), 4);
        assert_eq!(ta.align_idx(pt("2020-01-01"), Side::End), -1);
        assert_eq!(ta.align_idx(pt("2020-02-01"), Side::Start), 10);
        // A time after midnight is after that day, like pandas.
        assert_eq!(ta.align_idx(pt("2020-01-06 10:00"), Side::Start), 1);
        assert_eq!(ta.align_idx(pt("2020-01-06 10:00"), Side::End), 0);
    }

    #[test]
    fn get_never_wraps() {
        let ta = adjuster();
        assert_eq!(ta.get(Some(-1)), None);
        assert_eq!(ta.get(Some(10)), None);
        assert_eq!(ta.get(None), None);
        assert_eq!(ta.get(Some(9)), Some(day("2020-01-17")));
    }

    #[test]
    fn align_seg_rejects_out_of_calendar() {
        let ta = adjuster();
        let seg = ta
            .align_seg(Some(pt("2020-01-04")), Some(pt("2020-01-12")), "train")
            .unwrap();
        assert_eq!(seg.start, Some(day("2020-01-06")));
        assert_eq!(seg.end, Some(day("2020-01-10")));
        let err = ta
            .align_seg(Some(pt("2020-03-01")), None, "test")
            .unwrap_err();
        assert!(
            err.to_string().contains("after the last trading day"),
            "{err}"
        );
        let err = ta
            .align_seg(None, Some(pt("2019-03-01")), "train")
            .unwrap_err();
        assert!(
            err.to_string().contains("before the first trading day"),
            "{err}"
        );
    }

    #[test]
    fn truncate_accepts_day_zero_and_rejects_negative() {
        let ta = adjuster();
        let seg = Segment {
            start: Some(day("2020-01-06")),
            end: Some(day("2020-01-15")),
        };
        let t = ta.truncate(seg, day("2020-01-13"), 2, "train").unwrap();
        assert_eq!(t.end, Some(day("2020-01-09")));
        assert_eq!(t.start, Some(day("2020-01-06")));
        let t = ta.truncate(seg, day("2020-01-13"), 5, "train").unwrap();
        assert_eq!(t.end, Some(day("2020-01-06")));
        assert!(ta.truncate(seg, day("2020-01-13"), 6, "train").is_err());
        let open = Segment {
            start: None,
            end: None,
        };
        let t = ta.truncate(open, day("2020-01-13"), 1, "train").unwrap();
        assert_eq!(
            t,
            Segment {
                start: None,
                end: Some(day("2020-01-10"))
            }
        );
    }

    #[test]
    fn shift_sliding_expanding_and_out_of_calendar() {
        let ta = adjuster();
        let seg = Segment {
            start: Some(day("2020-01-07")),
            end: Some(day("2020-01-08")),
        };
        let s = ta.shift(seg, 3, ShiftKind::Sliding).unwrap();
        assert_eq!(s.start, Some(day("2020-01-10")));
        assert_eq!(s.end, Some(day("2020-01-13")));
        let s = ta.shift(seg, 3, ShiftKind::Expanding).unwrap();
        assert_eq!(s.start, Some(day("2020-01-07")));
        assert_eq!(s.end, Some(day("2020-01-13")));
        // End past the calendar becomes open; start exactly at n is not "out" (Qlib's rule).
        let s = ta.shift(seg, 9, ShiftKind::Sliding).unwrap();
        assert_eq!(
            s,
            Segment {
                start: None,
                end: None
            }
        );
        assert!(ta.shift(seg, 10, ShiftKind::Sliding).is_none());
    }

    #[test]
    fn calendar_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("day.txt");
        let err = Calendar::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("file not found"), "{err}");
        std::fs::write(&p, "\n\n").unwrap();
        let err = Calendar::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        std::fs::write(&p, "2020-01-02\nnope\n").unwrap();
        let err = Calendar::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        std::fs::write(&p, "2020-01-03\n2020-01-02\n").unwrap();
        assert!(Calendar::from_file(&p).is_err());
    }
}
