//! Date-indexed series (one value per day, e.g. a daily IC), in the Parquet layout pandas uses
//! for a frame indexed by `datetime` alone.

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

/// A float series keyed by datetime (nanoseconds since the epoch, naive).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DateSeries {
    /// The column name (`IC`, `Rank IC`, ...).
    pub name: String,
    /// Per row: the datetime in nanoseconds.
    pub datetimes_ns: Vec<i64>,
    /// Per row: the value (NaN allowed).
    pub values: Vec<f64>,
}

impl DateSeries {
    /// The series as Parquet bytes (`pd.read_parquet` gives a one-column frame indexed by
    /// `datetime`).
    pub fn to_parquet_bytes(&self) -> Result<Vec<u8>> {
        if self.datetimes_ns.len() != self.values.len() {
            return Err(TableError::Shape(format!(
                "series `{}`: {} datetimes but {} values",
                self.name,
                self.datetimes_ns.len(),
                self.values.len()
            )));
        }
        let field = |n: &str| serde_json::json!({"name": n, "field_name": n, "metadata": null});
        let mut value_col = field(&self.name);
        value_col["pandas_type"] = "float64".into();
        value_col["numpy_type"] = "float64".into();
        let mut dt_col = field(DATETIME);
        dt_col["pandas_type"] = "datetime".into();
        dt_col["numpy_type"] = "datetime64[ns]".into();
        let pandas = serde_json::json!({
            "index_columns": [DATETIME],
            "column_indexes": [{"name": null, "field_name": null, "pandas_type": "unicode",
                "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
            "columns": [value_col, dt_col],
            "creator": {"library": "qtask", "version": env!("CARGO_PKG_VERSION")},
            "pandas_version": "2.2.3"
        })
        .to_string();
        let schema = Arc::new(Schema::new(vec![
            Field::new(&self.name, DataType::Float64, true),
            Field::new(
                DATETIME,
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
        ]));
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(self.values.clone())),
            Arc::new(TimestampNanosecondArray::from(self.datetimes_ns.clone())),
        ];
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

    /// Reads a series written by [`DateSeries::to_parquet_bytes`]: the `datetime` column
    /// (timestamp[ns]) and the first float64 column.
    pub fn from_parquet_bytes(bytes: &[u8]) -> Result<DateSeries> {
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))?;
        let schema = builder.schema().clone();
        let dt = schema
            .index_of(DATETIME)
            .map_err(|_| TableError::MissingColumn {
                column: DATETIME,
                found: schema.fields().iter().map(|f| f.name().clone()).collect(),
            })?;
        let val = (0..schema.fields().len())
            .find(|&i| i != dt && schema.field(i).data_type() == &DataType::Float64)
            .ok_or_else(|| TableError::Shape("series file has no float64 column".into()))?;
        let mut s = DateSeries {
            name: schema.field(val).name().clone(),
            ..Default::default()
        };
        for batch in builder.build()? {
            let batch = batch?;
            let d = batch
                .column(dt)
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .ok_or_else(|| TableError::Shape("`datetime` is not timestamp[ns]".into()))?;
            s.datetimes_ns.extend(d.values().iter().copied());
            let v = batch.column(val).as_primitive::<Float64Type>();
            s.values
                .extend((0..v.len()).map(|i| if v.is_null(i) { f64::NAN } else { v.value(i) }));
        }
        Ok(s)
    }
}
