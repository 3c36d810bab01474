//! Qlib's `.bin` feature files: little-endian f32, the first value is the calendar index of
//! the second.

use std::path::Path;

use crate::error::{DataError, Result};

/// One field of one instrument as stored: values from calendar index `start` on.
#[derive(Debug, Clone, PartialEq)]
pub struct BinSeries {
    /// Calendar index of `values[0]`.
    pub start: usize,
    /// The stored values (NaN for missing days).
    pub values: Vec<f32>,
}

impl BinSeries {
    /// Calendar index one past the last value.
    pub fn end(&self) -> usize {
        self.start + self.values.len()
    }
}

/// Reads a whole `.bin` file; a size that is not a whole number of f32 or a header that is not
/// a calendar index is an error naming the file.
pub fn read_bin(path: &Path) -> Result<BinSeries> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_bin(path, &bytes)
}

/// Parses the bytes of a `.bin` file (`path` is only used in error messages).
pub fn parse_bin(path: &Path, bytes: &[u8]) -> Result<BinSeries> {
    if bytes.len() < 4 {
        return Err(DataError::format(
            path,
            format!(
                "truncated .bin file ({} bytes, need at least 4)",
                bytes.len()
            ),
        ));
    }
    if !bytes.len().is_multiple_of(4) {
        return Err(DataError::format(
            path,
            format!(
                "truncated .bin file ({} bytes is not a whole number of 4-byte values)",
                bytes.len()
            ),
        ));
    }
    let mut it = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let head = it.next().unwrap_or(f32::NAN);
    if !(head.is_finite() && head >= 0.0 && head.fract() == 0.0) {
        return Err(DataError::format(
            path,
            format!("first value {head} is not a calendar index"),
        ));
    }
    Ok(BinSeries {
        start: head as usize,
        values: it.collect(),
    })
}

/// Writes a `.bin` file atomically (temporary sibling, then rename).
pub fn write_bin(path: &Path, series: &BinSeries) -> Result<()> {
    let mut bytes = Vec::with_capacity(4 * (series.values.len() + 1));
    bytes.extend_from_slice(&(series.start as f32).to_le_bytes());
    for v in &series.values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees a
/// half-written file and a failure leaves the old file in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    qtask_core::fsutil::write_atomic(path, bytes).map_err(|e| DataError::io(path, e))
}
