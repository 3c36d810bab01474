//! `qtask manage`: Qlib's `python -m qlib.workflow.task.manage` over a qtask pool.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use qtask_pool::{
    CreateOptions, FetchOptions, Query, Status, Task, TaskPool, TaskStat, default_owner, open,
    unfinished,
};

use crate::ExitWith;
use crate::flags::StoreFlags;
use crate::output;

/// Arguments of `qtask manage`.
#[derive(Debug, Args)]
pub struct ManageArgs {
    #[command(flatten)]
    pub store: StoreFlags,
    /// The task pool (Qlib's collection name); required by every method except `list`.
    #[arg(short = 't', long = "task-pool", global = true)]
    pub pool: Option<String>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub method: Method,
}

/// The TaskManager methods.
#[derive(Debug, Subcommand)]
pub enum Method {
    /// List the pools of the store.
    List,
    /// Insert the task definitions of FILE (a JSON array or object; `-` for stdin), skipping
    /// ones already in the pool; prints their ids in input order.
    Create {
        /// JSON file of task definitions (`qtask gen` output), or `-`.
        file: PathBuf,
        /// Insert nothing; report which definitions are new.
        #[arg(long)]
        dry_run: bool,
        /// Attempt limit for the new tasks (default: the pool's, else 3).
        #[arg(long)]
        max_attempts: Option<u32>,
    },
    /// Claim one task (sets it running); prints it, or null when none matches.
    Fetch {
        /// Restrict to tasks matching this query.
        #[arg(long)]
        query: Option<String>,
        /// The status to claim from.
        #[arg(long, default_value = "waiting", value_parser = crate::flags::status_values())]
        status: Status,
        /// Lease in seconds; 0: no lease (running until reset, as in Qlib).
        #[arg(long, default_value_t = 300)]
        lease: u64,
    },
    /// Store a task's result and set its status.
    Commit {
        /// Task id.
        id: String,
        /// The result, as JSON.
        #[arg(long)]
        res: String,
        /// New status (default done).
        #[arg(long, value_parser = crate::flags::status_values())]
        status: Option<Status>,
        /// Lease token from the claim: refused if the lease was lost since.
        #[arg(long)]
        token: Option<String>,
    },
    /// Set a task's status back (default: the status it was claimed from, else waiting).
    Return {
        /// Task id.
        id: String,
        /// New status.
        #[arg(long, value_parser = crate::flags::status_values())]
        status: Option<Status>,
        /// Lease token from the claim: refused if the lease was lost since.
        #[arg(long)]
        token: Option<String>,
    },
    /// Print the tasks matching a query (all without one).
    Query {
        /// MongoDB-style JSON query.
        query: Option<String>,
    },
    /// Print one task.
    #[command(name = "re_query", visible_alias = "re-query")]
    ReQuery {
        /// Task id.
        id: String,
    },
    /// Count tasks per status.
    #[command(name = "task_stat", visible_alias = "task-stat")]
    TaskStat {
        /// Restrict to tasks matching this query.
        #[arg(long)]
        query: Option<String>,
    },
    /// Block until no matching task is waiting, running or part_done (exit 3 on --timeout).
    Wait {
        /// Restrict to tasks matching this query.
        #[arg(long)]
        query: Option<String>,
        /// Give up after this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
        /// Seconds between checks.
        #[arg(long, default_value_t = 2.0)]
        poll: f64,
    },
    /// Set running tasks back to waiting.
    #[command(name = "reset_waiting", visible_alias = "reset-waiting")]
    ResetWaiting {
        /// Which tasks (default: every running task).
        #[arg(long)]
        query: Option<String>,
    },
    /// Set the status of matching tasks.
    #[command(name = "reset_status", visible_alias = "reset-status")]
    ResetStatus {
        /// The new status.
        #[arg(long, value_parser = crate::flags::status_values())]
        status: Status,
        /// Which tasks (default: all).
        #[arg(long)]
        query: Option<String>,
    },
    /// Set a task's priority (higher is fetched first; `none` clears it).
    Prioritize {
        /// Task id.
        id: String,
        /// An integer, or `none`.
        #[arg(allow_hyphen_values = true)]
        priority: String,
    },
    /// Delete matching tasks (the whole pool only with --yes).
    Remove {
        /// Which tasks.
        #[arg(long)]
        query: Option<String>,
        /// Confirm deleting the whole pool when the query is empty.
        #[arg(long)]
        yes: bool,
    },
    /// Put failed tasks back to waiting, attempts reset.
    Retry {
        /// Which failed tasks (default: all).
        #[arg(long)]
        query: Option<String>,
    },
    /// Replace a task's definition with the JSON object in FILE (`-`: stdin).
    #[command(visible_alias = "replace_task")]
    Replace {
        /// Task id.
        id: String,
        /// JSON file holding the new definition.
        file: PathBuf,
    },
    /// Set the pool's attempt limit (`default`: back to 3).
    #[command(name = "max_attempts", visible_alias = "max-attempts")]
    MaxAttempts {
        /// A positive integer, or `default`.
        limit: String,
    },
}

