//! Real MLflow (Python) reads back what [`super::conformance::exercise`] wrote.

use serde_json::{Value, json};

use super::conformance::Written;

/// Reads `written` through MLflow's Python API at `tracking_uri` and checks every field.
pub fn check_with_mlflow(tracking_uri: &str, written: &Written) {
    let got = super::run_python(
        include_str!("readback.py"),
        &[tracking_uri, &written.experiment, &written.finished],
        &[],
    );
    // mlflow.search_runs: newest first, with params/metrics/tags columns.
    let search = got["search"].as_array().unwrap();
    let ids: Vec<&str> = search
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [&written.running, &written.killed, &written.finished]);
    let statuses: Vec<&str> = search
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["RUNNING", "KILLED", "FINISHED"]);
    assert_eq!(search[2]["model.class"], "LGBModel");
    assert_eq!(search[2]["IC"], 0.07);
    assert_eq!(search[2]["train_status"], "end_task_train");

    // MlflowClient().get_run: everything of the finished run.
    let run = &got["runs"][&written.finished];
    assert_eq!(run["status"], "FINISHED");
    assert_eq!(run["run_name"], "first");
    assert_eq!(run["end_time_set"], true);
    assert_eq!(
        run["params"],
        json!({
            "model.class": "LGBModel",
            "model.kwargs.lr": "0.1",
            "model.kwargs.num_leaves": "210",
            "dataset.segments.test": "['2017-01-01', None]",
            "record": "[]",
        })
    );
    assert_eq!(run["metrics"]["IC"], 0.07);
    assert_eq!(run["metrics"]["ICIR"], -1.5);
    assert_eq!(run["metrics"]["Rank IC"], "nan");
    assert_eq!(run["ic_history"], json!([[0.05, 0], [0.07, 1]]));
    assert_eq!(run["tags"]["train_status"], "end_task_train");
    assert_eq!(run["tags"]["_id in TaskManager"], "6512ab");
    assert_eq!(run["tags"]["hostname"], "worker-1");
    assert_eq!(run["tags"]["mlflow.runName"], "first");

    let killed = &got["runs"][&written.killed];
    assert_eq!(killed["status"], "KILLED");
    assert_eq!(killed["ic_history"], json!([[0.01, 0]]));
    assert_eq!(got["runs"][&written.running]["status"], "RUNNING");
    assert_eq!(got["runs"][&written.running]["end_time_set"], false);

    // list_artifacts / download_artifacts: same files, same bytes.
    assert_eq!(
        got["top"],
        json!([
            ["note.txt", false, 3],
            ["sig_analysis", true, null],
            ["task.json", false, got["top"][2][2]]
        ])
    );
    assert_eq!(
        got["inner"],
        json!([["sig_analysis/ic.parquet", false, 1000]])
    );
    let hex: String = written.blob.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got["blob"], Value::String(hex));
    assert_eq!(got["task"]["model"]["kwargs"]["num_leaves"], 210);
}
