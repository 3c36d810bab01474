//! The table itself: columnar storage, construction, access and sorting.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use crate::time::{datetime_to_ns, ns_to_datetime};
use crate::{Result, TableError};

/// A long table keyed by `(datetime, instrument)` with named `f64` value columns.
///
/// Rows are in no particular order until [`PredTable::sort`]; keys may repeat (a table
/// read from a file is kept as the file has it). See the crate docs for the representation.
#[derive(Debug, Clone, Default)]
pub struct PredTable {
    datetimes: Vec<i64>,
    instrument_ids: Vec<u32>,
    instruments: Vec<String>,
    names: Vec<String>,
    values: Vec<Vec<f64>>,
}

impl PredTable {
    /// An empty table with these value columns.
    pub fn empty<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        let names: Vec<String> = columns.into_iter().map(Into::into).collect();
        let values = vec![Vec::new(); names.len()];
        PredTable {
            names,
            values,
            ..Default::default()
        }
    }

    /// Assembles a table from its columns, checking that they fit together.
    ///
    /// `instrument_ids[i]` indexes `instruments` (the dictionary, no duplicates, any order);
    /// `datetimes` are nanoseconds since the epoch; every column has one value per row.
    pub fn from_parts(
        datetimes: Vec<i64>,
        instrument_ids: Vec<u32>,
        instruments: Vec<String>,
        columns: Vec<(String, Vec<f64>)>,
    ) -> Result<Self> {
        let n = datetimes.len();
        if instrument_ids.len() != n {
            return Err(TableError::Shape(format!(
                "{} datetimes but {} instruments",
                n,
                instrument_ids.len()
            )));
        }
        if let Some(bad) = instrument_ids
            .iter()
            .find(|&&id| id as usize >= instruments.len())
        {
            return Err(TableError::Shape(format!(
                "instrument id {bad} is outside the dictionary of {}",
                instruments.len()
            )));
        }
        let mut seen = std::collections::HashSet::with_capacity(instruments.len());
        if let Some(dup) = instruments.iter().find(|s| !seen.insert(s.as_str())) {
            return Err(TableError::Shape(format!(
                "instrument `{dup}` twice in the dictionary"
            )));
        }
        let mut names = Vec::with_capacity(columns.len());
        let mut values = Vec::with_capacity(columns.len());
        for (name, col) in columns {
            if col.len() != n {
                return Err(TableError::Shape(format!(
                    "column `{name}` has {} values for {n} rows",
                    col.len()
                )));
            }
            names.push(name);
            values.push(col);
        }
        Ok(PredTable {
            datetimes,
            instrument_ids,
            instruments,
            names,
            values,
        })
    }

    /// Takes the table apart: `(datetimes, instrument_ids, instruments, columns)`.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(self) -> (Vec<i64>, Vec<u32>, Vec<String>, Vec<(String, Vec<f64>)>) {
        let columns = self.names.into_iter().zip(self.values).collect();
        (
            self.datetimes,
            self.instrument_ids,
            self.instruments,
            columns,
        )
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.datetimes.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.datetimes.is_empty()
    }

    /// Names of the value columns, in order.
    pub fn column_names(&self) -> &[String] {
        &self.names
    }

    /// The values of the named column.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(&self.values[i])
    }

    /// The values of the `i`-th column (panics if out of range).
    pub fn column_at(&self, i: usize) -> &[f64] {
        &self.values[i]
    }

    /// Renames the value columns (same count, in order).
    pub fn set_column_names<S: Into<String>>(
        &mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<()> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.len() != self.names.len() {
            return Err(TableError::Shape(format!(
                "{} names for {} columns",
                names.len(),
                self.names.len()
            )));
        }
        self.names = names;
        Ok(())
    }

    /// Datetimes of all rows, nanoseconds since the epoch.
    pub fn datetimes_ns(&self) -> &[i64] {
        &self.datetimes
    }

    /// The datetime of row `row`.
    pub fn datetime(&self, row: usize) -> NaiveDateTime {
        ns_to_datetime(self.datetimes[row])
    }

    /// The instrument of row `row`.
    pub fn instrument(&self, row: usize) -> &str {
        &self.instruments[self.instrument_ids[row] as usize]
    }

    /// Instrument ids of all rows (indexes into [`PredTable::instruments`]).
    pub fn instrument_ids(&self) -> &[u32] {
        &self.instrument_ids
    }

    /// The instrument dictionary (sorted ascending after [`PredTable::sort`]).
    pub fn instruments(&self) -> &[String] {
        &self.instruments
    }

    /// Earliest and latest datetime, `None` for an empty table.
    pub fn datetime_range(&self) -> Option<(NaiveDateTime, NaiveDateTime)> {
        let min = self.datetimes.iter().min()?;
        let max = self.datetimes.iter().max()?;
        Some((ns_to_datetime(*min), ns_to_datetime(*max)))
    }

    /// Whether rows are in ascending `(datetime, instrument)` order (ties allowed).
    pub fn is_sorted(&self) -> bool {
        let rank = self.dictionary_ranks();
        (1..self.len()).all(|i| self.key(&rank, i - 1) <= self.key(&rank, i))
    }

    /// Sorts rows by `(datetime, instrument)`, stably (equal keys keep their order), and
    /// reorders the dictionary ascending so that id order is instrument order.
    pub fn sort(&mut self) {
        let rank = self.dictionary_ranks();
        for id in &mut self.instrument_ids {
            *id = rank[*id as usize];
        }
        let mut sorted_dict = vec![String::new(); self.instruments.len()];
        for (old, name) in std::mem::take(&mut self.instruments)
            .into_iter()
            .enumerate()
        {
            sorted_dict[rank[old] as usize] = name;
        }
        self.instruments = sorted_dict;
        let ordered = (1..self.len()).all(|i| {
            (self.datetimes[i - 1], self.instrument_ids[i - 1])
                <= (self.datetimes[i], self.instrument_ids[i])
        });
        if ordered {
            return;
        }
        // The row index in the key makes keys unique, so an unstable sort is stable here.
        let mut keys: Vec<(i64, u32, u32)> = (0..self.len())
            .map(|i| (self.datetimes[i], self.instrument_ids[i], i as u32))
            .collect();
        keys.sort_unstable();
        let order: Vec<u32> = keys.iter().map(|k| k.2).collect();
        drop(keys);
        self.datetimes = order.iter().map(|&i| self.datetimes[i as usize]).collect();
        self.instrument_ids = order
            .iter()
            .map(|&i| self.instrument_ids[i as usize])
            .collect();
        for col in &mut self.values {
            *col = order.iter().map(|&i| col[i as usize]).collect();
        }
    }

    /// For each dictionary id, its position in the sorted dictionary.
    fn dictionary_ranks(&self) -> Vec<u32> {
        let mut by_name: Vec<u32> = (0..self.instruments.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| {
            self.instruments[a as usize].cmp(&self.instruments[b as usize])
        });
        let mut rank = vec![0u32; by_name.len()];
        for (pos, id) in by_name.into_iter().enumerate() {
            rank[id as usize] = pos as u32;
        }
        rank
    }

    fn key(&self, rank: &[u32], row: usize) -> (i64, u32) {
        (self.datetimes[row], rank[self.instrument_ids[row] as usize])
    }

    pub(crate) fn values_mut(&mut self) -> &mut Vec<Vec<f64>> {
        &mut self.values
    }
}

