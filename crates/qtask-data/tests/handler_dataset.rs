//! Handlers from task JSON, processors with hand-computed values, DatasetH segments and the
//! feature cache.

use std::path::PathBuf;

use qtask_data::cache::FeatureCache;
use qtask_data::dataset::{DataKey, DatasetH};
use qtask_data::frame::Frame;
use qtask_data::handler::HandlerConfig;
use qtask_data::processor::{Kind, Processor};
use qtask_data::{Instruments, NaiveDate, Program, Provider, Query};
use serde_json::json;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/market_small")
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Two days x three instruments, one feature column `f` and a label `l`.
fn small_frame(f: [f32; 6], l: [f32; 6]) -> Frame {
    Frame {
        symbols: vec!["A".into(), "B".into(), "C".into()],
        inst: vec![0, 1, 2, 0, 1, 2],
        datetime: vec![
            d("2020-01-02"),
            d("2020-01-02"),
            d("2020-01-02"),
            d("2020-01-03"),
            d("2020-01-03"),
            d("2020-01-03"),
        ],
        columns: vec!["f".into(), "l".into()],
        data: vec![f.to_vec(), l.to_vec()],
    }
}

fn proc(v: serde_json::Value) -> Processor {
    Processor::from_config(&v, Some(d("2020-01-02")), Some(d("2020-01-02"))).unwrap()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-5,
            "{a:?} vs {b:?}"
        );
    }
}

#[test]
fn cross_sectional_processors() {
    let nan = f32::NAN;
    let mut f = small_frame([1.0, 2.0, 3.0, 5.0, 5.0, nan], [0.0; 6]);
    proc(json!({"class": "CSZScoreNorm", "kwargs": {"fields_group": "feature"}})).apply(&mut f, 1);
    // Day 1: mean 2, sample std 1. Day 2: two equal values: std 0 -> NaN, missing stays missing.
    close(&f.data[0], &[-1.0, 0.0, 1.0, nan, nan, nan]);
    let mut f = small_frame([1.0, 2.0, 2.0, 3.0, nan, 1.0], [0.0; 6]);
    proc(json!({"class": "CSRankNorm", "kwargs": {"fields_group": "feature"}})).apply(&mut f, 1);
    // Ranks 1, 2.5, 2.5 of 3; then 2 of 2, missing, 1 of 2; (pct - 0.5) * 3.46.
    let r = |p: f32| (p - 0.5) * 3.46;
    close(
        &f.data[0],
        &[
            r(1.0 / 3.0),
            r(2.5 / 3.0),
            r(2.5 / 3.0),
            r(1.0),
            nan,
            r(0.5),
        ],
    );
    let mut f = small_frame(
        [1.0, f32::INFINITY, 3.0, f32::NEG_INFINITY, 4.0, nan],
        [0.0; 6],
    );
    proc(json!({"class": "ProcessInf"})).apply(&mut f, 1);
    close(&f.data[0], &[1.0, 2.0, 3.0, 4.0, 4.0, nan]);
    proc(json!({"class": "Fillna", "kwargs": {"fill_value": -1}})).apply(&mut f, 1);
    close(&f.data[0], &[1.0, 2.0, 3.0, 4.0, 4.0, -1.0]);
}

#[test]
fn fitted_processors_use_the_fit_period_only() {
    let mut f = small_frame([1.0, 2.0, 3.0, 10.0, 20.0, 30.0], [0.0; 6]);
    let mut z = proc(json!({"class": "ZScoreNorm", "kwargs": {"fields_group": "feature"}}));
    z.fit(&f, 1);
    z.apply(&mut f, 1);
    // Fitted on 2020-01-02 only: mean 2, population std sqrt(2/3).
    let s = (2.0f32 / 3.0).sqrt();
    close(
        &f.data[0],
        &[-1.0 / s, 0.0, 1.0 / s, 8.0 / s, 18.0 / s, 28.0 / s],
    );
    // The fitted state survives serde (saved as a run artifact).
    let back: Processor = serde_json::from_str(&serde_json::to_string(&z).unwrap()).unwrap();
    assert_eq!(back, z);

    let mut f = small_frame([1.0, 2.0, 4.0, 3.0, 0.0, 5.0], [0.0; 6]);
    let mut m = proc(json!({"class": "MinMaxNorm", "kwargs": {"fields_group": "feature"}}));
    m.fit(&f, 1);
    m.apply(&mut f, 1);
    close(
        &f.data[0],
        &[0.0, 1.0 / 3.0, 1.0, 2.0 / 3.0, -1.0 / 3.0, 4.0 / 3.0],
    );

    let mut f = small_frame([1.0, 2.0, 4.0, 2.0, 100.0, -100.0], [0.0; 6]);
    let mut r = proc(json!({"class": "RobustZScoreNorm", "kwargs": {"fields_group": "feature"}}));
    r.fit(&f, 1);
    r.apply(&mut f, 1);
    // median 2, MAD 1 -> scale 1.4826; clipped to +-3.
    let k = 1.4826f32;
    close(&f.data[0], &[-1.0 / k, 0.0, 2.0 / k, 0.0, 3.0, -3.0]);
}

