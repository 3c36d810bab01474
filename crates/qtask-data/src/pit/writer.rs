//! Appending published values to a PIT field the way Qlib's `dump_pit.py` does, so the bytes
//! written are the bytes Qlib writes for the same rows.

use super::format::{NA_INDEX, PitFile, RECORD_SIZE, Record};
use super::period::Interval;
use crate::error::{DataError, Result};

/// One published value: `(date YYYYMMDD, period, value)`.
pub type Publication = (u32, u32, f64);

/// What `append_rows` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// The field after the append.
    pub file: PitFile,
    /// Records added.
    pub written: usize,
    /// Rows dropped because they were not published after the last stored record (Qlib
    /// only appends newer publications).
    pub skipped: usize,
}

/// Appends `(date YYYYMMDD, period, value)` rows to a field (a new one when `existing` is
/// `None`). Rows are taken in publication order (stable for equal dates); values are stored
/// as f64 after a round trip through f32, as Qlib's dumper does. The index grows to the
/// latest year of the rows; a later revision of a stored period is linked at the end of its
/// chain. A malformed period or one before the index's first year is an error.
pub fn append_rows(
    existing: Option<PitFile>,
    interval: Interval,
    rows: &[Publication],
) -> Result<Appended> {
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| r.0);
    if let Some(r) = rows.iter().find(|r| !interval.is_valid(r.1)) {
        return Err(DataError::Invalid(format!(
            "period {} is not a YYYYQQ quarter (01 to 04)",
            r.1
        )));
    }
    let per_year = interval.slots_per_year() as usize;
    let (min_year, max_year) = rows.iter().fold((u32::MAX, 0), |(lo, hi), r| {
        (lo.min(interval.year(r.1)), hi.max(interval.year(r.1)))
    });
    let mut file = existing.unwrap_or(PitFile {
        interval,
        first_year: min_year,
        slots: Vec::new(),
        records: Vec::new(),
    });
    if rows.is_empty() {
        return Ok(Appended {
            file,
            written: 0,
            skipped: 0,
        });
    }
    let covered = (file.slots.len() / per_year) as u32;
    let start_year = file.first_year.saturating_add(covered);
    if start_year <= max_year {
        let years = (max_year - start_year + 1) as usize;
        file.slots
            .extend(std::iter::repeat_n(NA_INDEX, years * per_year));
    }
    let total = rows.len();
    if let Some(last) = file.records.last() {
        let last_date = last.date;
        rows.retain(|r| r.0 > last_date);
    }
    for &(date, period, value) in &rows {
        let slot = interval
            .offset(file.first_year, period)
            .filter(|&s| s < file.slots.len())
            .ok_or_else(|| {
                DataError::Invalid(format!(
                    "period {period} is before the first year {} of the existing index",
                    file.first_year
                ))
            })?;
        let offset = file.records.len() * RECORD_SIZE;
        if offset >= NA_INDEX as usize {
            return Err(DataError::Invalid(
                "PIT data file would exceed 4 GiB".into(),
            ));
        }
        match file.chain(slot).last() {
            None => file.slots[slot] = offset as u32,
            Some(&tail) => file.records[tail].next = offset as u32,
        }
        file.records.push(Record {
            date,
            period,
            value: f64::from(value as f32),
            next: NA_INDEX,
        });
    }
    Ok(Appended {
        file,
        written: rows.len(),
        skipped: total - rows.len(),
    })
}
