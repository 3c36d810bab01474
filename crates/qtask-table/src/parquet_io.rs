//! Parquet in and out, laid out the way pandas reads and writes prediction frames.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::ChunkReader;

use crate::{DATETIME, INSTRUMENT, PredTable, Result, TableError};

/// Rows per record batch when writing: bounds the temporary Arrow copy.
const WRITE_BATCH: usize = 64 * 1024;

impl PredTable {
    /// The table as a Parquet file in memory (snappy-compressed).
    pub fn to_parquet_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_parquet_to(&mut out)?;
        Ok(out)
    }

    /// Writes the table as Parquet to `path`, through a temporary file and a rename so that
    /// a reader never sees half a file.
    pub fn write_parquet(&self, path: &Path) -> Result<()> {
        let bytes = self.to_parquet_bytes().map_err(|e| e.in_file(path))?;
        write_atomic(path, &bytes)
    }

    /// Writes the table as Parquet to any writer.
    ///
    /// Columns: `datetime` (timestamp\[ns\], no time zone), `instrument` (utf8), then the value
    /// columns (float64); the schema carries pandas metadata naming `datetime` and
    /// `instrument` as the index, so `pd.read_parquet` returns a frame indexed by them.
    pub fn write_parquet_to<W: std::io::Write + Send>(&self, writer: W) -> Result<()> {
        let schema = Arc::new(self.arrow_schema());
        let pandas = schema.metadata().get("pandas").cloned().unwrap_or_default();
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(vec![KeyValue::new("pandas".into(), pandas)]))
            .build();
        let mut w = ArrowWriter::try_new(writer, schema.clone(), Some(props))?;
        let mut start = 0;
        loop {
            let end = (start + WRITE_BATCH).min(self.len());
            let batch = self.record_batch(schema.clone(), start, end)?;
            w.write(&batch)?;
            start = end;
            if start >= self.len() {
                break;
            }
        }
        w.close()?;
        Ok(())
    }

    fn arrow_schema(&self) -> Schema {
        let mut fields = vec![
            Field::new(
                DATETIME,
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new(INSTRUMENT, DataType::Utf8, false),
        ];
        for name in self.column_names() {
            fields.push(Field::new(name, DataType::Float64, true));
        }
        let meta = HashMap::from([("pandas".to_string(), self.pandas_metadata())]);
        Schema::new_with_metadata(fields, meta)
    }

    /// The `pandas` schema metadata pyarrow writes for a frame indexed by
    /// (datetime, instrument) with float64 columns.
    fn pandas_metadata(&self) -> String {
        let col = |name: &str, pandas_type: &str, numpy_type: &str| {
            serde_json::json!({
                "name": name, "field_name": name, "pandas_type": pandas_type,
                "numpy_type": numpy_type, "metadata": null
            })
        };
        let mut columns: Vec<serde_json::Value> = self
            .column_names()
            .iter()
            .map(|n| col(n, "float64", "float64"))
            .collect();
        columns.push(col(DATETIME, "datetime", "datetime64[ns]"));
        columns.push(col(INSTRUMENT, "unicode", "object"));
        serde_json::json!({
            "index_columns": [DATETIME, INSTRUMENT],
            "column_indexes": [{
                "name": null, "field_name": null, "pandas_type": "unicode",
                "numpy_type": "object", "metadata": {"encoding": "UTF-8"}
            }],
            "columns": columns,
            "creator": {"library": "qtask", "version": env!("CARGO_PKG_VERSION")},
            "pandas_version": "2.2.3"
        })
        .to_string()
    }

    fn record_batch(&self, schema: Arc<Schema>, start: usize, end: usize) -> Result<RecordBatch> {
        let dts = TimestampNanosecondArray::from_iter_values(
            self.datetimes_ns()[start..end].iter().copied(),
        );
        let names = self.instruments();
        let insts = StringArray::from_iter_values(
            self.instrument_ids()[start..end]
                .iter()
                .map(|&id| names[id as usize].as_str()),
        );
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(dts), Arc::new(insts)];
        for i in 0..self.column_names().len() {
            let vals =
                Float64Array::from_iter_values(self.column_at(i)[start..end].iter().copied());
            arrays.push(Arc::new(vals));
        }
        Ok(RecordBatch::try_new(schema, arrays)?)
    }

    /// Reads a table from a Parquet file in memory (see [`PredTable::read_parquet`]).
    pub fn from_parquet_bytes(bytes: &[u8]) -> Result<Self> {
        read_from(bytes::Bytes::copy_from_slice(bytes))
    }

    /// Reads a table from a Parquet file: qtask's own or one pandas wrote.
    ///
    /// `datetime` may be a timestamp of any unit (a time zone is dropped, keeping the UTC
    /// value) or a date; `instrument` a string, large string, string view or a dictionary of
    /// strings. Every other column is a value column and must be numeric (nulls become NaN),
    /// except pandas index columns other than the two keys (e.g. `__index_level_0__`), which
    /// are skipped. Rows keep the file's order.
    pub fn read_parquet(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|error| TableError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        read_from(file).map_err(|e| e.in_file(path))
    }
}

