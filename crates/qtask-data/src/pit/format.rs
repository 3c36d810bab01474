//! The on-disk PIT layout. `<field>.data` holds packed native-endian 20-byte records
//! `(date u32 YYYYMMDD, period u32, value f64, next u32)` in publication order, `next` being
//! the byte offset of the same period's next revision. `<field>.index` holds `first_year u32`
//! then one u32 per period slot: the offset of the period's first record. `0xFFFFFFFF` is "none".

use std::path::{Path, PathBuf};

use super::period::Interval;
use crate::error::{DataError, Result};

/// Size of one `.data` record.
pub const RECORD_SIZE: usize = 20;
/// The "no record" marker of `next` and of index slots.
pub const NA_INDEX: u32 = u32::MAX;

/// One revision of one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    /// Publication date as `YYYYMMDD`.
    pub date: u32,
    /// `YYYYQQ` or `YYYY`.
    pub period: u32,
    /// The published value.
    pub value: f64,
    /// Byte offset of the next revision, or `NA_INDEX`.
    pub next: u32,
}

impl Record {
    /// Native-endian bytes, as numpy and `struct.pack("IIdI")` write them.
    pub fn to_bytes(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        b[0..4].copy_from_slice(&self.date.to_ne_bytes());
        b[4..8].copy_from_slice(&self.period.to_ne_bytes());
        b[8..16].copy_from_slice(&self.value.to_ne_bytes());
        b[16..20].copy_from_slice(&self.next.to_ne_bytes());
        b
    }

    /// Decodes one record from exactly `RECORD_SIZE` bytes.
    pub fn from_bytes(b: &[u8; RECORD_SIZE]) -> Record {
        let u = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[8..16]);
        Record {
            date: u(0),
            period: u(4),
            value: f64::from_ne_bytes(v),
            next: u(16),
        }
    }
}

/// A validated pair of `.data` and `.index` files of one field of one instrument.
#[derive(Debug, Clone, PartialEq)]
pub struct PitFile {
    /// Quarterly or annual, from the field name.
    pub interval: Interval,
    /// The year of index slot 0.
    pub first_year: u32,
    /// Per period slot: byte offset of its first record, or `NA_INDEX`.
    pub slots: Vec<u32>,
    /// Records in file order (publication order).
    pub records: Vec<Record>,
}

/// The `.data` and `.index` paths of a field under a provider folder (Qlib lower-cases both);
/// a symbol or field that is not a plain file name is refused.
pub fn pit_paths(root: &Path, symbol: &str, field: &str) -> Result<(PathBuf, PathBuf)> {
    qtask_core::name::check_name("instrument", symbol)?;
    qtask_core::name::check_name("field", field)?;
    let dir = root.join("financial").join(symbol.to_lowercase());
    let f = field.to_lowercase();
    Ok((
        dir.join(format!("{f}.data")),
        dir.join(format!("{f}.index")),
    ))
}

