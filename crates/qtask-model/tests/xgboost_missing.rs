//! Without XGBoost's library, `XGBModel` fails with one line saying what is missing and how to
//! get it (its own test binary: the library is looked up once per process).

use qtask_data::dataset::Prepared;
use qtask_model::ModelSpec;
use qtask_model::model::LearnData;
use serde_json::json;

#[test]
fn a_missing_library_is_one_clear_error() {
    let bogus = std::env::temp_dir().join("qtask-no-such-dir/libxgboost.so");
    // SAFETY: the only test of this binary, before any thread reads the environment.
    unsafe { std::env::set_var(qtask_model::xgb::LIB_ENV, &bogus) };
    let spec =
        ModelSpec::from_value(&json!({"class": "XGBModel", "kwargs": {"nthread": 1}})).unwrap();
    let rows = |n: usize| Prepared {
        datetime: Vec::new(),
        instruments: Vec::new(),
        features: (0..n).map(|i| i as f32).collect(),
        feature_names: vec!["a".into()],
        labels: (0..n).map(|i| (i % 3) as f32).collect(),
        label_names: vec!["LABEL0".into()],
    };
    let err = spec
        .fit(LearnData::Rows {
            train: rows(20),
            valid: None,
        })
        .err()
        .expect("no library, no model")
        .to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(
        err.starts_with("XGBoost: XGBModel needs XGBoost's library"),
        "{err}"
    );
    assert!(err.contains(&bogus.display().to_string()), "{err}");
    assert!(err.contains("pip install xgboost"), "{err}");
    assert!(err.contains("QTASK_XGBOOST_LIB"), "{err}");
}
