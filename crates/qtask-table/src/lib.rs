//! qtask-table: prediction tables, the long tables Qlib keeps predictions and labels in.
//!
//! A [`PredTable`] holds rows keyed by `(datetime, instrument)` with one or more named `f64`
//! value columns (NaN allowed). It is columnar:
//!
//! - datetimes are `i64` **nanoseconds since the Unix epoch**, naive (no time zone), the same
//!   values pandas keeps in a `datetime64[ns]` column; [`ns_to_datetime`] and
//!   [`datetime_to_ns`] convert to and from [`chrono::NaiveDateTime`];
//! - instruments are interned: one `u32` id per row into a per-table dictionary of strings;
//! - each value column is a `Vec<f64>`.
//!
//! Parquet files written here read in pandas (`pd.read_parquet`) as a frame indexed by
//! `(datetime, instrument)` like Qlib's prediction frames; files pandas wrote read back here.
//! CSV output is for people and spreadsheets.
//!
//! ```
//! use qtask_table::{PredTable, TableBuilder};
//! let mut b = TableBuilder::new(["score"]);
//! let day = chrono::NaiveDate::from_ymd_opt(2020, 1, 2).unwrap().and_hms_opt(0, 0, 0).unwrap();
//! b.push(day, "SH600000", &[0.5]).unwrap();
//! let table = b.finish();
//! let bytes = table.to_parquet_bytes().unwrap();
//! let back = PredTable::from_parquet_bytes(&bytes).unwrap();
//! assert_eq!(back.instrument(0), "SH600000");
//! ```

#![warn(missing_docs)]

mod csv;
mod date_frame;
mod error;
mod parquet_io;
mod series;
mod table;
mod time;

pub use date_frame::DateFrame;
pub use error::{Result, TableError};
pub use series::DateSeries;
pub use table::{PredTable, TableBuilder};
pub use time::{datetime_to_ns, ns_to_datetime};

/// Name of the datetime key column in files.
pub const DATETIME: &str = "datetime";
/// Name of the instrument key column in files.
pub const INSTRUMENT: &str = "instrument";
