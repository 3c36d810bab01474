//! Qlib's `RollingGen`, with calendar-unit steps (`1M`, `3M`, ...) on top.

use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use super::TaskGen;
use super::segments::{SEGMENTS_PATH, find, read_segments, write_segments};
use crate::calendar::{Segment, ShiftKind, Side, TimeAdjuster};
use crate::date::{fmt_day, point_from_json};
use crate::error::{CoreError, Result};
use crate::path;

/// Expanding (the train segment grows) or sliding (every segment moves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollType {
    /// The train segment keeps its start and grows.
    Expanding,
    /// Every segment keeps its length and moves.
    Sliding,
}

impl FromStr for RollType {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "expanding" | "ex" => Ok(Self::Expanding),
            "sliding" | "sd" => Ok(Self::Sliding),
            other => Err(CoreError::Generator(format!(
                "unknown rolling type `{other}` (expected expanding or sliding)"
            ))),
        }
    }
}

/// A calendar unit for period steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalUnit {
    /// Monday-to-Sunday weeks.
    Week,
    /// Calendar months (`3M` are quarters: Jan, Apr, Jul, Oct).
    Month,
    /// Calendar years.
    Year,
}

/// How far each window moves: a number of trading days, or N calendar units (each window then
/// starts on the first trading day of its period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollStep {
    /// A fixed number of trading days (Qlib's `step`).
    Days(i64),
    /// `n` weeks, months or years.
    Period {
        /// How many units per window.
        n: u32,
        /// The unit.
        unit: CalUnit,
    },
}

impl FromStr for RollStep {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            CoreError::Generator(format!(
                "bad rolling step `{s}`: expected a positive number of trading days (e.g. 40) or \
                 a count with a unit W, M, Q or Y (e.g. 1W, 1M, 3M, 1Y)"
            ))
        };
        let s = s.trim();
        if let Ok(n) = s.parse::<i64>() {
            return if n > 0 { Ok(Self::Days(n)) } else { Err(bad()) };
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (num, unit) = s.split_at(split);
        let n: u32 = if num.is_empty() {
            1
        } else {
            num.parse().map_err(|_| bad())?
        };
        if n == 0 {
            return Err(bad());
        }
        let (n, unit) = match unit.to_ascii_uppercase().as_str() {
            "D" => return Ok(Self::Days(n as i64)),
            "W" => (n, CalUnit::Week),
            "M" => (n, CalUnit::Month),
            "Q" => (n * 3, CalUnit::Month),
            "Y" | "A" => (n, CalUnit::Year),
            _ => return Err(bad()),
        };
        Ok(Self::Period { n, unit })
    }
}

impl std::fmt::Display for RollStep {
    /// The text [`RollStep::from_str`] reads back: `40`, `1W`, `3M`, `1Y`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            RollStep::Days(n) => write!(f, "{n}"),
            RollStep::Period { n, unit } => {
                let u = match unit {
                    CalUnit::Week => "W",
                    CalUnit::Month => "M",
                    CalUnit::Year => "Y",
                };
                write!(f, "{n}{u}")
            }
        }
    }
}

impl RollStep {
    /// The period a day belongs to; consecutive periods have consecutive numbers.
    fn period_of(n: u32, unit: CalUnit, d: NaiveDate) -> i64 {
        let n = i64::from(n);
        let units = match unit {
            // Days since a Monday (1970-01-05), in whole weeks.
            CalUnit::Week => (d.num_days_from_ce() as i64 - 719_167).div_euclid(7),
            CalUnit::Month => i64::from(d.year()) * 12 + i64::from(d.month0()),
            CalUnit::Year => i64::from(d.year()),
        };
        units.div_euclid(n)
    }

    /// Index of the first trading day of the window after the one starting at `start`
    /// (`n` or more: past the calendar).
    fn next_start(&self, ta: &TimeAdjuster, start: i64) -> i64 {
        match *self {
            RollStep::Days(step) => start + step,
            RollStep::Period { n, unit } => {
                let days = ta.calendar().days();
                let here = Self::period_of(n, unit, days[start as usize]);
                let rest = &days[start as usize..];
                let len = rest.partition_point(|d| Self::period_of(n, unit, *d) <= here);
                if len == rest.len() {
                    // The period runs past the calendar: its end is unknown, so the window end
                    // must come out open (index n), like a day step that passes the calendar.
                    ta.n() + 1
                } else {
                    start + len as i64
                }
            }
        }
    }
}

