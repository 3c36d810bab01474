//! `qtask collect`: turn an experiment's runs into prediction tables (Qlib's
//! `RecorderCollector` + `RollingGroup` + ensembles), over the runs store.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use qtask_collect::{
    AverageEnsemble, CollectMap, Collected, Key, PredTable, Process, RecorderCollector,
    RollingEnsemble, RollingGroup, RunSource, path_filter, path_key, process_collect,
};
use qtask_record::names::PRED_ARTIFACT;
use serde::Serialize;

use crate::flags::TrackingFlags;
use crate::output::tables::{TableSummary, out_format, write_table};
use crate::output::{bar, write_json};

/// How runs are grouped before reducing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    /// Qlib's RollingGroup: by all but the last key element (the test segment).
    Rolling,
    /// No grouping: the ensemble (if any) combines every run.
    None,
}

/// How a group (or everything) is reduced to one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Reduce {
    /// RollingEnsemble: stitch windows, the later window wins on overlap.
    Rolling,
    /// AverageEnsemble: average per-datetime z-scores.
    Average,
    /// Keep one table per run.
    None,
}

/// Arguments of `qtask collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Experiment whose runs are collected.
    #[arg(long)]
    experiment: String,
    #[command(flatten)]
    tracking: TrackingFlags,
    /// Dotted paths making a run's key: into its task.json (`model.class`), or `tags.NAME`,
    /// `params.NAME`. Several paths make a tuple key.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "model.class,dataset.kwargs.segments.test"
    )]
    key: Vec<String>,
    /// Keep only runs where PATH equals VALUE (repeatable; all must hold).
    #[arg(long = "where", value_name = "PATH=VALUE")]
    conditions: Vec<String>,
    /// Artifacts to load as NAME=PATH (repeatable) [default: pred=pred.parquet].
    #[arg(long = "artifact", value_name = "NAME=PATH")]
    artifacts: Vec<String>,
    /// Run statuses to keep (repeatable; `any` for all) [default: FINISHED].
    #[arg(long = "status")]
    statuses: Vec<String>,
    /// Fail on a run without a requested artifact instead of skipping it.
    #[arg(long)]
    require_artifacts: bool,
    /// Grouping before the ensemble.
    #[arg(long, value_enum, default_value = "rolling")]
    group: GroupBy,
    /// Ensemble reducing each group (or all runs with --group none).
    #[arg(long, value_enum, default_value = "rolling")]
    ensemble: Reduce,
    /// Write the table(s) here (.parquet or .csv); several tables get the group key and,
    /// with several artifacts, the artifact name inserted before the extension.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// One table of the result, for the summary.
#[derive(Serialize)]
struct Written {
    artifact: String,
    /// The group key (JSON: a string or an array), null for one table per artifact.
    key: Option<serde_json::Value>,
    /// The key as Python prints it (`('LGBModel',)`), for the text summary.
    #[serde(skip)]
    key_text: Option<String>,
    runs: usize,
    #[serde(flatten)]
    table: TableSummary,
}

#[derive(Serialize)]
struct Summary {
    experiment: String,
    runs: usize,
    warnings: Vec<String>,
    tables: Vec<Written>,
}

fn split_pair<'a>(text: &'a str, flag: &str, what: &str) -> anyhow::Result<(&'a str, &'a str)> {
    match text.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a, b)),
        _ => bail!("{flag} `{text}`: expected {what}"),
    }
}

