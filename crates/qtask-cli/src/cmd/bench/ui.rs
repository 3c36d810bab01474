//! `qtask bench ui`: how fast the dashboard answers over a big pool.
//!
//! Fills one pool with N tasks in a realistic mix (60% done, 5% failed, the rest waiting,
//! plus a few running tasks, two of them with expired leases), starts the dashboard in this
//! process on a free loopback port and times real HTTP requests for the pools page (`/`),
//! its API (`/api/pools`) and the pool's own page, each read fresh from the store (the
//! dashboard keeps no cache). It also times the store's overview call alone, and checks that
//! the page's counts are the pool's `task_stat`. Times are wall milliseconds (median, 95th
//! percentile, maximum) and the CPU milliseconds per request of this process (server and
//! client; a PostgreSQL server's own work is not in it): on a busy machine, CPU says more
//! than wall time.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use qtask_pool::{CreateOptions, FetchOptions, Query, Status, TaskPool};

use crate::output;

/// The benchmark's pool.
const POOL: &str = "bench-ui";

/// Tasks per `create_tasks` call (keeps the progress bar moving).
const CHUNK: usize = 50_000;

/// Arguments of `qtask bench ui`.
#[derive(Debug, Args)]
pub struct BenchUiArgs {
    /// Task store (default: a temporary SQLite file, removed afterwards).
    #[arg(long)]
    store: Option<String>,
    /// Tasks in the pool.
    #[arg(long, default_value_t = 1_000_000)]
    tasks: usize,
    /// Timed requests per page.
    #[arg(long, default_value_t = 20)]
    requests: usize,
    /// Keep the filled pool for the next run (reused when its size matches).
    #[arg(long)]
    keep: bool,
}

/// Median, 95th percentile and maximum of `ms`, in milliseconds.
fn summary(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    json!({"median": round(at(0.5)), "p95": round(at(0.95)), "max": round(at(1.0))})
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Fills the pool; returns the seconds taken by the inserts and by the status changes.
fn fill(pool: &dyn TaskPool, n: usize) -> anyhow::Result<(f64, f64)> {
    pool.remove(&Query::all())?;
    let bar = output::bar(n as u64, "creating");
    let start = Instant::now();
    for first in (0..n).step_by(CHUNK) {
        let defs: Vec<Value> = (first..(first + CHUNK).min(n))
            .map(|i| {
                let bucket = match i % 20 {
                    0..12 => "done",
                    12 => "failed",
                    _ => "waiting",
                };
                json!({"model": {"class": "LGBModel", "kwargs": {"seed": i}},
                       "dataset": {"segments": {"test": ["2020-01-01", "2020-03-31"]}},
                       "bucket": bucket})
            })
            .collect();
        pool.create_tasks(&defs, &CreateOptions::default())?;
        bar.inc(defs.len() as u64);
    }
    bar.finish_and_clear();
    let created = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for (bucket, status) in [("done", Status::Done), ("failed", Status::Failed)] {
        pool.reset_status(
            &Query::parse_str(&format!(r#"{{"def.bucket": "{bucket}"}}"#))?,
            status,
        )?;
    }
    // Running tasks: a few live leases and two that have run out (claimed last: a claim
    // takes an expired lease before any waiting task).
    for k in 0..20 {
        let lease = if k < 18 {
            Duration::from_secs(3600)
        } else {
            Duration::from_millis(1)
        };
        pool.fetch_task(&FetchOptions {
            lease: Some(lease),
            ..FetchOptions::default()
        })?;
    }
    Ok((created, start.elapsed().as_secs_f64()))
}

/// CPU seconds this process (server and client threads together) has used, from
/// `/proc/self/stat` (0 where it cannot be read): on a busy machine, CPU per request says
/// more than wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `) `.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; in clock
    // ticks, 100 per second on Linux.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn get(agent: &ureq::Agent, url: &str) -> anyhow::Result<(f64, String)> {
    let start = Instant::now();
    let mut resp = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let body = resp.body_mut().read_to_string()?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    Ok((ms, body))
}

/// Runs `qtask bench ui`.
pub fn run(args: BenchUiArgs) -> anyhow::Result<()> {
    if args.requests == 0 {
        bail!("--requests must be at least 1");
    }
    let tmp = tempfile::tempdir()?;
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", tmp.path().join("bench-ui.db").display()));
    let pool = qtask_pool::open(&store, POOL)?;
    let have: u64 = pool.task_stat(&Query::all())?.values().sum();
    let (create_seconds, status_seconds) = if have == args.tasks as u64 && args.keep {
        (None, None)
    } else {
        let (c, s) = fill(&*pool, args.tasks)?;
        (Some(c), Some(s))
    };
    let expected = pool.task_stat(&Query::all())?;

    let mut overview_ms = Vec::new();
    let cpu = cpu_seconds();
    for _ in 0..args.requests {
        let start = Instant::now();
        pool.overview()?;
        overview_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let overview_cpu = (cpu_seconds() - cpu) * 1000.0 / args.requests as f64;

    let mut config = qtask_web::Config::new(&store);
    config.bind = "127.0.0.1:0".parse()?;
    config.store_timeout = Duration::from_secs(60);
    let running = qtask_web::Server::new(config, None)?.start()?;
    let base = format!("http://{}", running.addr());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();

    // The API's counts must be the pool's own.
    let (_, body) = get(&agent, &format!("{base}/api/pools"))?;
    let api: Value = serde_json::from_str(&body)?;
    let row = api
        .as_array()
        .and_then(|a| a.iter().find(|p| p["pool"] == POOL))
        .context("the bench pool is missing from /api/pools")?;
    let want: serde_json::Map<String, Value> = expected
        .iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    if row["counts"] != Value::Object(want.clone()) {
        bail!(
            "the dashboard counts {} but task_stat says {}",
            row["counts"],
            Value::Object(want)
        );
    }

    let mut timed = serde_json::Map::new();
    for (name, path) in [
        ("pools_page_ms", "/".to_string()),
        ("api_pools_ms", "/api/pools".to_string()),
        ("pool_page_ms", format!("/pools/{POOL}")),
    ] {
        let url = format!("{base}{path}");
        get(&agent, &url)?; // warm-up
        let mut ms = Vec::with_capacity(args.requests);
        let cpu = cpu_seconds();
        for _ in 0..args.requests {
            ms.push(get(&agent, &url)?.0);
        }
        let mut s = summary(ms);
        s["cpu_per_request"] = json!(round((cpu_seconds() - cpu) * 1000.0 / args.requests as f64));
        timed.insert(name.into(), s);
    }
    running.stop();
    if !args.keep || args.store.is_none() {
        pool.remove(&Query::all())?;
    }
    let mut out = json!({
        "store": qtask_pool::StoreUrl::redacted(&store),
        "tasks": args.tasks,
        "counts": row["counts"],
        "expired_leases": row["expired_leases"],
        "create_seconds": create_seconds.map(round),
        "status_seconds": status_seconds.map(round),
        "requests": args.requests,
        "overview_ms": summary(overview_ms),
        "overview_cpu_ms": round(overview_cpu),
    });
    if let Value::Object(m) = &mut out {
        m.extend(timed);
    }
    output::write_json(&out, None)
}
