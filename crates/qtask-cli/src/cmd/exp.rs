//! `qtask exp`: browse and delete experiments and runs (MLflow file store or tracking server).

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::flags::TrackingFlags;
use crate::output;
use qtask_record::{RecordStore, RunInfo, RunStatus, format_millis};

/// Experiments and runs.
#[derive(Debug, Args)]
pub struct ExpArgs {
    #[command(flatten)]
    pub tracking: TrackingFlags,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: ExpCommand,
}

/// `qtask exp` subcommands.
#[derive(Debug, Subcommand)]
pub enum ExpCommand {
    /// List the active experiments, newest first.
    List,
    /// List an experiment's runs, newest first.
    Runs {
        /// Experiment name.
        name: String,
        /// Only runs with this status (RUNNING, FINISHED, FAILED, KILLED, SCHEDULED).
        #[arg(long)]
        status: Option<RunStatus>,
    },
    /// Show one run: metadata, params, metrics, tags and artifacts.
    Show {
        /// Run id (32 hex digits).
        run_id: String,
    },
    /// Delete an experiment and its runs (MLflow semantics: moved to .trash, name reserved).
    Rm {
        /// Experiment name.
        name: String,
    },
}

/// Runs `qtask exp ...`.
pub fn run(args: ExpArgs) -> anyhow::Result<()> {
    let store = args.tracking.open(false)?;
    let result = match args.command {
        ExpCommand::List => list(&store, args.json),
        ExpCommand::Runs { name, status } => runs(&store, &name, status, args.json),
        ExpCommand::Show { run_id } => show(&store, &run_id, args.json),
        ExpCommand::Rm { name } => rm(&store, &name, args.json),
    };
    // On failure the error line says what matters; warnings only accompany a success.
    if result.is_ok() {
        output::warn_all(store.take_warnings());
    }
    result
}

fn list(store: &RecordStore, json: bool) -> anyhow::Result<()> {
    let exps = store.experiments()?;
    if json {
        return output::write_json(&exps, None);
    }
    let rows: Vec<Vec<String>> = exps
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.name.clone(),
                e.creation_time.map(format_millis).unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["ID", "NAME", "CREATED (UTC)"], &rows);
    Ok(())
}

fn runs(
    store: &RecordStore,
    name: &str,
    status: Option<RunStatus>,
    json: bool,
) -> anyhow::Result<()> {
    let exp = store
        .find_experiment(name)?
        .with_context(|| format!("no experiment `{name}` in {}", store.uri()))?;
    let runs = exp.runs(status)?;
    if json {
        return output::write_json(&runs, None);
    }
    let rows: Vec<Vec<String>> = runs.iter().map(run_row).collect();
    print_table(
        &["RUN ID", "STATUS", "NAME", "START (UTC)", "DURATION"],
        &rows,
    );
    Ok(())
}

fn run_row(r: &RunInfo) -> Vec<String> {
    let duration = r
        .end_time
        .map(|end| format!("{:.1}s", (end - r.start_time) as f64 / 1000.0))
        .unwrap_or_default();
    vec![
        r.run_id.clone(),
        r.status.to_string(),
        r.run_name.clone(),
        format_millis(r.start_time),
        duration,
    ]
}

fn show(store: &RecordStore, run_id: &str, json: bool) -> anyhow::Result<()> {
    let run = store.run(run_id)?;
    let params = run.params()?;
    let metrics = run.metrics()?;
    let tags = run.tags()?;
    let artifacts = run.all_artifacts()?;
    if json {
        let metrics: serde_json::Map<String, Value> = metrics
            .iter()
            .map(|m| {
                (
                    m.key.clone(),
                    json!({"value": json_number(m.value), "step": m.step, "timestamp": m.timestamp}),
                )
            })
            .collect();
        let doc = json!({
            "info": run.info(),
            "params": params,
            "metrics": metrics,
            "tags": tags,
            "artifacts": artifacts,
        });
        return output::write_json(&doc, None);
    }
    let info = run.info();
    println!("run        {}", info.run_id);
    println!("name       {}", info.run_name);
    println!("experiment {}", info.experiment_id);
    println!("status     {}", info.status);
    println!("started    {} UTC", format_millis(info.start_time));
    if let Some(end) = info.end_time {
        println!("ended      {} UTC", format_millis(end));
    }
    println!("artifacts  {}", info.artifact_uri);
    section(
        "params",
        params.iter().map(|(k, v)| vec![k.clone(), v.clone()]),
    );
    section(
        "metrics",
        metrics.iter().map(|m| {
            vec![
                m.key.clone(),
                m.value.to_string(),
                format!("step {}", m.step),
            ]
        }),
    );
    section(
        "tags",
        tags.iter().map(|(k, v)| vec![k.clone(), one_line(v)]),
    );
    section(
        "artifacts",
        artifacts.iter().map(|a| {
            vec![
                a.path.clone(),
                a.size.map(|s| format!("{s} B")).unwrap_or_default(),
            ]
        }),
    );
    Ok(())
}

fn rm(store: &RecordStore, name: &str, json: bool) -> anyhow::Result<()> {
    let info = store
        .delete_experiment(name)
        .with_context(|| format!("cannot delete experiment `{name}`"))?;
    if json {
        return output::write_json(&info, None);
    }
    println!(
        "deleted experiment `{}` (id {}) and its runs; MLflow keeps the name reserved until \
         the experiment is purged",
        info.name, info.id
    );
    Ok(())
}

/// JSON has no NaN or infinity: those become strings, as MLflow's REST API writes them.
fn json_number(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else if x.is_nan() {
        json!("NaN")
    } else if x > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

fn one_line(text: &str) -> String {
    text.replace('\n', "\\n")
}

fn section(title: &str, rows: impl Iterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.collect();
    println!("\n{title} ({})", rows.len());
    print_rows(&rows, "  ");
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut all = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    all.extend(rows.iter().cloned());
    print_rows(&all, "");
}

fn print_rows(rows: &[Vec<String>], indent: &str) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i + 1 == row.len() {
                    cell.clone()
                } else {
                    format!("{cell:<w$}", w = widths[i])
                }
            })
            .collect();
        println!("{indent}{}", cells.join("  "));
    }
}
