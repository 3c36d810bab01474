//! What a PIT field looked like on any day: the period series built from the records
//! published on or before that day (Qlib's `LocalPITProvider.period_feature`).

use super::format::PitFile;
use super::period::Interval;

/// A PIT field prepared for many "as of" queries.
#[derive(Debug, Clone)]
pub struct Timeline {
    interval: Interval,
    first_year: u32,
    dates: Vec<u32>,
    /// Smallest / largest period among records `0..=i`.
    prefix_min: Vec<u32>,
    prefix_max: Vec<u32>,
    /// Per index slot: its revisions as ascending record numbers.
    chains: Vec<Vec<usize>>,
    values: Vec<f64>,
}

impl Timeline {
    /// Prepares a validated file.
    pub fn new(file: &PitFile) -> Timeline {
        let mut prefix_min = Vec::with_capacity(file.records.len());
        let mut prefix_max = Vec::with_capacity(file.records.len());
        let (mut lo, mut hi) = (u32::MAX, 0);
        for r in &file.records {
            lo = lo.min(r.period);
            hi = hi.max(r.period);
            prefix_min.push(lo);
            prefix_max.push(hi);
        }
        Timeline {
            interval: file.interval,
            first_year: file.first_year,
            dates: file.records.iter().map(|r| r.date).collect(),
            prefix_min,
            prefix_max,
            chains: (0..file.slots.len()).map(|s| file.chain(s)).collect(),
            values: file.records.iter().map(|r| r.value).collect(),
        }
    }

    /// A field with no records (every series is empty).
    pub fn empty() -> Timeline {
        Timeline {
            interval: Interval::Quarterly,
            first_year: 0,
            dates: Vec::new(),
            prefix_min: Vec::new(),
            prefix_max: Vec::new(),
            chains: Vec::new(),
            values: Vec::new(),
        }
    }

    /// How many records are published on or before `date` (`YYYYMMDD`): the state of the
    /// field that day is fully determined by this count.
    pub fn visible(&self, date: u32) -> usize {
        self.dates.partition_point(|&d| d <= date)
    }

    /// The period series seen when the first `visible` records are published: the last
    /// `lookback + 1` periods from the first to the latest published one (or only `period`
    /// for `PRef`, empty when it is outside that range), each valued by its latest visible
    /// revision (NaN when none).
    pub fn series(
        &self,
        visible: usize,
        lookback: usize,
        period: Option<u32>,
    ) -> (Vec<u32>, Vec<f64>) {
        if visible == 0 {
            return (Vec::new(), Vec::new());
        }
        let (first, last) = (self.prefix_min[visible - 1], self.prefix_max[visible - 1]);
        let periods = match period {
            Some(p) => {
                if p >= first && p <= last && self.interval.is_valid(p) {
                    vec![p]
                } else {
                    Vec::new()
                }
            }
            None => self.interval.tail(first, last, lookback + 1),
        };
        let values = periods.iter().map(|&p| self.value_at(p, visible)).collect();
        (periods, values)
    }

    fn value_at(&self, period: u32, visible: usize) -> f64 {
        let Some(chain) = self
            .interval
            .offset(self.first_year, period)
            .and_then(|s| self.chains.get(s))
        else {
            return f64::NAN;
        };
        let n = chain.partition_point(|&i| i < visible);
        if n == 0 {
            f64::NAN
        } else {
            self.values[chain[n - 1]]
        }
    }
}
