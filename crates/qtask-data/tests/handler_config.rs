//! Handler and dataset blocks are read as Qlib's constructors read them: every keyword is
//! implemented or refused with one line naming it, nothing is silently ignored.

use qtask_data::dataset::DatasetConfig;
use qtask_data::filter::DFilter;
use qtask_data::handler::HandlerConfig;
use qtask_data::processor::Kind;
use qtask_data::{Instruments, NaiveDate};
use serde_json::{Value, json};

fn alpha158(kwargs: Value) -> Value {
    json!({"class": "Alpha158", "module_path": "qlib.contrib.data.handler", "kwargs": kwargs})
}

fn handler_err(v: Value) -> String {
    HandlerConfig::from_value(&v).unwrap_err().to_string()
}

fn dataset(handler: Value, segments: Value) -> Value {
    json!({"class": "DatasetH", "module_path": "qlib.data.dataset",
           "kwargs": {"handler": handler, "segments": segments}})
}

#[test]
fn other_frequencies_and_instrument_processors_are_refused() {
    let err = handler_err(alpha158(
        json!({"freq": {"label": "day", "feature": "1min"}}),
    ));
    assert!(
        err.starts_with(
            "dataset.kwargs.handler.kwargs.freq: `{\"label\":\"day\",\"feature\":\"1min\"}` is \
             refused: qtask reads daily data only"
        ),
        "{err}"
    );
    assert!(handler_err(alpha158(json!({"freq": "1min"}))).contains("kwargs.freq: `\"1min\"`"));
    HandlerConfig::from_value(&alpha158(json!({"freq": "day", "inst_processors": []}))).unwrap();
    let err = handler_err(alpha158(json!({"inst_processors": {"feature": [
        {"class": "Resample1minProcessor", "module_path": "features_sample.py"}]}})));
    assert!(
        err.starts_with(
            "dataset.kwargs.handler.kwargs.inst_processors: instrument processors are refused"
        ),
        "{err}"
    );
}

#[test]
fn unknown_keywords_modules_and_classes_are_named() {
    let err = handler_err(alpha158(json!({"fit_start": "2018-01-01"})));
    assert_eq!(
        err,
        "dataset.kwargs.handler.kwargs.fit_start: unknown keyword (Alpha158 does not take it)"
    );
    let err = handler_err(alpha158(json!({"data_loader": {}})));
    assert!(err.contains("Alpha158 builds its own data loader"), "{err}");
    let err = handler_err(json!({"class": "Alpha158", "module_path": "my_handlers", "kwargs": {}}));
    assert!(
        err.starts_with("dataset.kwargs.handler.module_path: `my_handlers` is refused"),
        "{err}"
    );
    let err =
        handler_err(json!({"class": "Avg15minHandler", "module_path": "multi_freq_handler.py"}));
    assert!(
        err.starts_with("unknown handler class `Avg15minHandler`"),
        "{err}"
    );
    let err = handler_err(alpha158(json!({"learn_processors": [
        {"class": "CSZScoreNorm", "kwargs": {"fields_group": "label", "methd": "robust"}}]})));
    assert_eq!(
        err,
        "dataset.kwargs.handler.kwargs.learn_processors[0]: CSZScoreNorm.methd: unknown keyword \
         (CSZScoreNorm takes fields_group, method)"
    );
    let err = handler_err(alpha158(json!({"infer_processors": [
        {"class": "MyNorm", "module_path": "my.processors"}]})));
    assert!(
        err.contains("infer_processors[0]: processor MyNorm: module_path"),
        "{err}"
    );
    let err = handler_err(alpha158(
        json!({"infer_processors": [{"class": "DropnaLabel"}]}),
    ));
    assert!(err.contains("cannot process inference data"), "{err}");
}

#[test]
fn dates_that_contradict_each_other_are_refused() {
    let err = handler_err(alpha158(
        json!({"start_time": "2020-01-01", "end_time": "2019-01-01"}),
    ));
    assert_eq!(
        err,
        "dataset.kwargs.handler.kwargs.end_time: 2019-01-01 is before start_time 2020-01-01"
    );
    let err = handler_err(alpha158(
        json!({"fit_start_time": "<dataset.kwargs.segments.trian.0>"}),
    ));
    assert!(
        err.contains("placeholder `<dataset.kwargs.segments.trian.0>` names nothing"),
        "{err}"
    );
    let v = dataset(
        alpha158(json!({})),
        json!({"train": ["2018-01-01", "2018-12-31"], "test": ["2019-06-30", "2019-01-01"]}),
    );
    let err = DatasetConfig::from_value(&v).unwrap_err().to_string();
    assert_eq!(
        err,
        "dataset.kwargs.segments.test: ends on 2019-01-01, before it starts on 2019-06-30"
    );
    let v = dataset(alpha158(json!({})), json!({"train": ["2018-01-01"]}));
    let err = DatasetConfig::from_value(&v).unwrap_err().to_string();
    assert!(err.starts_with("dataset.kwargs.segments.train: expected [start, end] dates"));
}

#[test]
fn dataset_classes_and_keywords() {
    let mut v = dataset(alpha158(json!({})), json!({"train": [null, null]}));
    v["class"] = json!("TSDatasetH");
    let err = DatasetConfig::from_value(&v).unwrap_err().to_string();
    assert!(
        err.starts_with("dataset.class: `TSDatasetH` is refused"),
        "{err}"
    );
    let mut v = dataset(alpha158(json!({})), json!({"train": [null, null]}));
    v["kwargs"]["step_len"] = json!(20);
    let err = DatasetConfig::from_value(&v).unwrap_err().to_string();
    assert!(
        err.starts_with("dataset.kwargs.step_len: unknown keyword"),
        "{err}"
    );
    let mut v = dataset(alpha158(json!({})), json!({"train": [null, null]}));
    v["kwargs"]["fetch_kwargs"] = json!({});
    DatasetConfig::from_value(&v).unwrap();
}