#[test]
fn fitted_processor_without_fit_period_is_an_error() {
    let err = Processor::from_config(&json!({"class": "ZScoreNorm"}), None, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("needs fit_start_time and fit_end_time"),
        "{err}"
    );
    let err = Processor::from_config(&json!({"class": "Bogus"}), None, None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("unknown processor `Bogus`"), "{err}");
}

fn alpha158_task() -> serde_json::Value {
    json!({
        "class": "DatasetH",
        "module_path": "qlib.data.dataset",
        "kwargs": {
            "handler": {
                "class": "Alpha158",
                "module_path": "qlib.contrib.data.handler",
                "kwargs": {
                    "start_time": "2018-01-01", "end_time": "2019-12-31",
                    "fit_start_time": "2018-01-01", "fit_end_time": "2018-12-31",
                    "instruments": "all"
                }
            },
            "segments": {
                "train": ["2018-01-01", "2018-12-31"],
                "valid": ["2019-01-01", "2019-06-30"],
                "test": ["2019-07-01", "2019-12-31"]
            }
        }
    })
}

#[test]
fn alpha158_dataset_segments_and_default_processors() {
    let provider = Provider::open(fixture()).unwrap();
    let ds = DatasetH::from_value(&provider, &alpha158_task(), None, &|| {}).unwrap();
    let raw = ds.prepare("train", DataKey::Raw).unwrap();
    let learn = ds.prepare("train", DataKey::Learn).unwrap();
    let infer = ds.prepare("test", DataKey::Infer).unwrap();
    assert_eq!(raw.feature_names.len(), 158);
    assert_eq!(raw.label_names, vec!["LABEL0"]);
    assert_eq!(raw.features.len(), raw.len() * 158);
    assert!(raw.datetime.iter().all(|&t| t <= d("2018-12-31")));
    assert!(infer.datetime.iter().all(|&t| t >= d("2019-07-01")));
    // Rows are in (datetime, instrument) order.
    assert!(raw.datetime.windows(2).all(|w| w[0] <= w[1]));
    // Learn data: rows with a missing label dropped, the label z-scored within each day.
    let label = learn.label();
    assert!(label.iter().all(|x| !x.is_nan()));
    let raw_missing = raw.label().iter().filter(|x| x.is_nan()).count();
    assert_eq!(learn.len() + raw_missing, raw.len());
    let first_day: Vec<f32> = (0..learn.len())
        .filter(|&r| learn.datetime[r] == learn.datetime[0])
        .map(|r| label[r])
        .collect();
    let mean: f32 = first_day.iter().sum::<f32>() / first_day.len() as f32;
    assert!(mean.abs() < 1e-5 && first_day.len() > 1, "{first_day:?}");
    // Alpha158 has no infer processors: infer equals raw.
    let raw_frame = ds.handler.raw().unwrap();
    let (i, r) = (ds.handler.infer(), raw_frame.as_ref());
    assert!(i.datetime == r.datetime && i.inst == r.inst);
    let bits = |f: &Frame| -> Vec<Vec<u32>> {
        f.data
            .iter()
            .map(|c| c.iter().map(|x| x.to_bits()).collect())
            .collect()
    };
    assert!(bits(i) == bits(r), "infer differs from raw");
    let err = ds.prepare("nope", DataKey::Raw).unwrap_err().to_string();
    assert!(err.starts_with("unknown segment `nope`"), "{err}");
}