fn parse_query(text: Option<&str>, what: &str) -> anyhow::Result<Query> {
    Query::parse_str(text.unwrap_or("")).with_context(|| format!("bad {what}"))
}

fn read_json(file: &Path) -> anyhow::Result<Value> {
    let text = if file == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read stdin")?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    qtask_core::json::parse(&text).with_context(|| format!("{} is not valid JSON", file.display()))
}

fn print_docs(tasks: &[Task], json_out: bool) -> anyhow::Result<()> {
    if json_out {
        let docs: Vec<Value> = tasks.iter().map(Task::to_document).collect();
        return output::write_json(&docs, None);
    }
    let shown = distinguishing(tasks);
    println!(
        "{:<10} {:<10} {:>8} {:>8}  {}",
        "_id",
        "status",
        "priority",
        "attempts",
        if shown.is_some() {
            "def (the fields that differ)"
        } else {
            "def"
        }
    );
    for (i, t) in tasks.iter().enumerate() {
        let mut def = match &shown {
            Some(rows) => rows[i].clone(),
            None => t.def.to_string(),
        };
        if def.chars().count() > 100 {
            def = def.chars().take(97).collect::<String>() + "...";
        }
        let prio = t.priority.map_or("-".to_string(), |p| p.to_string());
        println!(
            "{:<10} {:<10} {:>8} {:>8}  {def}",
            t.id, t.status, prio, t.attempts
        );
    }
    Ok(())
}

/// For each task, the leaves of its definition whose value is not the same in every task
/// (`path=value, ...`; rolling tasks differ by their segments, grids by their parameters):
/// what tells the tasks apart, instead of the long prefix they share. `None` when fewer than
/// two tasks or nothing differs.
fn distinguishing(tasks: &[Task]) -> Option<Vec<String>> {
    if tasks.len() < 2 {
        return None;
    }
    let flat: Vec<BTreeMap<String, Value>> = tasks
        .iter()
        .map(|t| qtask_core::path::flatten(&t.def).into_iter().collect())
        .collect();
    let mut paths: Vec<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    paths.sort();
    paths.dedup();
    let differ: Vec<&String> = paths
        .into_iter()
        .filter(|p| flat.iter().any(|m| m.get(*p) != flat[0].get(*p)))
        .collect();
    if differ.is_empty() {
        return None;
    }
    Some(
        flat.iter()
            .map(|m| {
                differ
                    .iter()
                    .map(|p| {
                        let v = m.get(*p).map_or("-".to_string(), |v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        });
                        format!("{p}={v}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect(),
    )
}

fn print_stat(stat: &TaskStat, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        let m: serde_json::Map<String, Value> = stat
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), json!(n)))
            .collect();
        return output::write_json(&Value::Object(m), None);
    }
    for (s, n) in stat {
        println!("{s}: {n}");
    }
    Ok(())
}