/// Qlib's `RollingGen`: the first task's test window is exactly one step, later tasks shift every
/// segment by one step until the test start passes the template's test end.
#[derive(Debug, Clone)]
pub struct RollingGen<'a> {
    /// Calendar used for alignment.
    pub ta: &'a TimeAdjuster,
    /// Window step (Qlib's default 40 trading days).
    pub step: RollStep,
    /// Expanding (default) or sliding.
    pub rtype: RollType,
    /// Gap in trading days between every non-test segment and the test start (first task).
    pub trunc_days: Option<i64>,
    /// Name of the test segment.
    pub test_key: String,
    /// Name of the segment that expands; `None`: every segment slides.
    pub train_key: Option<String>,
    /// Extend the handler's `end_time` to the test end (Qlib's `handler_mod`).
    pub handler_mod: bool,
}

impl<'a> RollingGen<'a> {
    /// Qlib's defaults: step 40, expanding, no truncation, `test`/`train`, handler_mod on.
    pub fn new(ta: &'a TimeAdjuster) -> Self {
        Self {
            ta,
            step: RollStep::Days(40),
            rtype: RollType::Expanding,
            trunc_days: None,
            test_key: "test".into(),
            train_key: Some("train".into()),
            handler_mod: true,
        }
    }

    fn test_segment<'s>(&self, segs: &'s [(String, Segment)]) -> Result<&'s Segment> {
        find(segs, &self.test_key).ok_or_else(|| CoreError::MissingPath {
            path: format!("{SEGMENTS_PATH}.{}", self.test_key),
            context: " (the rolling generator needs a test segment)".into(),
        })
    }

    fn window_end(&self, start: i64) -> Option<NaiveDate> {
        self.ta.get(Some(self.step.next_start(self.ta, start) - 1))
    }

    fn idx(&self, d: NaiveDate) -> i64 {
        self.ta
            .align_idx(d.and_hms_opt(0, 0, 0).expect("midnight"), Side::Start)
    }

    fn finish(&self, mut task: Value, segs: &[(String, Segment)]) -> Result<Value> {
        write_segments(&mut task, segs);
        if self.handler_mod {
            handler_mod(&mut task, self.ta, &self.test_key)?;
        }
        Ok(task)
    }
}

impl TaskGen for RollingGen<'_> {
    fn generate(&self, task: &Value) -> Result<Vec<Value>> {
        let mut segs = read_segments(task, self.ta, "the rolling generator")?;
        let test = *self.test_segment(&segs)?;
        // Expanding grows the train segment: a key naming none would quietly slide them all.
        if self.rtype == RollType::Expanding
            && let Some(train) = &self.train_key
            && find(&segs, train).is_none()
        {
            let names: Vec<&str> = segs.iter().map(|(k, _)| k.as_str()).collect();
            return Err(CoreError::MissingPath {
                path: format!("{SEGMENTS_PATH}.{train}"),
                context: format!(
                    " (expanding rolling grows the train segment; the segments are {}: name the \
                     one to grow with --train-key, or use --train-key none to slide them all)",
                    names.join(", ")
                ),
            });
        }
        let test_start = test.start.ok_or_else(|| {
            CoreError::Template(format!(
                "`{SEGMENTS_PATH}.{}` needs a start date for rolling",
                self.test_key
            ))
        })?;
        // The last test start allowed: the test end on the data calendar (day.txt).
        let data_last = self.ta.data_last_day();
        let test_end = test.end.map_or(data_last, |e| e.min(data_last));

        let first = self.idx(test_start);
        let first_test = Segment {
            start: Some(test_start),
            end: self.window_end(first),
        };
        for (k, seg) in segs.iter_mut() {
            if *k == self.test_key {
                *seg = first_test;
            } else if let Some(days) = self.trunc_days {
                *seg = self.ta.truncate(*seg, test_start, days, k)?;
            }
        }
        let task1 = self.finish(task.clone(), &segs)?;
        let mut out = vec![task1.clone()];
        out.extend(self.following(&task1, segs, test_end)?);
        Ok(out)
    }
}

