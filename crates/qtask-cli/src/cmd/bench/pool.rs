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
    /// Rounds of a raw phase followed by a claim phase (of --tasks each); the figures are
    /// the medians, the ratio the median of each round's own ratio, so that a machine
    /// running faster or slower for a while moves both sides of a round alike.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
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

/// The median of `xs` (the mean of the middle two for an even count).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn parent(args: &BenchPoolArgs) -> anyhow::Result<()> {
    if args.workers == 0 || args.tasks == 0 || args.rounds == 0 {
        bail!("--workers, --tasks and --rounds must be at least 1");
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

    RawWriter::prepare(&args.store, args.workers)?;
    let mut create_seconds = 0.0;
    let mut rounds = Vec::with_capacity(args.rounds);
    let mut claimed = 0;
    for r in 0..args.rounds {
        let defs: Vec<Value> = (0..args.tasks)
            .map(|i| json!({"bench": run_id, "round": r, "i": i}))
            .collect();
        let start = Instant::now();
        pool.create_tasks(&defs, &CreateOptions::default())?;
        if r == 0 {
            create_seconds = start.elapsed().as_secs_f64();
        }
        let raw = run_phase(args, Role::Raw, &name, args.tasks as u64)?;
        let claim = run_phase(args, Role::Claim, &name, args.tasks as u64)?;
        claimed += claim.count;
        rounds.push((
            rate(claim.count, claim.seconds),
            rate(raw.count, raw.seconds),
        ));
    }

    let expected = (args.tasks * args.rounds) as u64;
    let done = pool
        .task_stat(&Query::all())?
        .get(&Status::Done)
        .copied()
        .unwrap_or(0);
    let exactly_once = claimed == expected && done == expected;
    pool.remove(&Query::all())?;
    if args.prefill > 0 && !args.keep_prefill {
        open(&args.store, &prefill_name)?.remove(&Query::all())?;
    }
    if !exactly_once {
        bail!(
            "workers committed {claimed} claims and the pool shows {done} done, for {expected} tasks"
        );
    }
    let ratio = |(claims, raw): (f64, f64)| if raw > 0.0 { claims / raw } else { 0.0 };
    let report = json!({
        "store": qtask_pool::StoreUrl::redacted(&args.store),
        "tasks": args.tasks,
        "workers": args.workers,
        "prefill": args.prefill,
        "prefill_seconds": prefill_seconds,
        "create_seconds": round(create_seconds),
        "creates_per_second": round(rate(args.tasks as u64, create_seconds)),
        "rounds": args.rounds,
        "claims_per_second": round(median(rounds.iter().map(|r| r.0).collect())),
        "raw_updates_per_second": round(median(rounds.iter().map(|r| r.1).collect())),
        "ratio": round(median(rounds.iter().copied().map(ratio).collect())),
        "round_ratios": rounds.iter().copied().map(|r| round(ratio(r))).collect::<Vec<_>>(),
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

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
