//! How `qtask online` prints: a step (what it trained and switched), the manager's status,
//! the signals.

use qtask_collect::PredTable;
use qtask_model::predict::PredUpdate;
use qtask_study::online::{PredUpdateOutcome, Step, StepReport, TestSegment};
use serde_json::{Value, json};

use super::write_json;

fn seg_text(s: &TestSegment) -> String {
    format!(
        "{}..{}",
        s.0.map_or("open".into(), |d| d.to_string()),
        s.1.map_or("open".into(), |d| d.to_string())
    )
}

fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

/// Prints what a step did: as JSON, or a few lines for people.
pub fn print_step(r: &StepReport, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return write_json(&r.to_json(), None);
    }
    let what = match r.step {
        Step::FirstTrain => "first_train",
        Step::Routine => "routine",
    };
    let rec = &r.recovered;
    if !rec.is_empty() {
        println!(
            "recovered from a dead process: {} half-trained run(s) deleted, {} pool task(s) \
             handed back, {} committed",
            rec.deleted_runs.len(),
            rec.returned_tasks.len(),
            rec.committed_tasks.len()
        );
    }
    if r.trained.is_empty() {
        println!("{what} {}: no window came due; nothing trained", r.time);
    } else {
        println!("{what} {}: {} model(s) trained", r.time, r.trained.len());
        for m in &r.trained {
            println!(
                "  test {}  run {}{}",
                seg_text(&m.test),
                m.run_id,
                if m.reused {
                    " (trained by an earlier attempt)"
                } else {
                    ""
                }
            );
        }
    }
    if r.switched() {
        println!(
            "online: switched from {} to {} model(s)",
            r.online_before.len(),
            r.online.len()
        );
    } else {
        println!("online: unchanged, {} model(s)", r.online.len());
    }
    for (id, t) in r.online.iter().zip(&r.online_tests) {
        println!("  test {}  run {}", seg_text(t), id);
    }
    for (id, u) in &r.pred_updates {
        let line = match u {
            PredUpdateOutcome::NoPrediction => "no prediction yet".to_string(),
            PredUpdateOutcome::Updated(PredUpdate::UpToDate { last }) => {
                format!("up to date ({last})")
            }
            PredUpdateOutcome::Updated(PredUpdate::Extended {
                from, to, new_rows, ..
            }) => format!("{new_rows} rows predicted, {from}..{to}"),
        };
        println!("prediction of run {}: {line}", short(id));
    }
    if let Some(s) = &r.signals {
        println!(
            "signals: {} day(s) added ({} rows); {} rows up to {}",
            s.new_days,
            s.new_rows,
            s.rows,
            s.last_day.map_or("-".into(), |d| d.to_string())
        );
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn segs_text(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{}..{}",
                s[0].as_str().unwrap_or("open"),
                s[1].as_str().unwrap_or("open")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints a manager's status (from `status_json`); `history` adds one line per change of
/// the online models.
pub fn print_status(s: &Value, history: bool) {
    println!(
        "experiment {}: {} since {}, {} routine(s) (last {}), {} model(s) trained",
        text(&s["experiment"]),
        text(&s["status"]),
        text(&s["begin_time"]),
        text(&s["routines"]),
        text(&s["last_routine"]),
        text(&s["models_trained"])
    );
    if let Some(p) = s["pending"].as_object() {
        println!(
            "unfinished {} of {}: the next call resumes it",
            text(&p["step"]),
            text(&p["time"])
        );
    }
    println!("online models:");
    for m in s["online"].as_array().into_iter().flatten() {
        println!(
            "  test {}  run {}",
            segs_text(&json!([m["test"]])),
            text(&m["run_id"])
        );
    }
    match s["signals"].as_object() {
        Some(sig) => println!(
            "signals: {} rows over {} days, {} .. {}",
            text(&sig["rows"]),
            text(&sig["days"]),
            text(&sig["first"]),
            text(&sig["last"])
        ),
        None => println!("signals: none yet"),
    }
    if history {
        let entries = s["history"].as_array().cloned().unwrap_or_default();
        let mut last: Option<String> = None;
        for h in &entries {
            let online = segs_text(&h["online"]);
            if last.as_deref() != Some(online.as_str()) {
                println!(
                    "  {} {}: online {}",
                    text(&h["time"]),
                    text(&h["step"]),
                    online
                );
                last = Some(online);
            }
        }
    }
}

/// Prints signals: every row as JSON, or the last day's scores, best first.
pub fn print_signals(t: &PredTable, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        let rows: Vec<Value> = (0..t.len())
            .map(|r| {
                let v = t.column_at(0)[r];
                json!({
                    "datetime": t.datetime(r).date().to_string(),
                    "instrument": t.instrument(r),
                    "score": if v.is_finite() { json!(v) } else { Value::Null },
                })
            })
            .collect();
        return write_json(&rows, None);
    }
    let Some(last) = t.datetimes_ns().iter().max().copied() else {
        println!("no signal rows");
        return Ok(());
    };
    let mut rows: Vec<(f64, &str)> = (0..t.len())
        .filter(|&r| t.datetimes_ns()[r] == last)
        .map(|r| (t.column_at(0)[r], t.instrument(r)))
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (first, end) = t.datetime_range().expect("not empty");
    println!(
        "{} rows, {} .. {}; the last day's signals:",
        t.len(),
        first.date(),
        end.date()
    );
    println!("{:<12} {:>10}", "instrument", "score");
    for (v, inst) in rows {
        println!("{inst:<12} {v:>10.4}");
    }
    Ok(())
}
