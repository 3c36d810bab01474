//! Tasks done per minute, measured by the dashboard from the done counts it reads.
//!
//! Stores keep no completion log that could be counted cheaply (a finished time is a column
//! of each task, without an index on PostgreSQL), so the rate is the growth of the `done`
//! count between the overviews this server read, over at most [`WINDOW`]. It is unknown
//! until two readings a second apart exist; a count that went down (tasks removed or reset)
//! starts the measurement over.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far back the rate looks.
pub(crate) const WINDOW: Duration = Duration::from_secs(300);

/// Readings closer together than this are not kept.
const SPACING: Duration = Duration::from_secs(1);

/// The done-count readings of every pool.
#[derive(Default)]
pub(crate) struct Rates {
    samples: Mutex<HashMap<String, VecDeque<(Instant, u64)>>>,
}

/// A measured rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// Tasks done per minute.
    pub per_minute: f64,
    /// Over how many seconds it was measured.
    pub over_secs: f64,
}

impl Rates {
    /// Records that `pool` had `done` tasks at `at` and returns the rate so far.
    pub(crate) fn record(&self, pool: &str, done: u64, at: Instant) -> Option<Rate> {
        let mut all = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let s = all.entry(pool.to_string()).or_default();
        if s.back().is_some_and(|&(_, n)| done < n) {
            s.clear();
        }
        if s.back()
            .is_none_or(|&(t, _)| at.duration_since(t) >= SPACING)
        {
            s.push_back((at, done));
        }
        // Keep one reading at or before the window's start, so the rate spans the window.
        while s.len() > 2 && s[1].0 + WINDOW <= at {
            s.pop_front();
        }
        let &(t0, n0) = s.front()?;
        let over = at.duration_since(t0);
        if over < SPACING {
            return None;
        }
        Some(Rate {
            per_minute: (done - n0) as f64 * 60.0 / over.as_secs_f64(),
            over_secs: over.as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_growth_over_time_and_restarts_when_the_count_falls() {
        let r = Rates::default();
        let t = Instant::now();
        assert_eq!(r.record("p", 10, t), None);
        assert_eq!(r.record("p", 12, t + Duration::from_millis(500)), None);
        let rate = r.record("p", 40, t + Duration::from_secs(30)).unwrap();
        assert!((rate.per_minute - 60.0).abs() < 1e-9, "{rate:?}");
        assert!((rate.over_secs - 30.0).abs() < 1e-9);
        // Ten minutes on, the readings older than the window are gone.
        let rate = r.record("p", 640, t + Duration::from_secs(630)).unwrap();
        assert!(rate.over_secs <= 600.0 + 1e-9, "{rate:?}");
        assert!(
            (rate.per_minute - 600.0 * 60.0 / 600.0).abs() < 1e-9,
            "{rate:?}"
        );
        // Tasks removed: measuring starts over.
        assert_eq!(r.record("p", 5, t + Duration::from_secs(640)), None);
        assert_eq!(r.record("q", 5, t), None, "pools are apart");
    }
}