/// Runs `qtask collect`.
pub fn run(args: CollectArgs) -> anyhow::Result<()> {
    // Every argument is checked before the store is touched.
    if let Some(out) = &args.out {
        out_format(out)?;
    }
    let keys: Vec<String> = args
        .key
        .iter()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        bail!("--key: give at least one dotted path");
    }
    if args.group == GroupBy::Rolling && keys.len() < 2 {
        bail!(
            "--group rolling groups by all but the last key element: give --key two or more paths (e.g. model.class,dataset.kwargs.segments.test), or --group none"
        );
    }
    if args.group == GroupBy::Rolling && args.ensemble == Reduce::None {
        bail!("--group rolling needs --ensemble rolling or average to reduce each group");
    }
    let conditions = args
        .conditions
        .iter()
        .map(|c| {
            split_pair(c, "--where", "PATH=VALUE").map(|(p, v)| (p.to_string(), v.to_string()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let artifacts = if args.artifacts.is_empty() {
        vec![("pred".to_string(), PRED_ARTIFACT.to_string())]
    } else {
        let mut seen = HashSet::new();
        let mut list = Vec::new();
        for a in &args.artifacts {
            let (name, path) = split_pair(a, "--artifact", "NAME=PATH")?;
            if !seen.insert(name) {
                bail!("--artifact: `{name}` given twice");
            }
            list.push((name.to_string(), path.to_string()));
        }
        list
    };
    let statuses: Vec<String> = if args.statuses.is_empty() {
        vec!["FINISHED".into()]
    } else if args.statuses.iter().any(|s| s.eq_ignore_ascii_case("any")) {
        Vec::new()
    } else {
        for s in &args.statuses {
            s.parse::<qtask_record::RunStatus>()
                .with_context(|| "--status".to_string())?;
        }
        args.statuses
            .iter()
            .map(|s| s.to_ascii_uppercase())
            .collect()
    };

    let source = args.tracking.open(false)?;
    let all_runs = source
        .runs(&args.experiment)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if all_runs.is_empty() {
        bail!("experiment `{}` has no runs", args.experiment);
    }

    let mut collector = RecorderCollector::new(&source, args.experiment.clone())
        .key_fn(path_key(keys))
        .artifacts(artifacts.clone())
        .statuses(statuses.clone());
    if !conditions.is_empty() {
        collector = collector.filter_fn(path_filter(conditions));
    }
    if args.require_artifacts {
        collector = collector.require_artifacts();
    }
    let selected = collector.selected_runs()?;
    if selected.is_empty() {
        let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &all_runs {
            *by_status.entry(r.status.as_str()).or_default() += 1;
        }
        let counts: Vec<String> = by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let wanted = if statuses.is_empty() {
            "any status".to_string()
        } else {
            statuses.join("/")
        };
        bail!(
            "experiment `{}`: no run matches ({} runs: {}; wanted {wanted}{})",
            args.experiment,
            all_runs.len(),
            counts.join(", "),
            if args.conditions.is_empty() {
                String::new()
            } else {
                format!(" and --where {}", args.conditions.join(" "))
            }
        );
    }

    let pb = bar(selected.len() as u64, "loading runs");
    let collected = collector.collect_with(|done, _| pb.set_position(done as u64))?;
    pb.finish_and_clear();
    let mut warnings = collector.take_warnings();
    warnings.extend(source.take_warnings());
    if collected.is_empty() {
        let names: Vec<&str> = artifacts.iter().map(|a| a.1.as_str()).collect();
        bail!(
            "experiment `{}`: none of {} runs has {}",
            args.experiment,
            selected.len(),
            names.join(" or ")
        );
    }
    let group_sizes = member_counts(&collected, args.group);

    let reduce: Option<Box<dyn Process>> = match (args.group, args.ensemble) {
        (GroupBy::Rolling, Reduce::Rolling) => Some(Box::new(RollingGroup::new())),
        (GroupBy::Rolling, Reduce::Average) => {
            Some(Box::new(RollingGroup::with_ensemble(AverageEnsemble)))
        }
        (GroupBy::None, Reduce::Rolling) => Some(Box::new(RollingEnsemble)),
        (GroupBy::None, Reduce::Average) => Some(Box::new(AverageEnsemble)),
        (_, Reduce::None) => None,
    };
    let processes: Vec<&dyn Process> = reduce.iter().map(|p| p.as_ref()).collect();
    let result = process_collect(collected, &processes).context("ensemble")?;

    let tables = leaves(result);
    let paths = output_paths(args.out.as_deref(), &tables)?;
    let mut written = Vec::new();
    for ((artifact, key, table), path) in tables.iter().zip(paths) {
        if let Some(p) = &path {
            write_table(table, p)?;
        }
        let runs = match key {
            Some(k) => group_sizes
                .get(&(artifact.clone(), k.clone()))
                .copied()
                .unwrap_or(1),
            None => group_sizes
                .get(&(artifact.clone(), Key::tuple([])))
                .copied()
                .unwrap_or(0),
        };
        written.push(Written {
            artifact: artifact.clone(),
            key: key.as_ref().map(Key::to_json),
            key_text: key.as_ref().map(Key::to_string),
            runs,
            table: TableSummary::of(table, path.as_deref().unwrap_or(Path::new("-"))),
        });
    }

    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let summary = Summary {
        experiment: args.experiment,
        runs: selected.len(),
        warnings,
        tables: written,
    };
    if args.json {
        return write_json(&summary, None);
    }
    println!(
        "experiment `{}`: {} runs collected",
        summary.experiment, summary.runs
    );
    for w in &summary.tables {
        let key = w
            .key_text
            .as_ref()
            .map(|k| format!(" {k}"))
            .unwrap_or_default();
        let line = if args.out.is_some() {
            w.table.line()
        } else {
            w.table.line().trim_end_matches(" -> -").to_string()
        };
        println!("{}{key} ({} runs): {line}", w.artifact, w.runs);
    }
    if args.out.is_none() {
        println!("(nothing written: give --out FILE.parquet or FILE.csv to save)");
    }
    Ok(())
}

/// Members per `(artifact, group key)`: how many runs each output table is made of.
/// `Key::tuple([])` stands for "all runs of the artifact".
fn member_counts(collected: &CollectMap, group: GroupBy) -> BTreeMap<(String, Key), usize> {
    let mut counts = BTreeMap::new();
    for (artifact, value) in collected.iter() {
        let Some(runs) = value.as_map() else { continue };
        let artifact = artifact.label();
        for key in runs.keys() {
            let group_key = match (group, key) {
                (GroupBy::Rolling, Key::Tuple(parts)) if !parts.is_empty() => {
                    Key::Tuple(parts[..parts.len() - 1].to_vec())
                }
                (GroupBy::Rolling, k) => k.clone(),
                (GroupBy::None, k) => k.clone(),
            };
            *counts.entry((artifact.clone(), group_key)).or_default() += 1;
        }
        counts.insert((artifact, Key::tuple([])), runs.len());
    }
    counts
}

/// `(artifact, group or run key, table)` for every table of the result.
fn leaves(result: CollectMap) -> Vec<(String, Option<Key>, PredTable)> {
    let mut out = Vec::new();
    for (artifact, value) in result {
        match value {
            Collected::Table(t) => out.push((artifact.label(), None, t)),
            Collected::Map(m) => {
                for (path, t) in m.flatten() {
                    let key = if path.len() == 1 {
                        path.into_iter().next().expect("one")
                    } else {
                        Key::Tuple(path)
                    };
                    out.push((artifact.label(), Some(key), t));
                }
            }
        }
    }
    out
}

/// Where each table goes: `--out` itself for a single table, else `--out` with the
/// artifact (when several) and the key inserted before the extension.
fn output_paths(
    out: Option<&Path>,
    tables: &[(String, Option<Key>, PredTable)],
) -> anyhow::Result<Vec<Option<PathBuf>>> {
    let Some(out) = out else {
        return Ok(vec![None; tables.len()]);
    };
    if tables.len() == 1 {
        return Ok(vec![Some(out.to_path_buf())]);
    }
    let artifacts: HashSet<&str> = tables.iter().map(|t| t.0.as_str()).collect();
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let ext = out
        .extension()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut seen = HashSet::new();
    let mut paths = Vec::new();
    for (artifact, key, _) in tables {
        let mut name = stem.clone();
        if artifacts.len() > 1 {
            name.push('.');
            name.push_str(&sanitize(artifact));
        }
        if let Some(k) = key {
            name.push('.');
            name.push_str(&sanitize(&k.label()));
        }
        let path = out.with_file_name(format!("{name}.{ext}"));
        if !seen.insert(path.clone()) {
            bail!(
                "--out: two tables would both be written to {}",
                path.display()
            );
        }
        paths.push(Some(path));
    }
    Ok(paths)
}

/// Keeps file names portable: anything but letters, digits, `-`, `_` and `.` becomes `_`.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