#[test]
fn filter_pipe_narrows_a_market_and_is_refused_with_a_list() {
    let pipe = json!([{"filter_type": "ExpressionDFilter", "rule_expression": "$close > 5",
                       "filter_start_time": null, "filter_end_time": null, "keep": false}]);
    let cfg = HandlerConfig::from_value(&alpha158(json!({"instruments": "csi300",
                                                          "filter_pipe": pipe})))
    .unwrap();
    assert_eq!(
        cfg.instruments,
        Instruments::Filtered {
            market: "csi300".into(),
            filter_pipe: vec![DFilter::ExpressionDFilter {
                rule_expression: "$close > 5".into(),
                filter_start_time: None,
                filter_end_time: None,
                keep: false,
            }],
        }
    );
    let err = handler_err(alpha158(
        json!({"instruments": ["SH600000"], "filter_pipe": pipe}),
    ));
    assert!(
        err.starts_with(
            "dataset.kwargs.handler.kwargs.filter_pipe: a filter_pipe applies to a market"
        ),
        "{err}"
    );
    // Qlib's stock pool config as instruments.
    let cfg = HandlerConfig::from_value(&alpha158(json!({"instruments":
        {"market": "all", "filter_pipe": [{"filter_type": "NameDFilter", "name_rule_re": "SH60"}]}})))
    .unwrap();
    assert!(matches!(cfg.instruments, Instruments::Filtered { .. }));
}

#[test]
fn defaults_follow_each_class() {
    // Alpha158's default market is csi500; an explicit null reads every stock.
    let cfg = HandlerConfig::from_value(&alpha158(json!({}))).unwrap();
    assert_eq!(cfg.instruments, Instruments::Market("csi500".into()));
    let cfg = HandlerConfig::from_value(&alpha158(json!({"instruments": null}))).unwrap();
    assert_eq!(cfg.instruments, Instruments::Market("all".into()));
    let cfg = HandlerConfig::from_value(&json!({"class": "Alpha158vwap"})).unwrap();
    assert_eq!(cfg.labels[0].1, "Ref($vwap, -2)/Ref($vwap, -1) - 1");
    // DataHandlerLP: no processors and no label unless given.
    let lp = json!({"class": "DataHandlerLP", "module_path": "qlib.data.dataset.handler", "kwargs": {
        "data_loader": {"class": "QlibDataLoader", "kwargs": {"config": {
            "feature": [["$close/Ref($close, 1)"], ["RET"]]}, "freq": "day"}}}});
    let cfg = HandlerConfig::from_value(&lp).unwrap();
    assert!(cfg.labels.is_empty() && cfg.learn_processors.is_empty());
    assert_eq!(cfg.instruments, Instruments::Market("all".into()));
    let mut bad = lp.clone();
    bad["kwargs"]["data_loader"]["kwargs"]["config"]["extra"] = json!(["$open"]);
    assert!(handler_err(bad).contains("config.extra: unknown field group"));
    let mut bad = lp;
    bad["kwargs"]["data_loader"]["class"] = json!("StaticDataLoader");
    assert!(handler_err(bad).contains("only Qlib's QlibDataLoader"));
}

#[test]
fn column_processors_must_leave_learn_and_infer_alike() {
    let keep = json!({"class": "FilterCol", "kwargs": {"fields_group": "feature",
                                                        "col_list": ["KMID", "KLEN"]}});
    let cfg = HandlerConfig::from_value(&alpha158(json!({"infer_processors": [keep]}))).unwrap();
    assert_eq!(cfg.processed_n_features(), 2);
    let err = handler_err(alpha158(json!({"learn_processors": [keep]})));
    assert!(
        err.starts_with("dataset.kwargs.handler.kwargs.learn_processors: DropCol/FilterCol here"),
        "{err}"
    );
    let err = handler_err(alpha158(json!({"process_type": "independent",
                                          "infer_processors": [keep]})));
    assert!(err.contains("infer_processors: DropCol/FilterCol"), "{err}");
    let cfg = HandlerConfig::from_value(&alpha158(json!({"process_type": "independent",
                                                          "shared_processors": [keep]})))
    .unwrap();
    assert_eq!(cfg.shared_processors[0].kind, Kind::FilterCol);
    let none = json!({"class": "FilterCol", "kwargs": {"col_list": []}});
    assert!(
        handler_err(alpha158(json!({"infer_processors": [none]})))
            .contains("no feature column is left")
    );
    // HashStockFormat: last, with nothing processing its output.
    let hash = json!({"class": "HashStockFormat"});
    HandlerConfig::from_value(&alpha158(
        json!({"learn_processors": [{"class": "DropnaLabel"}, hash]}),
    ))
    .unwrap();
    let err = handler_err(alpha158(json!({"infer_processors": [hash]})));
    assert!(
        err.contains("HashStockFormat must come after every processor"),
        "{err}"
    );
}

#[test]
fn dataset_config_parses_without_data() {
    let v = dataset(
        alpha158(json!({"start_time": "2008-01-01", "end_time": "2020-08-01",
                        "fit_start_time": "2008-01-01", "fit_end_time": "2014-12-31",
                        "instruments": "csi300"})),
        json!({"train": ["2008-01-01", "2014-12-31"], "test": ["2017-01-01", null]}),
    );
    let cfg = DatasetConfig::from_value(&v).unwrap();
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert_eq!(cfg.segments["test"], (Some(d("2017-01-01")), None));
    assert_eq!(cfg.handler.features.len(), 158);
}