/// Builds a [`PredTable`] row by row, interning instrument names.
#[derive(Debug, Default)]
pub struct TableBuilder {
    table: PredTable,
    ids: HashMap<String, u32>,
}

impl TableBuilder {
    /// A builder for a table with these value columns.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        TableBuilder {
            table: PredTable::empty(columns),
            ids: HashMap::new(),
        }
    }

    /// Reserves room for `rows` more rows.
    pub fn reserve(&mut self, rows: usize) {
        self.table.datetimes.reserve(rows);
        self.table.instrument_ids.reserve(rows);
        for col in self.table.values_mut() {
            col.reserve(rows);
        }
    }

    /// Appends a row; `values` has one value per column.
    pub fn push(
        &mut self,
        datetime: NaiveDateTime,
        instrument: &str,
        values: &[f64],
    ) -> Result<()> {
        self.push_ns(datetime_to_ns(datetime)?, instrument, values)
    }

    /// Appends a row whose datetime is nanoseconds since the epoch.
    pub fn push_ns(&mut self, datetime_ns: i64, instrument: &str, values: &[f64]) -> Result<()> {
        if values.len() != self.table.names.len() {
            return Err(TableError::Shape(format!(
                "{} values for {} columns ({})",
                values.len(),
                self.table.names.len(),
                self.table.names.join(", ")
            )));
        }
        let id = match self.ids.get(instrument) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.table.instruments.len())
                    .map_err(|_| TableError::Shape("more than 2^32 instruments".into()))?;
                self.ids.insert(instrument.to_string(), id);
                self.table.instruments.push(instrument.to_string());
                id
            }
        };
        self.table.datetimes.push(datetime_ns);
        self.table.instrument_ids.push(id);
        for (col, v) in self.table.values.iter_mut().zip(values) {
            col.push(*v);
        }
        Ok(())
    }

    /// Number of rows so far.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no row was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The table, rows in the order pushed.
    pub fn finish(self) -> PredTable {
        self.table
    }
}
