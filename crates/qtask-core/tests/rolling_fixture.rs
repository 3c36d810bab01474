//! Qlib's own RollingGen output for the CSI100 LightGBM template, reproduced case by case.

use std::path::PathBuf;

use qtask_core::{RollStep, RollType, RollingGen, TaskGen, TimeAdjuster, load_template};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/rolling")
}

#[test]
fn every_fixture_case_matches_qlib() {
    let dir = data_dir();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected_rolling_csi100_lgb.json")).unwrap(),
    )
    .unwrap();
    let ta = TimeAdjuster::from_provider(&dir.join("provider")).unwrap();
    let template = load_template(&dir.join("template_csi100_lgb.json")).unwrap();
    assert_eq!(template.tasks.len(), 1);
    let cases = expected["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let rolling = &case["rolling"];
        let mut g = RollingGen::new(&ta);
        if let Some(step) = rolling.get("step") {
            g.step = RollStep::Days(step.as_i64().unwrap());
        }
        if let Some(rtype) = rolling.get("rtype") {
            g.rtype = rtype.as_str().unwrap().parse::<RollType>().unwrap();
        }
        g.trunc_days = rolling.get("trunc_days").and_then(Value::as_i64);
        g.handler_mod = case["handler_mod"].as_bool().unwrap();
        let got = g.generate(&template.tasks[0]).unwrap();
        let want = case["tasks"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: number of tasks");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g, w, "{name}: task {i}");
        }
    }
}

#[test]
fn the_template_is_not_modified() {
    let dir = data_dir();
    let ta = TimeAdjuster::from_provider(&dir.join("provider")).unwrap();
    let template = load_template(&dir.join("template_csi100_lgb.json")).unwrap();
    let before = template.tasks[0].clone();
    RollingGen::new(&ta).generate(&template.tasks[0]).unwrap();
    assert_eq!(before, template.tasks[0]);
}
