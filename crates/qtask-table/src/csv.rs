//! CSV output, formatted the way pandas' `to_csv` formats a prediction frame.

use std::io::Write;
use std::path::Path;

use crate::time::NS_PER_DAY;
use crate::{DATETIME, INSTRUMENT, PredTable, Result, TableError};

impl PredTable {
    /// Writes the table as CSV to `path` (atomically, like [`PredTable::write_parquet`]).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut bytes = Vec::new();
        self.write_csv_to(&mut bytes)
            .map_err(|error| TableError::Io {
                path: path.to_path_buf(),
                error,
            })?;
        crate::parquet_io::write_atomic(path, &bytes)
    }

    /// Writes the table as CSV: header `datetime,instrument,<columns>`, one line per row.
    ///
    /// Datetimes print as `YYYY-MM-DD` when every row is at midnight, else as
    /// `YYYY-MM-DD HH:MM:SS[.fraction]`; floats print as Python's `repr` does; NaN is empty.
    pub fn write_csv_to<W: Write>(&self, writer: W) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(writer);
        write!(w, "{DATETIME},{INSTRUMENT}")?;
        for name in self.column_names() {
            write!(w, ",{}", quote(name))?;
        }
        writeln!(w)?;
        let dates_only = self
            .datetimes_ns()
            .iter()
            .all(|ns| ns.rem_euclid(NS_PER_DAY) == 0);
        let mut line = String::new();
        for row in 0..self.len() {
            line.clear();
            let dt = self.datetime(row);
            if dates_only {
                line.push_str(&dt.format("%Y-%m-%d").to_string());
            } else {
                line.push_str(&dt.format("%Y-%m-%d %H:%M:%S%.f").to_string());
            }
            line.push(',');
            line.push_str(&quote(self.instrument(row)));
            for col in 0..self.column_names().len() {
                line.push(',');
                let v = self.column_at(col)[row];
                if !v.is_nan() {
                    line.push_str(&python_repr(v));
                }
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        w.flush()
    }
}

/// Quotes a CSV field when it holds a separator, a quote or a line break.
fn quote(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Formats a finite or infinite float like Python's `repr` (shortest round-trip digits,
/// scientific below 1e-4 and from 1e16), so CSVs match what pandas writes.
pub(crate) fn python_repr(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits: "d.ddde-7".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::python_repr;

    #[test]
    fn floats_print_like_python_repr() {
        // Expected strings are Python's repr() of the same literals.
        let cases = [
            (0.1, "0.1"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (100.0, "100.0"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (1.5e-07, "1.5e-07"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.30000000000000004, "0.30000000000000004"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (123.456, "123.456"),
            (2.5e100, "2.5e+100"),
        ];
        for (v, want) in cases {
            assert_eq!(python_repr(v), want, "{v:e}");
        }
    }
}
