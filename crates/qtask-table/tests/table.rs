//! Building, sorting, Parquet and CSV round trips of prediction tables.

mod common;

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int64Array, LargeStringArray, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use common::{day, rows, same};
use parquet::arrow::ArrowWriter;
use qtask_table::{PredTable, TableBuilder, TableError, datetime_to_ns, ns_to_datetime};

fn sample() -> PredTable {
    let mut b = TableBuilder::new(["score", "label"]);
    b.push(day("2020-01-03"), "SZ000001", &[0.5, 1.0]).unwrap();
    b.push(day("2020-01-02"), "SH600000", &[f64::NAN, -2.0])
        .unwrap();
    b.push(day("2020-01-02"), "AAPL", &[0.25, f64::INFINITY])
        .unwrap();
    b.push(day("2020-01-03"), "SH600000", &[-1.5, 0.0]).unwrap();
    b.finish()
}

fn write_batch(schema: Schema, columns: Vec<ArrayRef>) -> Vec<u8> {
    let schema = Arc::new(schema);
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

#[test]
fn sort_orders_by_datetime_then_instrument_and_keeps_ties_in_order() {
    let mut b = TableBuilder::new(["v"]);
    b.push(day("2020-01-03"), "B", &[1.0]).unwrap();
    b.push(day("2020-01-02"), "B", &[2.0]).unwrap();
    b.push(day("2020-01-03"), "A", &[3.0]).unwrap();
    b.push(day("2020-01-02"), "B", &[4.0]).unwrap();
    b.push(day("2020-01-02"), "A", &[5.0]).unwrap();
    let mut t = b.finish();
    assert!(!t.is_sorted());
    t.sort();
    assert!(t.is_sorted());
    let got: Vec<(String, f64)> = (0..t.len())
        .map(|r| {
            (
                format!("{} {}", t.datetime(r).date(), t.instrument(r)),
                t.column_at(0)[r],
            )
        })
        .collect();
    let want = [
        ("2020-01-02 A", 5.0),
        ("2020-01-02 B", 2.0),
        ("2020-01-02 B", 4.0),
        ("2020-01-03 A", 3.0),
        ("2020-01-03 B", 1.0),
    ];
    let want: Vec<(String, f64)> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(got, want);
    assert_eq!(t.instruments(), ["A", "B"]);
}

#[test]
fn parquet_bytes_round_trip_keeps_rows_values_and_names() {
    let t = sample();
    let back = PredTable::from_parquet_bytes(&t.to_parquet_bytes().unwrap()).unwrap();
    assert_eq!(back.column_names(), ["score", "label"]);
    let (a, b) = (rows(&t), rows(&back));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, &x.1), (&y.0, &y.1));
        assert!(
            x.2.iter().zip(&y.2).all(|(p, q)| same(*p, *q)),
            "{x:?} vs {y:?}"
        );
    }
}

#[test]
fn parquet_file_round_trip_and_pandas_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pred.parquet");
    sample().write_parquet(&path).unwrap();
    // Only the file itself: the temporary sibling was renamed away.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let back = PredTable::read_parquet(&path).unwrap();
    assert_eq!(back.len(), 4);
    assert_eq!(back.instrument(2), "AAPL");

    let file = std::fs::File::open(&path).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = reader.schema();
    assert_eq!(
        schema.field_with_name("datetime").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Nanosecond, None)
    );
    assert_eq!(
        schema.field_with_name("instrument").unwrap().data_type(),
        &DataType::Utf8
    );
    let meta: serde_json::Value = serde_json::from_str(&schema.metadata()["pandas"]).unwrap();
    assert_eq!(
        meta["index_columns"],
        serde_json::json!(["datetime", "instrument"])
    );
}

#[test]
fn empty_table_round_trips() {
    let t = PredTable::empty(["score"]);
    let back = PredTable::from_parquet_bytes(&t.to_parquet_bytes().unwrap()).unwrap();
    assert!(back.is_empty());
    assert_eq!(back.column_names(), ["score"]);
    assert_eq!(back.datetime_range(), None);
}

#[test]
fn reads_a_pandas_style_file() {
    // What pyarrow writes for pandas: values first, microsecond timestamps, dictionary or
    // large strings, integer columns, nulls for NaN, and an extra unnamed index column.
    let keys = arrow_array::Int32Array::from(vec![1, 0, 1]);
    let dict_values = Arc::new(StringArray::from(vec!["SZ000001", "SH600000"]));
    let insts = DictionaryArray::<Int32Type>::try_new(keys, dict_values).unwrap();
    let us = |d: &str| datetime_to_ns(day(d)).unwrap() / 1000;
    let schema = Schema::new(vec![
        Field::new("score", DataType::Float64, true),
        Field::new("count", DataType::Int64, true),
        Field::new(
            "datetime",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new(
            "instrument",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("__index_level_0__", DataType::Int64, false),
    ]);
    let bytes = write_batch(
        schema,
        vec![
            Arc::new(Float64Array::from(vec![Some(0.5), None, Some(-1.0)])),
            Arc::new(Int64Array::from(vec![Some(3), Some(4), None])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                us("2020-01-02"),
                us("2020-01-02"),
                us("2020-01-03"),
            ])),
            Arc::new(insts),
            Arc::new(Int64Array::from(vec![0, 1, 2])),
        ],
    );
    let t = PredTable::from_parquet_bytes(&bytes).unwrap();
    assert_eq!(t.column_names(), ["score", "count"]);
    assert_eq!(t.instrument(0), "SH600000");
    assert_eq!(t.instrument(1), "SZ000001");
    assert_eq!(t.datetime(2), day("2020-01-03"));
    assert!(t.column("score").unwrap()[1].is_nan());
    assert_eq!(t.column("count").unwrap()[..2], [3.0, 4.0]);
    assert!(t.column("count").unwrap()[2].is_nan());
}

