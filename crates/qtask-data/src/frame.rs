//! A long table keyed by (instrument, datetime) with f32 columns (Qlib returns float32).

use std::io::Write;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Rows of (instrument, datetime) with named f32 columns, stored column by column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Distinct instruments; rows refer to them by index.
    pub symbols: Vec<String>,
    /// Per row: index into `symbols`.
    pub inst: Vec<u32>,
    /// Per row: the trading day.
    pub datetime: Vec<NaiveDate>,
    /// Column names.
    pub columns: Vec<String>,
    /// Column-major values: `data[c][row]`.
    pub data: Vec<Vec<f32>>,
}

impl Frame {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.inst.len()
    }

    /// Whether the frame has no rows.
    pub fn is_empty(&self) -> bool {
        self.inst.is_empty()
    }

    /// The index of a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The symbol of a row.
    pub fn symbol(&self, row: usize) -> &str {
        &self.symbols[self.inst[row] as usize]
    }

    /// Keeps the rows for which `keep(row)` holds, in order.
    pub fn filter_rows(&mut self, keep: impl Fn(usize) -> bool) {
        let rows: Vec<usize> = (0..self.len()).filter(|&r| keep(r)).collect();
        self.take_rows(&rows);
    }

    /// Reorders/selects rows by index.
    pub fn take_rows(&mut self, rows: &[usize]) {
        self.inst = rows.iter().map(|&r| self.inst[r]).collect();
        self.datetime = rows.iter().map(|&r| self.datetime[r]).collect();
        for c in &mut self.data {
            *c = rows.iter().map(|&r| c[r]).collect();
        }
    }

    /// Sorts rows by (datetime, instrument), Qlib's handler order.
    pub fn sort_by_datetime(&mut self) {
        let mut rows: Vec<usize> = (0..self.len()).collect();
        rows.sort_by(|&a, &b| {
            (self.datetime[a], &self.symbols[self.inst[a] as usize])
                .cmp(&(self.datetime[b], &self.symbols[self.inst[b] as usize]))
        });
        self.take_rows(&rows);
    }

    /// The rows `lo..hi` dated within `[start, end]` of a frame sorted by datetime.
    fn row_bounds(&self, start: Option<NaiveDate>, end: Option<NaiveDate>) -> (usize, usize) {
        let lo = start.map_or(0, |s| self.datetime.partition_point(|d| *d < s));
        let hi = end.map_or(self.len(), |e| self.datetime.partition_point(|d| *d <= e));
        (lo, hi.max(lo))
    }

    /// A copy of the rows dated within `[start, end]` (`None`: open) of a frame sorted by
    /// datetime (those rows are contiguous).
    pub fn rows_between(&self, start: Option<NaiveDate>, end: Option<NaiveDate>) -> Frame {
        self.columns_between(0, start, end)
    }

    /// A copy of the rows dated within `[start, end]`, as [`Frame::rows_between`], with only
    /// the columns from `first` on (e.g. the labels after the features).
    pub fn columns_between(
        &self,
        first: usize,
        start: Option<NaiveDate>,
        end: Option<NaiveDate>,
    ) -> Frame {
        let (lo, hi) = self.row_bounds(start, end);
        Frame {
            symbols: self.symbols.clone(),
            inst: self.inst[lo..hi].to_vec(),
            datetime: self.datetime[lo..hi].to_vec(),
            columns: self.columns[first..].to_vec(),
            data: self.data[first..]
                .iter()
                .map(|c| c[lo..hi].to_vec())
                .collect(),
        }
    }

    /// The rows dated within each `[start, end]` (`None`: open) of a frame sorted by datetime,
    /// one frame per range, made column by column: each column of `self` is freed as soon as
    /// it is split, so the rows exist about once.
    pub fn split_rows(self, ranges: &[(Option<NaiveDate>, Option<NaiveDate>)]) -> Vec<Frame> {
        let bounds: Vec<(usize, usize)> =
            ranges.iter().map(|&(s, e)| self.row_bounds(s, e)).collect();
        let mut parts: Vec<Frame> = bounds
            .iter()
            .map(|&(lo, hi)| Frame {
                symbols: self.symbols.clone(),
                inst: self.inst[lo..hi].to_vec(),
                datetime: self.datetime[lo..hi].to_vec(),
                columns: self.columns.clone(),
                data: Vec::with_capacity(self.data.len()),
            })
            .collect();
        for col in self.data {
            for (part, &(lo, hi)) in parts.iter_mut().zip(&bounds) {
                part.data.push(col[lo..hi].to_vec());
            }
        }
        parts
    }

    /// Sorts rows by (instrument, datetime), the order of Qlib's `D.features`.
    pub fn sort_by_instrument(&mut self) {
        let mut rows: Vec<usize> = (0..self.len()).collect();
        rows.sort_by(|&a, &b| {
            (&self.symbols[self.inst[a] as usize], self.datetime[a])
                .cmp(&(&self.symbols[self.inst[b] as usize], self.datetime[b]))
        });
        self.take_rows(&rows);
    }

    /// Contiguous ranges of rows sharing one datetime (the frame must be sorted by datetime).
    pub fn datetime_groups(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut s = 0;
        for r in 1..=self.len() {
            if r == self.len() || self.datetime[r] != self.datetime[s] {
                out.push(s..r);
                s = r;
            }
        }
        out
    }

    /// Writes CSV: `instrument,datetime,<columns>`; NaN as an empty field, like pandas.
    pub fn write_csv(&self, w: &mut dyn Write) -> std::io::Result<()> {
        write!(w, "instrument,datetime")?;
        for c in &self.columns {
            write!(w, ",{}", csv_field(c))?;
        }
        writeln!(w)?;
        let mut line = String::new();
        for r in 0..self.len() {
            line.clear();
            line.push_str(self.symbol(r));
            line.push(',');
            line.push_str(&self.datetime[r].format("%Y-%m-%d").to_string());
            for c in &self.data {
                line.push(',');
                let v = c[r];
                if v.is_nan() {
                } else if v.is_infinite() {
                    line.push_str(if v > 0.0 { "inf" } else { "-inf" });
                } else {
                    line.push_str(&format!("{v}"));
                }
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
