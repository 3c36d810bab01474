//! `qtask bench scale`: a pool at scale. Creates `--tasks` tasks (timed), drains them all to
//! `done` with `--workers` claimers (so the store holds what a real drain leaves behind), then
//! claims `--claims` more tasks with the same workers while every earlier task is done, and
//! reports the claim rate and the latency of single claims (median, 99.9th percentile, worst):
//! a store-wide scan in the claim path shows up as a worst case far above the median.

use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

use qtask_pool::{CreateOptions, FetchOptions, Query, Status, TaskPool, open};

use crate::output;

/// Tasks per `create_tasks` call (the progress bar moves between calls).
const CREATE_CALL: usize = 100_000;

/// Arguments of `qtask bench scale`.
#[derive(Debug, Args)]
pub struct BenchScaleArgs {
    /// Task store to measure (a pool named `bench-scale-...` is created and removed).
    #[arg(long, env = "QTASK_STORE")]
    pub store: String,
    /// Tasks created, then drained to done.
    #[arg(long, default_value_t = 1_000_000)]
    pub tasks: usize,
    /// Tasks claimed (and committed) after the drain, with single-claim latencies recorded.
    #[arg(long, default_value_t = 20_000)]
    pub claims: usize,
    /// Claiming threads, each with its own connection.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Drain by two bulk status updates (every task set running with a lease, then done)
    /// instead of claiming each one: the same dead index entries a drain leaves, in minutes
    /// less (a 1,000,000-task drain by claims takes the store's claim rate).
    #[arg(long)]
    pub bulk_drain: bool,
    /// PostgreSQL: drop the lease index before claiming (what claims cost without it).
    #[arg(long)]
    pub without_lease_index: bool,
    /// Keep the pool afterwards (to look at it).
    #[arg(long)]
    pub keep: bool,
}

/// Runs `qtask bench scale`.
pub fn run(args: BenchScaleArgs) -> anyhow::Result<()> {
    let name = format!("bench-scale-{}", uuid_like());
    let pool = open(&args.store, &name)?;
    let result = measure(&args, &name, pool.as_ref());
    if !args.keep {
        let bar = output::bar(0, "removing");
        pool.remove(&Query::all())?;
        bar.finish_and_clear();
    }
    let report = result?;
    output::write_json(&report, None)
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

fn measure(args: &BenchScaleArgs, name: &str, pool: &dyn TaskPool) -> anyhow::Result<Value> {
    // 1. Create.
    let bar = output::bar(args.tasks as u64, "creating");
    let started = Instant::now();
    let mut i = 0;
    while i < args.tasks {
        let end = (i + CREATE_CALL).min(args.tasks);
        let defs: Vec<Value> = (i..end).map(|k| json!({"bench": k})).collect();
        pool.create_tasks(&defs, &CreateOptions::default())?;
        bar.set_position(end as u64);
        i = end;
    }
    let create_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    // 2. Drain everything to done, as workers would.
    let bar = output::bar(args.tasks as u64, "draining");
    let started = Instant::now();
    let drained = if args.bulk_drain {
        qtask_pool::bench::bulk_drain(&args.store, name)? as usize
    } else {
        claim_all(args, name, None, &|| bar.inc(1))?
    };
    let drain_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if args.without_lease_index {
        qtask_pool::bench::drop_lease_index(&args.store)?;
    }

    // 3. Claims while the pool holds every drained task as done.
    let defs: Vec<Value> = (0..args.claims).map(|k| json!({"late": k})).collect();
    pool.create_tasks(&defs, &CreateOptions::default())?;
    let bar = output::bar(args.claims as u64, "claiming");
    let latencies = Mutex::new(Vec::with_capacity(args.claims));
    let started = Instant::now();
    let claimed = claim_all(args, name, Some(&latencies), &|| bar.inc(1))?;
    let claim_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let done = pool.task_stat(&Query::all())?;

    let mut lat = latencies.into_inner().expect("not poisoned");
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    Ok(json!({
        "store": qtask_pool::StoreUrl::redacted(&args.store),
        "workers": args.workers,
        "bulk_drain": args.bulk_drain,
        "lease_index": !args.without_lease_index,
        "tasks": args.tasks,
        "create_seconds": round(create_s),
        "created_per_second": round(args.tasks as f64 / create_s),
        "drained": drained,
        "drain_seconds": round(drain_s),
        "claims": claimed,
        "claims_per_second": round(claimed as f64 / claim_s),
        "claim_ms_median": round(pct(0.5) * 1e3),
        "claim_ms_p999": round(pct(0.999) * 1e3),
        "claim_ms_max": round(lat.last().copied().unwrap_or(0.0) * 1e3),
        "done_at_end": done.get(&Status::Done).copied().unwrap_or(0),
    }))
}

/// Claims and commits until nothing is waiting, with `args.workers` threads; records each
/// claim's latency (the `fetch_task` call alone) when asked.
fn claim_all(
    args: &BenchScaleArgs,
    name: &str,
    latencies: Option<&Mutex<Vec<f64>>>,
    tick: &(dyn Fn() + Sync),
) -> anyhow::Result<usize> {
    let total = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..args.workers.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    let pool = open(&args.store, name)?;
                    let opts = FetchOptions::default();
                    let mut mine = Vec::new();
                    loop {
                        let t = Instant::now();
                        let Some(c) = pool.fetch_task(&opts)? else {
                            break;
                        };
                        mine.push(t.elapsed().as_secs_f64());
                        pool.commit_task_res(&c.task.id, Some(&c.token), &Value::Null, None)?;
                        total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tick();
                    }
                    if let Some(l) = latencies {
                        l.lock().expect("not poisoned").extend(mine);
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a bench thread panicked"))
                .context("claiming")??;
        }
        Ok(())
    })?;
    Ok(total.into_inner())
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