#[test]
fn reads_large_strings() {
    let schema = Schema::new(vec![
        Field::new(
            "datetime",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("instrument", DataType::LargeUtf8, false),
        Field::new("score", DataType::Float64, true),
    ]);
    let bytes = write_batch(
        schema,
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(vec![1_577_923_200_000_000]).with_timezone("UTC"),
            ),
            Arc::new(LargeStringArray::from(vec!["SH600000"])),
            Arc::new(Float64Array::from(vec![1.5])),
        ],
    );
    let t = PredTable::from_parquet_bytes(&bytes).unwrap();
    assert_eq!(t.datetime(0), day("2020-01-02"));
    assert_eq!(t.instrument(0), "SH600000");
}

#[test]
fn file_without_key_columns_is_a_clear_error() {
    let schema = Schema::new(vec![
        Field::new(
            "date",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("score", DataType::Float64, true),
    ]);
    let bytes = write_batch(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![0])),
            Arc::new(Float64Array::from(vec![1.0])),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nokeys.parquet");
    std::fs::write(&path, &bytes).unwrap();
    let err = PredTable::read_parquet(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("nokeys.parquet"), "{msg}");
    assert!(
        msg.contains("no `datetime` column (columns: date, score)"),
        "{msg}"
    );
    assert!(matches!(
        err,
        TableError::File { ref error, .. } if matches!(**error, TableError::MissingColumn { column: "datetime", .. })
    ));
}

#[test]
fn non_numeric_value_column_is_an_error() {
    let schema = Schema::new(vec![
        Field::new(
            "datetime",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("instrument", DataType::Utf8, false),
        Field::new("note", DataType::Utf8, true),
    ]);
    let bytes = write_batch(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![0])),
            Arc::new(StringArray::from(vec!["A"])),
            Arc::new(StringArray::from(vec!["x"])),
        ],
    );
    let msg = PredTable::from_parquet_bytes(&bytes)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("column `note` has type Utf8, expected a number"),
        "{msg}"
    );
}

#[test]
fn null_key_and_wrong_key_type_are_errors() {
    let schema = Schema::new(vec![
        Field::new(
            "datetime",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("instrument", DataType::Utf8, false),
    ]);
    let bytes = write_batch(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![Some(0), None])),
            Arc::new(StringArray::from(vec!["A", "B"])),
        ],
    );
    let msg = PredTable::from_parquet_bytes(&bytes)
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "column `datetime` has a null at row 1");

    let schema = Schema::new(vec![
        Field::new(
            "datetime",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("instrument", DataType::Int64, false),
    ]);
    let bytes = write_batch(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![0])),
            Arc::new(Int64Array::from(vec![1])),
        ],
    );
    let msg = PredTable::from_parquet_bytes(&bytes)
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "column `instrument` has type Int64, expected a string");
}

#[test]
fn not_parquet_is_an_error() {
    let err = PredTable::from_parquet_bytes(b"datetime,instrument\n").unwrap_err();
    assert!(
        err.to_string().starts_with("not a readable Parquet file"),
        "{err}"
    );
}

#[test]
fn csv_output_matches_pandas_formatting() {
    let mut t = sample();
    t.sort();
    let mut out = Vec::new();
    t.write_csv_to(&mut out).unwrap();
    // Hand-written: what pandas' to_csv prints for the same frame.
    let want = "datetime,instrument,score,label\n\
                2020-01-02,AAPL,0.25,inf\n\
                2020-01-02,SH600000,,-2.0\n\
                2020-01-03,SH600000,-1.5,0.0\n\
                2020-01-03,SZ000001,0.5,1.0\n";
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn csv_prints_times_when_not_all_midnight() {
    let mut b = TableBuilder::new(["v"]);
    b.push(
        day("2020-01-02") + chrono::Duration::minutes(90),
        "A,B",
        &[1.0],
    )
    .unwrap();
    b.push(day("2020-01-03"), "C", &[2.0]).unwrap();
    let mut out = Vec::new();
    b.finish().write_csv_to(&mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "datetime,instrument,v\n2020-01-02 01:30:00,\"A,B\",1.0\n2020-01-03 00:00:00,C,2.0\n"
    );
}

#[test]
fn builder_and_parts_check_shapes() {
    let mut b = TableBuilder::new(["a", "b"]);
    let msg = b
        .push(day("2020-01-02"), "X", &[1.0])
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "1 values for 2 columns (a, b)");
    let msg = PredTable::from_parts(vec![0], vec![1], vec!["X".into()], vec![])
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "instrument id 1 is outside the dictionary of 1");
    let msg = PredTable::from_parts(
        vec![0],
        vec![0],
        vec!["X".into()],
        vec![("v".into(), vec![])],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(msg, "column `v` has 0 values for 1 rows");
}

#[test]
fn datetime_conversions() {
    // 2020-01-02 is 18263 days after 1970-01-01.
    assert_eq!(
        datetime_to_ns(day("2020-01-02")).unwrap(),
        18263 * 86_400 * 1_000_000_000
    );
    assert_eq!(
        ns_to_datetime(18263 * 86_400 * 1_000_000_000),
        day("2020-01-02")
    );
    assert!(datetime_to_ns(day("2300-01-01")).is_err());
}
