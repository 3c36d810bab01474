//! Date-indexed frames (one row per day, several float columns, e.g. a backtest's daily
//! report), in the Parquet layout pandas uses for a frame indexed by `datetime` alone.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::{DATETIME, Result, TableError};

/// Float columns keyed by datetime (nanoseconds since the epoch, naive).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DateFrame {
    /// Per row: the datetime in nanoseconds.
    pub datetimes_ns: Vec<i64>,
    /// Named columns, each with one value per row (NaN allowed).
    pub columns: Vec<(String, Vec<f64>)>,
}

impl DateFrame {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The frame as Parquet bytes (`pd.read_parquet` gives a frame indexed by `datetime`).
    pub fn to_parquet_bytes(&self) -> Result<Vec<u8>> {
        for (name, values) in &self.columns {
            if values.len() != self.datetimes_ns.len() {
                return Err(TableError::Shape(format!(
                    "column `{name}`: {} values for {} datetimes",
                    values.len(),
                    self.datetimes_ns.len()
                )));
            }
        }
        let field = |n: &str| serde_json::json!({"name": n, "field_name": n, "metadata": null});
        let mut cols: Vec<serde_json::Value> = self
            .columns
            .iter()
            .map(|(n, _)| {
                let mut c = field(n);
                c["pandas_type"] = "float64".into();
                c["numpy_type"] = "float64".into();
                c
            })
            .collect();
        let mut dt_col = field(DATETIME);
        dt_col["pandas_type"] = "datetime".into();
        dt_col["numpy_type"] = "datetime64[ns]".into();
        cols.push(dt_col);
        let pandas = serde_json::json!({
            "index_columns": [DATETIME],
            "column_indexes": [{"name": null, "field_name": null, "pandas_type": "unicode",
                "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
            "columns": cols,
            "creator": {"library": "qtask", "version": env!("CARGO_PKG_VERSION")},
            "pandas_version": "2.2.3"
        })
        .to_string();
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(n, _)| Field::new(n, DataType::Float64, true))
            .collect();
        fields.push(Field::new(
            DATETIME,
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ));
        let schema = Arc::new(Schema::new(fields));
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|(_, v)| Arc::new(Float64Array::from(v.clone())) as ArrayRef)
            .collect();
        arrays.push(Arc::new(TimestampNanosecondArray::from(
            self.datetimes_ns.clone(),
        )));
        let batch = RecordBatch::try_new(schema.clone(), arrays)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(vec![KeyValue::new("pandas".into(), pandas)]))
            .build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, schema, Some(props))?;
        w.write(&batch)?;
        w.close()?;
        Ok(out)
    }

    /// Reads a frame written by [`DateFrame::to_parquet_bytes`] (or by pandas): the
    /// `datetime` column (timestamp[ns]) and every float64 column.
    pub fn from_parquet_bytes(bytes: &[u8]) -> Result<DateFrame> {
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))?;
        let schema = builder.schema().clone();
        let dt = schema
            .index_of(DATETIME)
            .map_err(|_| TableError::MissingColumn {
                column: DATETIME,
                found: schema.fields().iter().map(|f| f.name().clone()).collect(),
            })?;
        let value_cols: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| i != dt && schema.field(i).data_type() == &DataType::Float64)
            .collect();
        let mut f = DateFrame {
            datetimes_ns: Vec::new(),
            columns: value_cols
                .iter()
                .map(|&i| (schema.field(i).name().clone(), Vec::new()))
                .collect(),
        };
        for batch in builder.build()? {
            let batch = batch?;
            let d = batch
                .column(dt)
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .ok_or_else(|| TableError::Shape("`datetime` is not timestamp[ns]".into()))?;
            f.datetimes_ns.extend(d.values().iter().copied());
            for (k, &i) in value_cols.iter().enumerate() {
                let v = batch.column(i).as_primitive::<Float64Type>();
                f.columns[k]
                    .1
                    .extend((0..v.len()).map(|j| if v.is_null(j) { f64::NAN } else { v.value(j) }));
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_columns_in_order() {
        let f = DateFrame {
            datetimes_ns: vec![0, 86_400_000_000_000],
            columns: vec![
                ("account".into(), vec![1.0, 2.0]),
                ("return".into(), vec![f64::NAN, -0.5]),
            ],
        };
        let back = DateFrame::from_parquet_bytes(&f.to_parquet_bytes().unwrap()).unwrap();
        assert_eq!(back.datetimes_ns, f.datetimes_ns);
        assert_eq!(back.columns[0], f.columns[0]);
        assert_eq!(back.columns[1].0, "return");
        assert!(back.columns[1].1[0].is_nan());
        assert_eq!(back.column("return").unwrap()[1], -0.5);
    }

    #[test]
    fn refuses_ragged_columns() {
        let f = DateFrame {
            datetimes_ns: vec![0],
            columns: vec![("a".into(), vec![1.0, 2.0])],
        };
        assert!(f.to_parquet_bytes().is_err());
    }
}