#[test]
fn label_and_processor_overrides_from_task_json() {
    let cfg = HandlerConfig::from_value(&json!({
        "class": "Alpha360",
        "kwargs": {
            "instruments": ["SH600000", "SH600003"],
            "fit_start_time": "2018-01-01", "fit_end_time": "2018-12-31",
            "label": ["Ref($close, -6) / Ref($close, -1) - 1"],
            "learn_processors": [{"class": "DropnaLabel"}]
        }
    }))
    .unwrap();
    assert_eq!(cfg.features.len(), 360);
    assert_eq!(cfg.labels[0].0, "Ref($close, -6) / Ref($close, -1) - 1");
    assert_eq!(
        cfg.instruments,
        Instruments::List(vec!["SH600000".into(), "SH600003".into()])
    );
    // Alpha360's default infer processors, with the handler's fit period filled in.
    let kinds: Vec<Kind> = cfg.infer_processors.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        vec![Kind::ProcessInf, Kind::ZScoreNorm, Kind::Fillna]
    );
    assert_eq!(cfg.infer_processors[1].fit_end_time, Some(d("2018-12-31")));
    let err = HandlerConfig::from_value(&json!({"class": "Alpha999"}))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("unknown handler class `Alpha999`"), "{err}");
}

#[test]
fn feature_cache_reuses_and_invalidates() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    qtask_data::synth::synth(
        &data,
        &qtask_data::synth::SynthConfig {
            instruments: 3,
            start: d("2018-01-01"),
            end: d("2019-06-30"),
            seed: 1,
        },
        &|| {},
    )
    .unwrap();
    let provider = Provider::open(&data).unwrap();
    let cache = FeatureCache::new(tmp.path().join("cache"));
    let program = Program::compile(&[("m".into(), "Mean($close, 5)".into())]).unwrap();
    let q = Query {
        instruments: Instruments::Market("all".into()),
        start: None,
        end: None,
    };
    assert!(!cache.contains(&provider, &program, &q).unwrap());
    let first = cache
        .get_or_compute(&provider, &program, &q, &|| {})
        .unwrap();
    assert!(cache.contains(&provider, &program, &q).unwrap());
    let computed = std::cell::Cell::new(false);
    let ticks = std::sync::atomic::AtomicUsize::new(0);
    let again = cache
        .get_or_compute(&provider, &program, &q, &|| {
            ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
    computed.set(ticks.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(!computed.get(), "a cache hit computes nothing");
    assert_eq!(first, again);
    // Another start is another entry; rewriting a data file invalidates the key.
    let later = Query {
        start: Some(d("2018-03-01")),
        ..q.clone()
    };
    assert!(!cache.contains(&provider, &program, &later).unwrap());
    let key = cache.key(&provider, &program, &q).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let bin = data.join("features/sh600000/close.day.bin");
    let bytes = std::fs::read(&bin).unwrap();
    std::fs::write(&bin, &bytes).unwrap();
    assert_ne!(cache.key(&provider, &program, &q).unwrap(), key);
}

/// Learn data is processed per segment on demand; it must equal processing every row and
/// slicing, with fitted, cross-sectional and row-dropping processors chained.
#[test]
fn learn_segments_equal_the_whole_learn_frame_sliced() {
    let provider = Provider::open(fixture()).unwrap();
    let mut task = alpha158_task();
    task["kwargs"]["handler"]["kwargs"]["learn_processors"] = json!([
        {"class": "DropnaLabel"},
        {"class": "ProcessInf"},
        {"class": "ZScoreNorm", "kwargs": {"fields_group": "feature"}},
        {"class": "Fillna", "kwargs": {"fields_group": "feature"}},
        {"class": "CSZScoreNorm", "kwargs": {"fields_group": "label"}}
    ]);
    let ds = DatasetH::from_value(&provider, &task, None, &|| {}).unwrap();
    let whole = ds.handler.learn(None, None);
    for seg in ["train", "valid", "test"] {
        let (s, e) = ds.segments[seg];
        let part = ds.handler.learn(s, e);
        let rows: Vec<usize> = (0..whole.len())
            .filter(|&r| {
                s.is_none_or(|s| whole.datetime[r] >= s) && e.is_none_or(|e| whole.datetime[r] <= e)
            })
            .collect();
        assert!(!rows.is_empty());
        assert_eq!(part.len(), rows.len(), "{seg}");
        for (c, col) in part.data.iter().enumerate() {
            let expected: Vec<u32> = rows.iter().map(|&r| whole.data[c][r].to_bits()).collect();
            let got: Vec<u32> = col.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, expected, "{seg} column {}", part.columns[c]);
        }
        let prepared = ds.prepare(seg, DataKey::Learn).unwrap();
        assert_eq!(prepared.len(), rows.len());
    }
}

/// Infer processors take the raw features over in place (one copy of the features, not two):
/// raw data, read again on request, and raw labels must still be the data as computed.
#[test]
fn raw_data_survives_infer_processors() {
    let tmp = tempfile::tempdir().unwrap();
    let provider = Provider::open(fixture()).unwrap();
    let cache = FeatureCache::new(tmp.path().join("cache"));
    let plain = DatasetH::from_value(&provider, &alpha158_task(), None, &|| {}).unwrap();
    let mut task = alpha158_task();
    task["kwargs"]["handler"]["kwargs"]["infer_processors"] = json!([
        {"class": "DropnaFeature"},
        {"class": "RobustZScoreNorm", "kwargs": {"fields_group": "feature", "clip_outlier": true}},
        {"class": "Fillna", "kwargs": {"fields_group": "feature"}}
    ]);
    for cache in [None, Some(&cache)] {
        let ds = DatasetH::from_value(&provider, &task, cache, &|| {}).unwrap();
        for seg in ["train", "test"] {
            let want = plain.prepare(seg, DataKey::Raw).unwrap();
            let got = ds.prepare(seg, DataKey::Raw).unwrap();
            assert_eq!(got.len(), want.len(), "{seg}");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(
                bits(&got.features) == bits(&want.features),
                "{seg}: raw features"
            );
            assert!(bits(&got.labels) == bits(&want.labels), "{seg}: raw labels");
            // Labels alone, from each version of the data, equal the labels of the full rows.
            for key in [DataKey::Raw, DataKey::Infer, DataKey::Learn] {
                let full = ds.prepare(seg, key).unwrap();
                let labels = ds.prepare_labels(seg, key).unwrap();
                assert!(labels.features.is_empty() && labels.feature_names.is_empty());
                assert_eq!(labels.label_names, full.label_names);
                assert_eq!(labels.datetime, full.datetime, "{seg} {key:?}");
                assert_eq!(labels.instruments, full.instruments, "{seg} {key:?}");
                assert!(bits(&labels.labels) == bits(&full.labels), "{seg} {key:?}");
            }
            // The infer processors changed the features and dropped rows with a missing one.
            let infer = ds.prepare(seg, DataKey::Infer).unwrap();
            assert!(
                infer.len() < got.len(),
                "{seg}: DropnaFeature dropped nothing"
            );
            assert!(bits(&infer.features) != bits(&got.features[..infer.features.len()]));
        }
    }
}

/// Queries that differ only in their end (a rolling study's handlers) share one entry, and
/// what it gives equals computing the shorter query, with look-back, recursive and look-ahead
/// expressions alike.
#[test]
fn feature_cache_serves_earlier_ends_from_one_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let synth = qtask_data::synth::SynthConfig {
        instruments: 4,
        start: d("2018-01-01"),
        end: d("2019-06-30"),
        seed: 7,
    };
    qtask_data::synth::synth(&data, &synth, &|| {}).unwrap();
    let provider = Provider::open(&data).unwrap();
    let cache = FeatureCache::new(tmp.path().join("cache"));
    let program = Program::compile(&[
        ("mean".into(), "Mean($close, 5)".into()),
        ("ema".into(), "EMA($close, 10)".into()),
        (
            "label".into(),
            "Ref($close, -2) / Ref($close, -1) - 1".into(),
        ),
    ])
    .unwrap();
    let q = |end: Option<&str>| Query {
        instruments: Instruments::Market("all".into()),
        start: Some(d("2018-02-01")),
        end: end.map(d),
    };
    let whole = cache
        .get_or_compute(&provider, &program, &q(None), &|| {})
        .unwrap();
    let rows = |f: &Frame| -> Vec<(String, NaiveDate, Vec<u32>)> {
        (0..f.len())
            .map(|r| {
                let bits = f.data.iter().map(|c| c[r].to_bits()).collect();
                (f.symbol(r).to_string(), f.datetime[r], bits)
            })
            .collect()
    };
    for end in ["2019-01-31", "2019-06-27"] {
        assert!(cache.contains(&provider, &program, &q(Some(end))).unwrap());
        let ticks = std::sync::atomic::AtomicUsize::new(0);
        let got = cache
            .get_or_compute(&provider, &program, &q(Some(end)), &|| {
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .unwrap();
        assert_eq!(ticks.into_inner(), 0, "{end}: served from the entry");
        let direct = qtask_data::compute(&provider, &program, &q(Some(end)), &|| {}).unwrap();
        assert!(got.len() < whole.len() && !got.is_empty(), "{end}");
        assert!(got.datetime.iter().all(|t| *t <= d(end)));
        assert!(
            rows(&got) == rows(&direct),
            "{end}: differs from computing the query"
        );
    }
    let entries = std::fs::read_dir(tmp.path().join("cache")).unwrap().count();
    assert_eq!(entries, 1);
}
