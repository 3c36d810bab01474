//! Qlib's data layer for qtask: the binary provider layout, the expression engine, the
//! Alpha158/Alpha360 handlers, processors and the segment-sliced dataset, plus a synthetic
//! market generator and a CSV importer.
#![warn(missing_docs)]

pub mod alpha;
pub mod binfile;
pub mod cache;
pub mod dataset;
pub mod error;
pub mod expr;
pub mod features;
pub mod filter;
pub mod frame;
pub mod handler;
pub mod import;
pub mod npstat;
pub mod pit;
pub mod processor;
pub mod provider;
pub mod synth;

pub use chrono::NaiveDate;
pub use error::{DataError, Result};
pub use expr::Program;
pub use features::{Query, compute};
pub use frame::Frame;
pub use provider::{Instruments, Provider};