fn pool_for(args: &ManageArgs, method: &str) -> anyhow::Result<Box<dyn TaskPool>> {
    let Some(name) = args.pool.as_deref() else {
        bail!("`manage {method}` needs the pool: -t POOL");
    };
    open(&args.store.store, name).map_err(anyhow::Error::from)
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::List => "list",
        Method::Create { .. } => "create",
        Method::Fetch { .. } => "fetch",
        Method::Commit { .. } => "commit",
        Method::Return { .. } => "return",
        Method::Query { .. } => "query",
        Method::ReQuery { .. } => "re_query",
        Method::TaskStat { .. } => "task_stat",
        Method::Wait { .. } => "wait",
        Method::ResetWaiting { .. } => "reset_waiting",
        Method::ResetStatus { .. } => "reset_status",
        Method::Prioritize { .. } => "prioritize",
        Method::Remove { .. } => "remove",
        Method::Retry { .. } => "retry",
        Method::Replace { .. } => "replace",
        Method::MaxAttempts { .. } => "max_attempts",
    }
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        anyhow::anyhow!("{flag} must be a non-negative number of seconds (got {value})")
    })
}

/// Runs `qtask manage`.
pub fn run(args: ManageArgs) -> anyhow::Result<()> {
    let name = method_name(&args.method);
    if let Method::List = args.method {
        // Listing needs a connection but no particular pool.
        let pool = open(&args.store.store, args.pool.as_deref().unwrap_or("default"))?;
        let names = pool.list()?;
        if args.json {
            return output::write_json(&names, None);
        }
        for n in names {
            println!("{n}");
        }
        return Ok(());
    }
    // Parse every argument before touching the store, so bad input changes nothing.
    let pool = || pool_for(&args, name);
    let json_out = args.json;
    match &args.method {
        Method::List => unreachable!("handled above"),
        Method::Create {
            file,
            dry_run,
            max_attempts,
        } => {
            let defs = match read_json(file)? {
                Value::Array(items) => items,
                obj @ Value::Object(_) => vec![obj],
                other => bail!(
                    "{}: expected a JSON array of task definitions, got {}",
                    file.display(),
                    match other {
                        Value::Null => "null",
                        Value::String(_) => "a string",
                        Value::Number(_) => "a number",
                        _ => "a boolean",
                    }
                ),
            };
            if *max_attempts == Some(0) {
                bail!("--max-attempts must be at least 1");
            }
            let opts = CreateOptions {
                dry_run: *dry_run,
                max_attempts: *max_attempts,
            };
            let out = pool()?
                .create_tasks(&defs, &opts)
                .with_context(|| format!("{}", file.display()))?;
            let new = out.iter().filter(|c| c.new).count();
            if json_out {
                let ids: Vec<Option<String>> = out.into_iter().map(|c| c.id).collect();
                return output::write_json(&ids, None);
            }
            for c in &out {
                println!("{}", c.id.as_deref().unwrap_or("(new)"));
            }
            let verb = if *dry_run { "would create" } else { "created" };
            eprintln!(
                "{verb} {new} new task(s); {} already in the pool",
                out.len() - new
            );
        }
        Method::Fetch {
            query,
            status,
            lease,
        } => {
            let opts = FetchOptions {
                query: parse_query(query.as_deref(), "--query")?,
                status: *status,
                lease: (*lease > 0).then(|| Duration::from_secs(*lease)),
                owner: default_owner(),
            };
            let claimed = pool()?.fetch_task(&opts)?;
            if let Some(c) = &claimed {
                // The token goes to stderr so `--json` stdout stays the bare document.
                eprintln!(
                    "claimed task {} (lease token {}; pass --token to commit/return to fence them)",
                    c.task.id, c.token
                );
            }
            match claimed {
                Some(c) => output::write_json(&c.task.to_document(), None)?,
                None if json_out => output::write_json(&Value::Null, None)?,
                None => println!("no matching {status} task"),
            }
        }
        Method::Commit {
            id,
            res,
            status,
            token,
        } => {
            let res: Value = qtask_core::json::parse(res).context("--res is not valid JSON")?;
            let pool = pool()?;
            pool.commit_task_res(id, token.as_deref(), &res, *status)?;
            print_task(&*pool, id, json_out, "committed")?;
        }
        Method::Return { id, status, token } => {
            let pool = pool()?;
            pool.return_task(id, token.as_deref(), *status)?;
            print_task(&*pool, id, json_out, "returned")?;
        }
        Method::Query { query } => {
            let q = parse_query(query.as_deref(), "query")?;
            print_docs(&pool()?.query(&q)?, json_out)?;
        }
        Method::ReQuery { id } => {
            let task = pool()?.re_query(id)?;
            output::write_json(&task.to_document(), None)?;
        }
        Method::TaskStat { query } => {
            let q = parse_query(query.as_deref(), "--query")?;
            print_stat(&pool()?.task_stat(&q)?, json_out)?;
        }
        Method::Wait {
            query,
            timeout,
            poll,
        } => {
            let q = parse_query(query.as_deref(), "--query")?;
            let timeout = timeout.map(|t| seconds(t, "--timeout")).transpose()?;
            let poll = seconds(*poll, "--poll")?.max(Duration::from_millis(10));
            let pool = pool()?;
            let bar = output::bar(0, "waiting");
            let mut last = TaskStat::new();
            let finished = pool.wait(&q, poll, timeout, &mut |stat| {
                let total: u64 = stat.values().sum();
                bar.set_length(total);
                bar.set_position(total - unfinished(stat));
                last = stat.clone();
            })?;
            bar.finish_and_clear();
            if !finished {
                // Scripts get the counts either way; exit 3 says they are not final.
                if json_out {
                    print_stat(&last, true)?;
                }
                let left: Vec<String> = last
                    .iter()
                    .filter(|(s, _)| {
                        matches!(s, Status::Waiting | Status::Running | Status::PartDone)
                    })
                    .map(|(s, n)| format!("{n} {s}"))
                    .collect();
                return Err(
                    ExitWith(3, format!("wait timed out with {} left", left.join(", "))).into(),
                );
            }
            if json_out {
                print_stat(&last, true)?;
            } else {
                eprintln!("nothing left to run");
            }
        }
        Method::ResetWaiting { query } => {
            let q = parse_query(query.as_deref(), "--query")?;
            let n = pool()?.reset_waiting(&q)?;
            report_count(n, "reset to waiting", json_out)?;
        }
        Method::ResetStatus { status, query } => {
            let q = parse_query(query.as_deref(), "--query")?;
            let n = pool()?.reset_status(&q, *status)?;
            report_count(n, &format!("set to {status}"), json_out)?;
        }
        Method::Prioritize { id, priority } => {
            let p = match priority.as_str() {
                "none" | "null" => None,
                s => Some(s.parse::<i64>().with_context(|| {
                    format!("priority must be an integer or `none`, got {s:?}")
                })?),
            };
            let pool = pool()?;
            pool.prioritize(id, p)?;
            print_task(&*pool, id, json_out, "prioritized")?;
        }
        Method::Remove { query, yes } => {
            let q = parse_query(query.as_deref(), "--query")?;
            let pool = pool()?;
            if q.conds.is_empty() && !yes {
                let n: u64 = pool.task_stat(&q)?.values().sum();
                bail!(
                    "refusing to delete the whole pool {:?} ({n} tasks) without --yes",
                    pool.name()
                );
            }
            let n = pool.remove(&q)?;
            report_count(n, "removed", json_out)?;
        }
        Method::Retry { query } => {
            let q = parse_query(query.as_deref(), "--query")?;
            let n = pool()?.retry(&q)?;
            report_count(n, "put back to waiting", json_out)?;
        }
        Method::Replace { id, file } => {
            let def = read_json(file)?;
            let pool = pool()?;
            pool.replace_task(id, &def)
                .with_context(|| format!("{}", file.display()))?;
            print_task(&*pool, id, json_out, "replaced")?;
        }
        Method::MaxAttempts { limit } => {
            let n = match limit.as_str() {
                "default" => None,
                s => match s.parse::<u32>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => bail!(
                        "the attempt limit must be a positive integer or `default`, got {s:?}"
                    ),
                },
            };
            pool()?.set_max_attempts(n)?;
            if json_out {
                output::write_json(&json!({ "max_attempts": n }), None)?;
            }
        }
    }
    Ok(())
}

/// After a write to one task: its document with `--json`, else a short note.
fn print_task(pool: &dyn TaskPool, id: &str, json_out: bool, what: &str) -> anyhow::Result<()> {
    if json_out {
        output::write_json(&pool.re_query(id)?.to_document(), None)
    } else {
        eprintln!("{what} task {id}");
        Ok(())
    }
}

fn report_count(n: u64, what: &str, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        output::write_json(&json!({ "count": n }), None)
    } else {
        eprintln!("{n} task(s) {what}");
        Ok(())
    }
}
