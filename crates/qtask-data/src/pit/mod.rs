//! Qlib's point-in-time (PIT) financial database: `financial/<symbol>/<field>_q|_a.data` and
//! `.index` files, their writer (Qlib's `dump_pit.py`) and the daily values of `P(...)` and
//! `PRef(...)` expressions.

pub mod daily;
pub mod format;
pub mod import;
pub mod period;
pub mod timeline;
pub mod writer;

pub use daily::{PitColumns, pit_columns};
pub use format::{NA_INDEX, PitFile, RECORD_SIZE, Record, pit_paths, read_pit};
pub use import::{ImportSummary, PitRow, import_pit_csv, parse_pit_csv};
pub use period::Interval;
pub use timeline::Timeline;
pub use writer::{Appended, Publication, append_rows};