/// Reads a field's PIT files; `Ok(None)` when either file is missing (Qlib's "no file").
pub fn read_pit(root: &Path, symbol: &str, field: &str) -> Result<Option<PitFile>> {
    let interval = Interval::of_field(field).ok_or_else(|| {
        DataError::Invalid(format!(
            "PIT field {field} must end with _q (quarterly) or _a (annual)"
        ))
    })?;
    let (data_path, index_path) = pit_paths(root, symbol, field)?;
    if !data_path.is_file() || !index_path.is_file() {
        return Ok(None);
    }
    let data = std::fs::read(&data_path).map_err(|e| DataError::io(&data_path, e))?;
    let index = std::fs::read(&index_path).map_err(|e| DataError::io(&index_path, e))?;
    PitFile::parse(interval, &data, &index, &data_path, &index_path).map(Some)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl PitFile {
    /// Parses and checks both files: whole records, dates in publication order, every period
    /// inside the index, every index slot and `next` link pointing forward at a record of
    /// the same period. Paths are only used in error messages.
    pub fn parse(
        interval: Interval,
        data: &[u8],
        index: &[u8],
        data_path: &Path,
        index_path: &Path,
    ) -> Result<PitFile> {
        let bad_data = |msg: String| DataError::format(data_path, msg);
        let bad_index = |msg: String| DataError::format(index_path, msg);
        if !data.len().is_multiple_of(RECORD_SIZE) {
            return Err(bad_data(format!(
                "truncated PIT data file: {} bytes is not a whole number of {RECORD_SIZE}-byte records",
                data.len()
            )));
        }
        if data.len() >= NA_INDEX as usize {
            return Err(bad_data("PIT data file is larger than 4 GiB".into()));
        }
        if index.len() < 4 || !index.len().is_multiple_of(4) {
            return Err(bad_index(format!(
                "truncated PIT index file: {} bytes (need 4 for the first year, then 4 per period)",
                index.len()
            )));
        }
        let first_year = u32_at(index, 0);
        let slots: Vec<u32> = (4..index.len())
            .step_by(4)
            .map(|i| u32_at(index, i))
            .collect();
        let records: Vec<Record> = data
            .chunks_exact(RECORD_SIZE)
            .map(|c| Record::from_bytes(c.try_into().expect("chunks_exact")))
            .collect();
        let at = |off: u32| -> Option<&Record> {
            let off = off as usize;
            off.is_multiple_of(RECORD_SIZE)
                .then(|| records.get(off / RECORD_SIZE))
                .flatten()
        };
        for (i, r) in records.iter().enumerate() {
            let off = i * RECORD_SIZE;
            if i > 0 && r.date < records[i - 1].date {
                return Err(bad_data(format!(
                    "record at byte {off}: date {} is before the previous record's {} (records must be in publication order)",
                    r.date,
                    records[i - 1].date
                )));
            }
            match interval.offset(first_year, r.period) {
                Some(s) if s < slots.len() => {}
                _ => {
                    return Err(bad_data(format!(
                        "record at byte {off}: period {} is outside the index (first year {first_year}, {} slots)",
                        r.period,
                        slots.len()
                    )));
                }
            }
            if r.next != NA_INDEX {
                // Links must point forward, so following them always ends.
                match at(r.next) {
                    Some(n) if r.next as usize > off && n.period == r.period => {}
                    _ => {
                        return Err(bad_data(format!(
                            "record at byte {off}: next revision offset {} is not a later record of period {}",
                            r.next, r.period
                        )));
                    }
                }
            }
        }
        for (s, &off) in slots.iter().enumerate() {
            if off == NA_INDEX {
                continue;
            }
            let period = interval.period_at(first_year, s);
            match at(off) {
                Some(r) if u64::from(r.period) == period => {}
                _ => {
                    return Err(bad_index(format!(
                        "slot of period {period}: offset {off} is not a record of that period in the data file"
                    )));
                }
            }
        }
        Ok(PitFile {
            interval,
            first_year,
            slots,
            records,
        })
    }

    /// The `.data` bytes of the records.
    pub fn data_bytes(&self) -> Vec<u8> {
        self.records.iter().flat_map(|r| r.to_bytes()).collect()
    }

    /// The `.index` bytes.
    pub fn index_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(4 * (self.slots.len() + 1));
        b.extend_from_slice(&self.first_year.to_ne_bytes());
        for s in &self.slots {
            b.extend_from_slice(&s.to_ne_bytes());
        }
        b
    }

    /// The revisions of the period in index slot `slot`, as record numbers in chain order.
    pub fn chain(&self, slot: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut off = self.slots.get(slot).copied().unwrap_or(NA_INDEX);
        while off != NA_INDEX {
            let i = off as usize / RECORD_SIZE;
            out.push(i);
            // `parse` checked that links point forward; guard anyway for hand-built values.
            match self.records.get(i) {
                Some(r) if r.next == NA_INDEX || r.next > off => off = r.next,
                _ => break,
            }
        }
        out
    }
}
