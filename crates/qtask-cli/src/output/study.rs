//! How a study's summary is printed: per-window and ensemble IC metrics as a table.

use qtask_study::{IC_METRICS, StudyResult};
use serde_json::Value;

use super::write_json;

fn fmt(v: &Value) -> String {
    v.as_f64().map_or("nan".into(), |x| format!("{x:.4}"))
}

/// Prints per-window and ensemble metrics of a study summary (`summary.json`) as a table.
pub fn print_table(summary: &Value, windows_label: &str) {
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>9}",
        windows_label, IC_METRICS[0], IC_METRICS[1], IC_METRICS[2], IC_METRICS[3]
    );
    let row = |name: &str, m: &Value| {
        println!(
            "{:<32} {:>8} {:>8} {:>8} {:>9}",
            name,
            fmt(&m["IC"]),
            fmt(&m["ICIR"]),
            fmt(&m["Rank IC"]),
            fmt(&m["Rank ICIR"])
        );
    };
    for w in summary["windows"].as_array().into_iter().flatten() {
        let name = match w["test"].as_array() {
            Some(t) => format!(
                "test {}..{}",
                t.first().and_then(Value::as_str).unwrap_or("?"),
                t.get(1).and_then(Value::as_str).unwrap_or("open")
            ),
            None => w["run_id"].as_str().unwrap_or("?").to_string(),
        };
        row(&name, &w["metrics"]);
    }
    row("ensemble (RollingGroup)", &summary["ensemble"]["metrics"]);
}

/// Prints a finished study: its summary as JSON, or the metrics table and where the files are.
pub fn print_study(done: &StudyResult, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return write_json(&done.summary, None);
    }
    print_table(&done.summary, "window");
    println!(
        "prediction: {} ({} rows)\nsummary:    {}\nreport:     {}",
        done.paths.pred.display(),
        done.ensemble.pred.len(),
        done.paths.summary.display(),
        done.paths.report.display()
    );
    Ok(())
}