impl RollingGen<'_> {
    /// Qlib's `gen_following_tasks`: the tasks after `task` (itself excluded), each a copy of
    /// it with every segment shifted one more step (the train segment expands when rolling is
    /// expanding), for as long as the test start is on or before `test_end` and the calendar
    /// lasts. An online routine asks it for the windows that have come due by its day.
    pub fn gen_following_tasks(&self, task: &Value, test_end: NaiveDate) -> Result<Vec<Value>> {
        let segs = read_segments(task, self.ta, "the rolling generator")?;
        self.test_segment(&segs)?.start.ok_or_else(|| {
            CoreError::Template(format!(
                "`{SEGMENTS_PATH}.{}` needs a start date for rolling",
                self.test_key
            ))
        })?;
        self.following(task, segs, test_end)
    }

    /// The windows after the one whose segments are `prev`, as copies of `base`.
    fn following(
        &self,
        base: &Value,
        mut prev: Vec<(String, Segment)>,
        test_end: NaiveDate,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            let prev_start = self
                .test_segment(&prev)?
                .start
                .expect("test windows have a start");
            let from = self.idx(prev_start);
            let step = self.step.next_start(self.ta, from) - from;
            let mut next = Vec::with_capacity(prev.len());
            for (k, seg) in &prev {
                let kind =
                    if self.rtype == RollType::Expanding && self.train_key.as_deref() == Some(k) {
                        ShiftKind::Expanding
                    } else {
                        ShiftKind::Sliding
                    };
                match self.ta.shift(*seg, step, kind) {
                    Some(s) => next.push((k.clone(), s)),
                    None => return Ok(out),
                }
            }
            let slot = next
                .iter_mut()
                .find(|(k, _)| *k == self.test_key)
                .map(|(_, s)| s)
                .expect("test segment kept by shifting");
            // Qlib crashes when the start lands exactly past the calendar; we stop there.
            let Some(start) = slot.start else {
                return Ok(out);
            };
            if start > test_end {
                return Ok(out);
            }
            if matches!(self.step, RollStep::Period { .. }) {
                slot.end = self.window_end(self.idx(start));
            }
            out.push(self.finish(base.clone(), &next)?);
            prev = next;
        }
    }
}

/// Qlib's `handler_mod`: make the handler load data up to the test end.
///
/// Sets `dataset.kwargs.handler.kwargs.end_time` to the test end when that end is open or later
/// than `end_time`; a handler that is not a map, has no kwargs or no `end_time`, or whose
/// `end_time` is null, is left alone.
pub fn handler_mod(task: &mut Value, ta: &TimeAdjuster, test_key: &str) -> Result<()> {
    let te = match path::get(task, &format!("{SEGMENTS_PATH}.{test_key}.1")) {
        Some(v) => point_from_json(v, &format!("{SEGMENTS_PATH}.{test_key}.1"))?,
        None => return Ok(()),
    };
    const END_TIME: &str = "dataset.kwargs.handler.kwargs.end_time";
    let Some(end_time) = path::get_mut(task, END_TIME) else {
        return Ok(());
    };
    if end_time.is_null() {
        return Ok(());
    }
    match te {
        None => *end_time = Value::Null,
        Some(te) => {
            let current = point_from_json(end_time, END_TIME)?.expect("not null");
            if ta.cal_interval(current, te) < 0 {
                *end_time = Value::String(fmt_day(te.date()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_steps() {
        assert_eq!("40".parse::<RollStep>().unwrap(), RollStep::Days(40));
        assert_eq!("20D".parse::<RollStep>().unwrap(), RollStep::Days(20));
        assert_eq!(
            "3M".parse::<RollStep>().unwrap(),
            RollStep::Period {
                n: 3,
                unit: CalUnit::Month
            }
        );
        assert_eq!(
            "1q".parse::<RollStep>().unwrap(),
            RollStep::Period {
                n: 3,
                unit: CalUnit::Month
            }
        );
        assert_eq!(
            "W".parse::<RollStep>().unwrap(),
            RollStep::Period {
                n: 1,
                unit: CalUnit::Week
            }
        );
        for text in ["40", "1W", "3M", "2Y"] {
            assert_eq!(text.parse::<RollStep>().unwrap().to_string(), text);
        }
        for bad in ["0", "-5", "3X", "0M", "M3", ""] {
            assert!(bad.parse::<RollStep>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_rtype() {
        assert_eq!("sliding".parse::<RollType>().unwrap(), RollType::Sliding);
        let err = "bogus".parse::<RollType>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown rolling type `bogus` (expected expanding or sliding)"
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        let d = |s| crate::date::parse_day(s).unwrap();
        let p = |s| RollStep::period_of(1, CalUnit::Week, d(s));
        assert_eq!(p("2020-01-06"), p("2020-01-12")); // Monday..Sunday
        assert_eq!(p("2020-01-13"), p("2020-01-06") + 1);
        let q = |s| RollStep::period_of(3, CalUnit::Month, d(s));
        assert_eq!(q("2020-01-01"), q("2020-03-31"));
        assert_eq!(q("2020-04-01"), q("2020-03-31") + 1);
    }
}