fn read_from<R: ChunkReader + 'static>(reader: R) -> Result<PredTable> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(reader)?;
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let find = |column: &'static str| {
        names
            .iter()
            .position(|n| n == column)
            .ok_or_else(|| TableError::MissingColumn {
                column,
                found: names.clone(),
            })
    };
    let dt_col = find(DATETIME)?;
    let inst_col = find(INSTRUMENT)?;
    let skipped = other_index_columns(&schema);
    let value_cols: Vec<usize> = (0..names.len())
        .filter(|&i| i != dt_col && i != inst_col)
        .filter(|&i| !skipped.contains(&names[i]) && !names[i].starts_with("__index_level_"))
        .collect();
    for &i in &value_cols {
        let dt = schema.field(i).data_type();
        if !is_numeric(dt) {
            return Err(TableError::ColumnType {
                column: names[i].clone(),
                found: dt.to_string(),
                expected: "a number (value columns are float64)",
            });
        }
    }
    let unit = datetime_unit(schema.field(dt_col).data_type())?;
    check_instrument_type(schema.field(inst_col).data_type())?;

    let rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
    let mut datetimes = Vec::with_capacity(rows);
    let mut ids = Vec::with_capacity(rows);
    let mut dictionary: Vec<String> = Vec::new();
    let mut interned: HashMap<String, u32> = HashMap::new();
    let mut values: Vec<Vec<f64>> = value_cols
        .iter()
        .map(|_| Vec::with_capacity(rows))
        .collect();

    for batch in builder.build()? {
        let batch = batch?;
        let offset = datetimes.len();
        read_datetimes(batch.column(dt_col).as_ref(), unit, offset, &mut datetimes)?;
        read_instruments(
            batch.column(inst_col).as_ref(),
            offset,
            &mut ids,
            &mut dictionary,
            &mut interned,
        )?;
        for (out, &i) in values.iter_mut().zip(&value_cols) {
            read_values(batch.column(i).as_ref(), out);
        }
    }
    let columns = value_cols
        .iter()
        .map(|&i| names[i].clone())
        .zip(values)
        .collect();
    PredTable::from_parts(datetimes, ids, dictionary, columns)
}

