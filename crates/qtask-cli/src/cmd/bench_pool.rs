//! `qtask bench pool`: claim throughput of W worker processes against the store's raw
//! single-row write rate, measured in the same run.
//!
//! The parent spawns itself W times in a hidden worker role; each worker connects, says
//! `ready`, and starts only when the parent writes `go`, so connection set-up is not timed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use qtask_pool::bench::RawWriter;
use qtask_pool::{CreateOptions, FetchOptions, Query, Status, open};

use crate::output;

/// Tasks per `create_tasks` call while prefilling (keeps the progress bar moving).
const PREFILL_CHUNK: usize = 50_000;

/// A worker reports progress every this many operations.
const REPORT_EVERY: u64 = 100;

/// Arguments of `qtask bench pool`.
#[derive(Debug, Args)]
pub struct BenchPoolArgs {
    /// Task store to measure (its tables are used; the bench pools are removed afterwards).
    #[arg(long, env = "QTASK_STORE")]
    pub store: String,
    /// No-op tasks to claim and commit.
    #[arg(long, default_value_t = 2000)]
    pub tasks: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Extra waiting tasks, in another pool of the same store, that the claims never match.
    #[arg(long, default_value_t = 0)]
    pub prefill: usize,
    /// Keep the prefilled pool for the next run (it is reused when its size matches).
    #[arg(long)]
    pub keep_prefill: bool,
    /// Internal: run as a worker process of a bench run.
    #[arg(long, hide = true)]
    pub role: Option<Role>,
    /// Internal: the pool a claim worker drains.
    #[arg(long, hide = true)]
    pub pool: Option<String>,
    /// Internal: the row a raw worker updates.
    #[arg(long, hide = true, default_value_t = 0)]
    pub slot: usize,
    /// Internal: how many updates a raw worker makes.
    #[arg(long, hide = true, default_value_t = 0)]
    pub count: u64,
    /// In the claim role, print every committed id (used by the exactly-once tests).
    #[arg(long, hide = true)]
    pub print_ids: bool,
}

/// What a worker process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Claim and commit until the pool is empty.
    Claim,
    /// Single-row updates, `--count` of them.
    Raw,
}

/// Runs `qtask bench pool`.
pub fn run(args: BenchPoolArgs) -> anyhow::Result<()> {
    match args.role {
        Some(role) => worker(&args, role),
        None => parent(&args),
    }
}

fn wait_for_go() -> anyhow::Result<()> {
    println!("ready");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "go" {
        bail!("bench worker: expected `go` on stdin");
    }
    Ok(())
}

fn worker(args: &BenchPoolArgs, role: Role) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match role {
        Role::Claim => {
            let name = args.pool.as_deref().context("--pool is required")?;
            let pool = open(&args.store, name)?;
            drop(out);
            wait_for_go()?;
            out = std::io::stdout().lock();
            let opts = FetchOptions::default();
            let mut n = 0u64;
            // A worker's hot path: each commit also claims the next task, in one round trip.
            let mut next = pool.fetch_task(&opts)?;
            while let Some(c) = next {
                next = pool.commit_and_fetch(&c.task.id, &c.token, &Value::Null, None, &opts)?;
                n += 1;
                if args.print_ids {
                    writeln!(out, "id {}", c.task.id)?;
                }
                if n.is_multiple_of(REPORT_EVERY) {
                    writeln!(out, "+{REPORT_EVERY}")?;
                    out.flush()?;
                }
            }
            writeln!(out, "count {n}")?;
        }
        Role::Raw => {
            let mut w = RawWriter::open(&args.store, args.slot)?;
            drop(out);
            wait_for_go()?;
            out = std::io::stdout().lock();
            for i in 1..=args.count {
                w.write_once()?;
                if i.is_multiple_of(REPORT_EVERY) {
                    writeln!(out, "+{REPORT_EVERY}")?;
                    out.flush()?;
                }
            }
            writeln!(out, "count {}", args.count)?;
        }
    }
    out.flush()?;
    Ok(())
}

struct Phase {
    seconds: f64,
    count: u64,
}

