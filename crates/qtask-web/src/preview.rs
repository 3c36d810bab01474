//! The first rows of any Parquet file as text, for the artifact preview.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// What a preview shows.
pub(crate) struct Preview {
    /// `(name, type)` per column.
    pub columns: Vec<(String, String)>,
    /// Whether each column holds numbers (right-aligned).
    pub numeric: Vec<bool>,
    /// The first rows, every value as text.
    pub rows: Vec<Vec<String>>,
    /// Rows in the file.
    pub total_rows: u64,
}

/// Reads the first `max_rows` rows of a Parquet file.
pub(crate) fn parquet(bytes: &[u8], max_rows: usize) -> Result<Preview, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes))
        .map_err(|e| e.to_string())?;
    let total_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(max_rows.max(1))
        .with_limit(max_rows)
        .build()
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        for r in 0..batch.num_rows() {
            rows.push(batch.columns().iter().map(|c| cell(c, r)).collect());
        }
    }
    rows.truncate(max_rows);
    Ok(Preview {
        columns: schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect(),
        numeric: schema
            .fields()
            .iter()
            .map(|f| f.data_type().is_numeric())
            .collect(),
        rows,
        total_rows,
    })
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        qtask_report::fmt_sig4(Some(v))
    }
}

/// Timestamps as UTC date-times (a midnight shows as the date alone).
fn timestamp(v: i64, unit: &TimeUnit) -> String {
    let ns = match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000_000),
        TimeUnit::Microsecond => v.saturating_mul(1_000),
        TimeUnit::Nanosecond => v,
    };
    let t = chrono::DateTime::from_timestamp_nanos(ns).naive_utc();
    if t.time() == chrono::NaiveTime::MIN {
        t.date().to_string()
    } else {
        t.to_string()
    }
}

/// One value as text.
fn cell(col: &ArrayRef, row: usize) -> String {
    if col.is_null(row) {
        return String::new();
    }
    match col.data_type() {
        DataType::Boolean => col.as_boolean().value(row).to_string(),
        DataType::Int8 => col.as_primitive::<Int8Type>().value(row).to_string(),
        DataType::Int16 => col.as_primitive::<Int16Type>().value(row).to_string(),
        DataType::Int32 => col.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => col.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::UInt8 => col.as_primitive::<UInt8Type>().value(row).to_string(),
        DataType::UInt16 => col.as_primitive::<UInt16Type>().value(row).to_string(),
        DataType::UInt32 => col.as_primitive::<UInt32Type>().value(row).to_string(),
        DataType::UInt64 => col.as_primitive::<UInt64Type>().value(row).to_string(),
        DataType::Float32 => float(f64::from(col.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(col.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => col.as_string::<i32>().value(row).to_string(),
        DataType::LargeUtf8 => col.as_string::<i64>().value(row).to_string(),
        DataType::Utf8View => col.as_string_view().value(row).to_string(),
        DataType::Date32 => {
            let d = col
                .as_primitive::<arrow_array::types::Date32Type>()
                .value(row);
            chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)
                .map_or_else(|| d.to_string(), |d| d.to_string())
        }
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => col
                    .as_primitive::<arrow_array::types::TimestampSecondType>()
                    .value(row),
                TimeUnit::Millisecond => col
                    .as_primitive::<arrow_array::types::TimestampMillisecondType>()
                    .value(row),
                TimeUnit::Microsecond => col
                    .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
                    .value(row),
                TimeUnit::Nanosecond => col
                    .as_primitive::<arrow_array::types::TimestampNanosecondType>()
                    .value(row),
            };
            timestamp(v, unit)
        }
        DataType::Dictionary(_, _) => match col.as_any_dictionary_opt() {
            Some(d) => {
                let key = d.normalized_keys()[row];
                cell(d.values(), key)
            }
            None => "…".into(),
        },
        other => format!("({other})"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;

    use super::*;

    #[test]
    fn first_rows_of_a_prediction_table() {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "datetime",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("instrument", DataType::Utf8, false),
            Field::new("score", DataType::Float64, true),
        ]));
        let n = 120;
        let day = 86_400_000_000_000i64;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(TimestampNanosecondArray::from(
                    (0..n).map(|i| 18_262 * day + i * day).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    (0..n).map(|i| format!("SH{i:06}")).collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(
                    (0..n)
                        .map(|i| if i == 1 { None } else { Some(i as f64 / 8.0) })
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let p = parquet(&buf, 50).unwrap();
        assert_eq!(p.total_rows, 120);
        assert_eq!(p.rows.len(), 50);
        assert_eq!(p.columns[0].0, "datetime");
        assert_eq!(p.numeric, [false, false, true]);
        assert_eq!(p.rows[0], ["2020-01-01", "SH000000", "0"]);
        assert_eq!(p.rows[1], ["2020-01-02", "SH000001", ""]);
        assert_eq!(p.rows[2][2], "0.2500");
        assert!(parquet(b"not parquet", 5).is_err());
    }
}