/// Index columns pandas recorded besides the two keys (they are not values).
fn other_index_columns(schema: &Schema) -> Vec<String> {
    let Some(text) = schema.metadata().get("pandas") else {
        return Vec::new();
    };
    let Ok(meta) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    meta["index_columns"]
        .as_array()
        .map(|cols| {
            cols.iter()
                .filter_map(|c| c.as_str())
                .filter(|c| *c != DATETIME && *c != INSTRUMENT)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn is_numeric(dt: &DataType) -> bool {
    use DataType::*;
    matches!(
        dt,
        Float64 | Float32 | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
    )
}

/// Nanoseconds per unit of the datetime column.
fn datetime_unit(dt: &DataType) -> Result<i64> {
    match dt {
        DataType::Timestamp(unit, _) => Ok(match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        }),
        DataType::Date32 => Ok(crate::time::NS_PER_DAY),
        DataType::Date64 => Ok(1_000_000),
        other => Err(TableError::ColumnType {
            column: DATETIME.into(),
            found: other.to_string(),
            expected: "a timestamp or a date",
        }),
    }
}

fn check_instrument_type(dt: &DataType) -> Result<()> {
    let is_string =
        |d: &DataType| matches!(d, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    let ok = match dt {
        DataType::Dictionary(_, v) => is_string(v),
        d => is_string(d),
    };
    if ok {
        Ok(())
    } else {
        Err(TableError::ColumnType {
            column: INSTRUMENT.into(),
            found: dt.to_string(),
            expected: "a string",
        })
    }
}

fn read_datetimes(array: &dyn Array, unit: i64, offset: usize, out: &mut Vec<i64>) -> Result<()> {
    if let Some(row) = first_null(array) {
        return Err(TableError::NullKey {
            column: DATETIME,
            row: offset + row,
        });
    }
    let raw: Vec<i64> = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => array
            .as_primitive::<arrow_array::types::TimestampSecondType>()
            .values()
            .to_vec(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => array
            .as_primitive::<arrow_array::types::TimestampMillisecondType>()
            .values()
            .to_vec(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => array
            .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
            .values()
            .to_vec(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => array
            .as_primitive::<arrow_array::types::TimestampNanosecondType>()
            .values()
            .to_vec(),
        DataType::Date32 => array
            .as_primitive::<arrow_array::types::Date32Type>()
            .values()
            .iter()
            .map(|&d| i64::from(d))
            .collect(),
        DataType::Date64 => array
            .as_primitive::<arrow_array::types::Date64Type>()
            .values()
            .to_vec(),
        other => unreachable!("checked before reading: {other}"),
    };
    for (row, v) in raw.into_iter().enumerate() {
        let ns = v.checked_mul(unit).ok_or_else(|| {
            TableError::DatetimeRange(format!("{v} (row {}, {unit} ns units)", offset + row))
        })?;
        out.push(ns);
    }
    Ok(())
}

fn first_null(array: &dyn Array) -> Option<usize> {
    let nulls = array.logical_nulls()?;
    (0..array.len()).find(|&i| nulls.is_null(i))
}

fn read_instruments(
    array: &dyn Array,
    offset: usize,
    ids: &mut Vec<u32>,
    dictionary: &mut Vec<String>,
    interned: &mut HashMap<String, u32>,
) -> Result<()> {
    if let Some(row) = first_null(array) {
        return Err(TableError::NullKey {
            column: INSTRUMENT,
            row: offset + row,
        });
    }
    let mut intern = |s: &str| -> Result<u32> {
        if let Some(&id) = interned.get(s) {
            return Ok(id);
        }
        let id = u32::try_from(dictionary.len())
            .map_err(|_| TableError::Shape("more than 2^32 instruments".into()))?;
        interned.insert(s.to_string(), id);
        dictionary.push(s.to_string());
        Ok(id)
    };
    if let Some(dict) = array.as_any_dictionary_opt() {
        // Intern the dictionary once, then map keys: no per-row string hashing.
        let values = dict.values();
        let mut local = Vec::with_capacity(values.len());
        for i in 0..values.len() {
            local.push(intern(string_at(values.as_ref(), i))?);
        }
        ids.extend(dict.normalized_keys().into_iter().map(|k| local[k]));
        return Ok(());
    }
    for i in 0..array.len() {
        ids.push(intern(string_at(array, i))?);
    }
    Ok(())
}

fn string_at(array: &dyn Array, i: usize) -> &str {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(i),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i),
        DataType::Utf8View => array.as_string_view().value(i),
        other => unreachable!("checked before reading: {other}"),
    }
}

fn read_values(array: &dyn Array, out: &mut Vec<f64>) {
    macro_rules! push {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            out.extend(a.iter().map(|v| v.map_or(f64::NAN, |x| x as f64)));
        }};
    }
    match array.data_type() {
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            if a.null_count() == 0 {
                out.extend_from_slice(a.values());
            } else {
                out.extend(a.iter().map(|v| v.unwrap_or(f64::NAN)));
            }
        }
        DataType::Float32 => push!(Float32Type),
        DataType::Int8 => push!(Int8Type),
        DataType::Int16 => push!(Int16Type),
        DataType::Int32 => push!(Int32Type),
        DataType::Int64 => push!(Int64Type),
        DataType::UInt8 => push!(UInt8Type),
        DataType::UInt16 => push!(UInt16Type),
        DataType::UInt32 => push!(UInt32Type),
        DataType::UInt64 => push!(UInt64Type),
        other => unreachable!("checked before reading: {other}"),
    }
}

/// Writes `bytes` to a temporary sibling of `path`, then renames it over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    qtask_core::fsutil::write_atomic(path, bytes).map_err(|error| TableError::Io {
        path: path.to_path_buf(),
        error,
    })
}