/// Spawns the workers, starts them together, and times them until the last one exits.
fn run_phase(args: &BenchPoolArgs, role: Role, pool: &str, total: u64) -> anyhow::Result<Phase> {
    let exe = std::env::current_exe().context("cannot find the qtask executable")?;
    let label = match role {
        Role::Claim => "claims",
        Role::Raw => "raw writes",
    };
    let mut children: Vec<(Child, ChildStdin, BufReader<std::process::ChildStdout>)> = Vec::new();
    let per = total / args.workers as u64;
    for slot in 0..args.workers {
        let count = if slot + 1 == args.workers {
            total - per * (args.workers as u64 - 1)
        } else {
            per
        };
        let mut child = Command::new(&exe)
            .args(["bench", "pool", "--store", &args.store, "--pool", pool])
            .args([
                "--role",
                role.to_possible_value().expect("named").get_name(),
            ])
            .args(["--slot", &slot.to_string(), "--count", &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start a bench worker")?;
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            bail!("a bench worker failed to start (see its error above)");
        }
        children.push((child, stdin, stdout));
    }
    let bar = output::bar(total, label);
    let start = Instant::now();
    for (_, stdin, _) in &mut children {
        writeln!(stdin, "go")?;
        stdin.flush()?;
    }
    let counts: Vec<anyhow::Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = children
            .iter_mut()
            .map(|(child, _, stdout)| {
                let bar = bar.clone();
                s.spawn(move || -> anyhow::Result<u64> {
                    let mut count = None;
                    for line in stdout.lines() {
                        let line = line?;
                        if let Some(n) = line.strip_prefix('+') {
                            bar.inc(n.parse().unwrap_or(0));
                        } else if let Some(n) = line.strip_prefix("count ") {
                            count = n.parse().ok();
                        }
                    }
                    let status = child.wait()?;
                    match (status.success(), count) {
                        (true, Some(n)) => Ok(n),
                        _ => bail!("a bench worker failed ({status})"),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader thread"))
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut count = 0;
    for c in counts {
        count += c?;
    }
    Ok(Phase { seconds, count })
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn parent(args: &BenchPoolArgs) -> anyhow::Result<()> {
    if args.workers == 0 || args.tasks == 0 {
        bail!("--workers and --tasks must be at least 1");
    }
    // Unique enough for concurrent runs on one store: time and process id.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let run_id = format!("{nanos:x}-{:x}", std::process::id());
    let name = format!("bench-{run_id}");
    let pool = open(&args.store, &name)?;

    // The prefill pool is named after its size so --keep-prefill can reuse it.
    let prefill_name = format!("bench-prefill-{}", args.prefill);
    let mut prefill_seconds = None;
    if args.prefill > 0 {
        let other = open(&args.store, &prefill_name)?;
        let have: u64 = other.task_stat(&Query::all())?.values().sum();
        if have != args.prefill as u64 {
            other.remove(&Query::all())?;
            let bar = output::bar(args.prefill as u64, "prefilling");
            let start = Instant::now();
            let mut i = 0;
            while i < args.prefill {
                let end = (i + PREFILL_CHUNK).min(args.prefill);
                let defs: Vec<Value> = (i..end).map(|k| json!({"prefill": k})).collect();
                other.create_tasks(&defs, &CreateOptions::default())?;
                bar.inc((end - i) as u64);
                i = end;
            }
            bar.finish_and_clear();
            prefill_seconds = Some(round(start.elapsed().as_secs_f64()));
        }
    }

    let defs: Vec<Value> = (0..args.tasks)
        .map(|i| json!({"bench": run_id, "i": i}))
        .collect();
    let start = Instant::now();
    pool.create_tasks(&defs, &CreateOptions::default())?;
    let create_seconds = start.elapsed().as_secs_f64();

    RawWriter::prepare(&args.store, args.workers)?;
    let raw = run_phase(args, Role::Raw, &name, args.tasks as u64)?;
    let claim = run_phase(args, Role::Claim, &name, args.tasks as u64)?;

    let done = pool
        .task_stat(&Query::all())?
        .get(&Status::Done)
        .copied()
        .unwrap_or(0);
    let exactly_once = claim.count == args.tasks as u64 && done == args.tasks as u64;
    pool.remove(&Query::all())?;
    if args.prefill > 0 && !args.keep_prefill {
        open(&args.store, &prefill_name)?.remove(&Query::all())?;
    }
    if !exactly_once {
        bail!(
            "workers committed {} claims and the pool shows {done} done, for {} tasks",
            claim.count,
            args.tasks
        );
    }
    let claims_per_second = rate(claim.count, claim.seconds);
    let raw_per_second = rate(raw.count, raw.seconds);
    let report = json!({
        "store": qtask_pool::StoreUrl::redacted(&args.store),
        "tasks": args.tasks,
        "workers": args.workers,
        "prefill": args.prefill,
        "prefill_seconds": prefill_seconds,
        "create_seconds": round(create_seconds),
        "creates_per_second": round(rate(args.tasks as u64, create_seconds)),
        "claim_seconds": round(claim.seconds),
        "claims_per_second": round(claims_per_second),
        "raw_seconds": round(raw.seconds),
        "raw_updates_per_second": round(raw_per_second),
        "ratio": round(if raw_per_second > 0.0 { claims_per_second / raw_per_second } else { 0.0 }),
        "exactly_once": exactly_once,
    });
    output::write_json(&report, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_guard_zero_time() {
        assert_eq!(rate(10, 0.0), 0.0);
        assert_eq!(rate(10, 2.0), 5.0);
        assert_eq!(round(1.23456), 1.235);
    }
}
