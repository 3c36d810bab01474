//! qtask's `XGBModel` and `DEnsembleModel` against Qlib's own, on the same rows: Alpha158
//! features (every fifth) of a synthetic market, written with Qlib's predictions and IC by
//! `scripts/fixtures/qlib_models.py` into `tests/data/qlib_models`.
//!
//! The XGBoost tests form the `xgboost` suite (qtask-testkit): they run with
//! `QTASK_TEST_XGBOOST=1`, where a library that cannot be loaded (see `qtask_model::xgb::ffi`)
//! fails them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use qtask_data::dataset::{Columns, Prepared};
use qtask_model::ModelSpec;
use qtask_model::model::{Fitted, LearnData};
use qtask_model::signal::{nanmean, pearson, spearman};
use qtask_table::PredTable;
use qtask_testkit::Suite;
use serde_json::{Value, json};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/qlib_models")
}

struct Fixture {
    reference: Value,
    features: Vec<String>,
    /// Per segment (0 train, 1 valid, 2 test): row-major features and labels.
    segments: [(Vec<f32>, Vec<f32>); 3],
    /// Test rows' datetimes.
    test_days: Vec<i64>,
    /// Qlib's test predictions per model key.
    qlib_pred: BTreeMap<String, Vec<f64>>,
}

fn fixture() -> Fixture {
    let reference: Value =
        serde_json::from_slice(&std::fs::read(dir().join("qlib_ref.json")).unwrap()).unwrap();
    let features: Vec<String> = reference["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let data = PredTable::read_parquet(&dir().join("data.parquet")).unwrap();
    let cols: Vec<&[f64]> = features.iter().map(|f| data.column(f).unwrap()).collect();
    let label = data.column("LABEL0").unwrap();
    let segment = data.column("segment").unwrap();
    let mut segments: [(Vec<f32>, Vec<f32>); 3] = Default::default();
    let mut test_days = Vec::new();
    let mut test_keys = Vec::new();
    for r in 0..data.len() {
        let s = segment[r] as usize;
        segments[s].0.extend(cols.iter().map(|c| c[r] as f32));
        segments[s].1.push(label[r] as f32);
        if s == 2 {
            test_days.push(data.datetimes_ns()[r]);
            test_keys.push((data.datetimes_ns()[r], data.instrument(r).to_string()));
        }
    }
    let pred = PredTable::read_parquet(&dir().join("qlib_pred.parquet")).unwrap();
    // Qlib's predictions are keyed as the test rows are; line them up by key.
    let index: BTreeMap<(i64, String), usize> = (0..pred.len())
        .map(|r| ((pred.datetimes_ns()[r], pred.instrument(r).to_string()), r))
        .collect();
    let qlib_pred = pred
        .column_names()
        .iter()
        .map(|name| {
            let col = pred.column(name).unwrap();
            let v = test_keys.iter().map(|k| col[index[k]]).collect();
            (name.clone(), v)
        })
        .collect();
    Fixture {
        reference,
        features,
        segments,
        test_days,
        qlib_pred,
    }
}

impl Fixture {
    fn prepared(&self, s: usize) -> Prepared {
        let (x, y) = &self.segments[s];
        Prepared {
            datetime: Vec::new(),
            instruments: Vec::new(),
            features: x.clone(),
            feature_names: self.features.clone(),
            labels: y.clone(),
            label_names: vec!["LABEL0".into()],
        }
    }

    fn columns(&self, s: usize) -> Columns {
        let (x, y) = &self.segments[s];
        let nf = self.features.len();
        Columns {
            rows: y.len(),
            features: (0..nf)
                .map(|c| x.iter().skip(c).step_by(nf).copied().collect())
                .collect(),
            feature_names: self.features.clone(),
            labels: vec![y.clone()],
            label_names: vec!["LABEL0".into()],
        }
    }

    /// Trains the model of `key` with Qlib's kwargs and predicts the test rows.
    fn train_and_predict(&self, key: &str) -> (Fitted, Vec<f64>) {
        let r = &self.reference[key];
        let spec =
            ModelSpec::from_value(&json!({"class": r["class"], "kwargs": r["kwargs"]})).unwrap();
        let data = match spec {
            ModelSpec::Xgb(_) => LearnData::Rows {
                train: self.prepared(0),
                valid: Some(self.prepared(1)),
            },
            _ => LearnData::Columns {
                train: self.columns(0),
                valid: Some(self.columns(1)),
            },
        };
        let (fitted, _) = spec.fit(data).unwrap();
        let pred = fitted
            .predict_rows(&self.segments[2].0, self.features.len())
            .unwrap();
        (fitted, pred)
    }

    /// Mean daily IC and Rank IC of `pred` against the test labels, as Qlib's `calc_ic`.
    fn ic(&self, pred: &[f64]) -> (f64, f64) {
        let label: Vec<f64> = self.segments[2].1.iter().map(|&v| f64::from(v)).collect();
        let mut by_day: BTreeMap<i64, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for ((d, p), l) in self.test_days.iter().zip(pred).zip(&label) {
            let e = by_day.entry(*d).or_default();
            e.0.push(*p);
            e.1.push(*l);
        }
        let ic: Vec<f64> = by_day.values().map(|(p, l)| pearson(p, l)).collect();
        let ric: Vec<f64> = by_day.values().map(|(p, l)| spearman(p, l)).collect();
        (nanmean(&ic), nanmean(&ric))
    }

    fn check_ic(&self, key: &str, pred: &[f64]) -> (f64, f64) {
        let (ic, ric) = self.ic(pred);
        let (qic, qric) = (
            self.reference[key]["IC"].as_f64().unwrap(),
            self.reference[key]["Rank IC"].as_f64().unwrap(),
        );
        // The fixture's IC recomputed from Qlib's own predictions: the IC code agrees.
        let (own_ic, own_ric) = self.ic(&self.qlib_pred[key]);
        eprintln!("{key}: IC {ic:.6} (Qlib {qic:.6}), Rank IC {ric:.6} (Qlib {qric:.6})");
        assert!((own_ic - qic).abs() < 1e-9, "{own_ic} vs {qic}");
        assert!((own_ric - qric).abs() < 1e-9, "{own_ric} vs {qric}");
        assert!((ic - qic).abs() < 0.005, "{key}: IC {ic} vs Qlib's {qic}");
        assert!(
            (ric - qric).abs() < 0.005,
            "{key}: Rank IC {ric} vs Qlib's {qric}"
        );
        (ic, ric)
    }
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The XGBoost library's version when the xgboost suite runs (see the module doc).
fn xgboost_version(test: &str) -> Option<String> {
    qtask_testkit::enabled(Suite::Xgboost, test)?;
    let (path, version) = qtask_model::xgb::library()
        .unwrap_or_else(|e| panic!("{test}: QTASK_TEST_XGBOOST=1 but {e}"));
    eprintln!("XGBoost {version} from {}", path.display());
    Some(version)
}

#[test]
fn xgboost_agrees_with_qlib() {
    let Some(version) = xgboost_version("xgboost_agrees_with_qlib") else {
        return;
    };
    let fx = fixture();
    let (fitted, pred) = fx.train_and_predict("xgb");
    fx.check_ic("xgb", &pred);
    let Fitted::Xgb(m) = &fitted else {
        panic!("not an XGBoost model")
    };
    // Early stopping on the valid rmse, 50 rounds after the best, as xgb.train stopped.
    let r = &fx.reference["xgb"];
    assert_eq!(
        m.best_iteration,
        Some(r["best_iteration"].as_u64().unwrap() as usize)
    );
    assert_eq!(
        m.booster.rounds().unwrap(),
        r["rounds"].as_u64().unwrap() as usize
    );
    // The same library and thread count train the same trees.
    if version == fx.reference["versions"]["xgboost"].as_str().unwrap() {
        let d = max_abs_diff(&pred, &fx.qlib_pred["xgb"]);
        eprintln!("xgb: largest prediction difference {d:e}");
        assert!(d < 1e-5, "predictions differ from Qlib's by up to {d}");
    }
    // The saved model (XGBoost's JSON) predicts the same.
    let json = m.to_json().unwrap();
    assert!(json.starts_with(b"{"));
    let back = qtask_model::xgb::XgbModel::from_json(&json).unwrap();
    let again = back.predict(&fx.segments[2].0, fx.features.len()).unwrap();
    assert_eq!(again, pred);
}

#[test]
fn double_ensemble_without_feature_selection_is_qlibs() {
    let fx = fixture();
    let (_, pred) = fx.train_and_predict("dens_nofs");
    fx.check_ic("dens_nofs", &pred);
    // Nothing random is left: the same LightGBM trains the same sub-models on the same
    // re-weighted samples.
    let d = max_abs_diff(&pred, &fx.qlib_pred["dens_nofs"]);
    eprintln!("dens_nofs: largest prediction difference {d:e}");
    assert!(d < 1e-6, "predictions differ from Qlib's by up to {d}");
}

#[test]
fn double_ensemble_agrees_with_qlib() {
    let fx = fixture();
    let (fitted, pred) = fx.train_and_predict("dens");
    let (ic, _) = fx.check_ic("dens", &pred);
    let Fitted::Dens(m) = &fitted else {
        panic!("not a DoubleEnsemble")
    };
    assert_eq!(m.subs.len(), 6);
    // The first sub-model reads every feature; the others a selection (ratios 0.8 .. 0.4 of
    // the g-value bins), each in the data's column order.
    assert_eq!(m.subs[0].features.len(), fx.features.len());
    for s in &m.subs[1..] {
        assert!(s.features.len() < fx.features.len());
        assert!(s.features.windows(2).all(|w| w[0] < w[1]));
    }
    // The random shuffles differ from Qlib's (another generator), the ensemble's quality not.
    assert!(ic > 0.1, "{ic}");
    let back = qtask_model::dens::DensModel::from_json(&m.to_json(&fx.features).unwrap()).unwrap();
    let again = back.predict(&fx.segments[2].0, fx.features.len()).unwrap();
    assert_eq!(again, pred);
}
