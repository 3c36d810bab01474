//! Periods as Qlib numbers them: `year*100 + quarter` for quarterly fields, `year` for annual.

/// How often a PIT field is reported, from its name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// `_q` fields: periods `YYYYQQ`, four index slots a year.
    Quarterly,
    /// `_a` fields: periods `YYYY`, one index slot a year.
    Annual,
}

impl Interval {
    /// The interval of a field name (`roewa_q`, `yoyni_a`); `None` without a known suffix.
    pub fn of_field(field: &str) -> Option<Interval> {
        let f = field.to_ascii_lowercase();
        if f.ends_with("_q") {
            Some(Interval::Quarterly)
        } else if f.ends_with("_a") {
            Some(Interval::Annual)
        } else {
            None
        }
    }

    /// Index slots per year.
    pub fn slots_per_year(self) -> u32 {
        match self {
            Interval::Quarterly => 4,
            Interval::Annual => 1,
        }
    }

    /// The year of a period.
    pub fn year(self, period: u32) -> u32 {
        match self {
            Interval::Quarterly => period / 100,
            Interval::Annual => period,
        }
    }

    /// Whether `period` is well formed (quarter 1 to 4 for quarterly fields).
    pub fn is_valid(self, period: u32) -> bool {
        match self {
            Interval::Quarterly => (1..=4).contains(&(period % 100)),
            Interval::Annual => true,
        }
    }

    /// The index slot of `period` counted from `first_year` (Qlib's `get_period_offset`);
    /// `None` before `first_year` or for a malformed period.
    pub fn offset(self, first_year: u32, period: u32) -> Option<usize> {
        if !self.is_valid(period) || self.year(period) < first_year {
            return None;
        }
        Some(match self {
            Interval::Quarterly => ((period / 100 - first_year) * 4 + period % 100 - 1) as usize,
            Interval::Annual => (period - first_year) as usize,
        })
    }

    /// The period of index slot `slot` counted from `first_year`.
    pub fn period_at(self, first_year: u32, slot: usize) -> u64 {
        match self {
            Interval::Quarterly => {
                (u64::from(first_year) + slot as u64 / 4) * 100 + slot as u64 % 4 + 1
            }
            Interval::Annual => u64::from(first_year) + slot as u64,
        }
    }

    /// The period just before `period` (`200801` -> `200704`).
    pub fn prev(self, period: u32) -> Option<u32> {
        match self {
            Interval::Quarterly if period % 100 <= 1 => {
                (period / 100).checked_sub(1).map(|y| y * 100 + 4)
            }
            Interval::Quarterly | Interval::Annual => period.checked_sub(1),
        }
    }

    /// The last `n` periods of Qlib's `get_period_list(first, last)`, oldest first: every
    /// period from `first` to `last`, gaps included.
    pub fn tail(self, first: u32, last: u32, n: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(n.min(64));
        let mut p = last;
        while out.len() < n && p >= first {
            if self.is_valid(p) {
                out.push(p);
            }
            match self.prev(p) {
                Some(q) if q < p => p = q,
                _ => break,
            }
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarterly_offsets_and_tails() {
        let q = Interval::Quarterly;
        assert_eq!(q.offset(2007, 200701), Some(0));
        assert_eq!(q.offset(2007, 200801), Some(4));
        assert_eq!(q.offset(2007, 200605), None);
        assert_eq!(q.period_at(2007, 5), 200802);
        assert_eq!(
            q.tail(200703, 200802, 10),
            vec![200703, 200704, 200801, 200802]
        );
        assert_eq!(q.tail(200703, 200802, 2), vec![200801, 200802]);
        assert_eq!(Interval::Annual.tail(2001, 2004, 3), vec![2002, 2003, 2004]);
    }
}
