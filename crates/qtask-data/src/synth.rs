//! A synthetic market in Qlib's layout, deterministic per seed, with a planted signal a model
//! can learn: each day's return reverts part of the previous five days' move, and abnormal
//! volume predicts the return two days later. Some instruments list late or delist early;
//! about 1% of days are suspended (every field NaN).
//!
//! The market also has a benchmark index, [`BENCHMARK`] (`SH000300`): the equal-weighted mean
//! of the instruments' daily close-to-close changes, chained from 1000. It has its own
//! features folder but is in no instruments file, so universes such as `all` are unchanged;
//! `instruments/csi300.txt` lists every instrument (the market Qlib's benchmark configs trade).

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, Weekday};
use rayon::prelude::*;
use serde::Serialize;

use crate::binfile::{BinSeries, write_atomic, write_bin};
use crate::error::{DataError, Result};

/// The synthetic market's benchmark index (Qlib's CSI300 code).
pub const BENCHMARK: &str = "SH000300";

/// The file `qtask data synth` leaves at the root of the market it writes: reports read it to
/// say that their figures come from made-up prices.
pub const SYNTH_MARKER: &str = "qtask_synthetic.json";

/// What a data folder's synthetic marker says, when it has one: one line for a report.
pub fn synthetic_note(provider: &Path) -> Option<String> {
    let text = std::fs::read_to_string(provider.join(SYNTH_MARKER)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(format!(
        "data: a SYNTHETIC market written by `qtask data synth` ({} instruments, {} to {}, seed {}) \
         at {}; the figures show how the pipeline works, not how a strategy would do on real prices",
        v["instruments"],
        v["start"].as_str().unwrap_or("?"),
        v["end"].as_str().unwrap_or("?"),
        v["seed"],
        provider.display()
    ))
}

/// Parameters of `qtask data synth`.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Number of instruments.
    pub instruments: usize,
    /// First calendar day.
    pub start: NaiveDate,
    /// Last calendar day.
    pub end: NaiveDate,
    /// Random seed: the same seed gives byte-identical files.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct SynthSummary {
    /// The provider folder.
    pub out: PathBuf,
    /// Trading days in the calendar.
    pub days: usize,
    /// Instruments written.
    pub instruments: usize,
    /// Instruments listed after the first day.
    pub late_listings: usize,
    /// Instruments delisted before the last day.
    pub early_delistings: usize,
    /// Instrument-days suspended (all fields NaN).
    pub suspended_days: usize,
    /// The benchmark index written (features only, in no instruments file).
    pub benchmark: String,
}

/// SplitMix64: small, fast and fully determined by its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Weekdays from `start` to `end`, the synthetic trading calendar.
pub fn weekdays(start: NaiveDate, end: NaiveDate) -> Vec<NaiveDate> {
    start
        .iter_days()
        .take_while(|d| *d <= end)
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .collect()
}

/// Symbol of the i-th synthetic instrument.
pub fn symbol(i: usize) -> String {
    format!("SH{}", 600000 + i)
}

struct Generated {
    symbol: String,
    first: usize,
    last: usize,
    fields: Vec<(&'static str, Vec<f32>)>,
    suspended: usize,
    /// Close and volume as written (from `first`), kept for the benchmark index.
    close: Vec<f32>,
    volume: Vec<f32>,
}

fn generate(i: usize, days: usize, market: &[f64], seed: u64) -> Generated {
    let mut rng = Rng::new(seed, i as u64 + 1);
    let n = days;
    // About a fifth list late and a sixth delist early; everyone keeps at least a year.
    let first = if rng.uniform() < 0.2 {
        (rng.uniform() * n as f64 * 0.4) as usize
    } else {
        0
    };
    let last = if rng.uniform() < 0.15 {
        n - 1 - (rng.uniform() * n as f64 * 0.4) as usize
    } else {
        n - 1
    };
    let last = last.max((first + 250).min(n - 1));
    let beta = 0.6 + 0.8 * rng.uniform();
    let vol = 0.012 + 0.012 * rng.uniform();
    let base_volume = 2e5 * (1.0 + 20.0 * rng.uniform());
    let mut close = 5.0 + 45.0 * rng.uniform();
    let mut rets: Vec<f64> = Vec::new();
    let mut vol_shock = vec![0.0f64; n];
    let mut out: Vec<Vec<f32>> = (0..8)
        .map(|_| Vec::with_capacity(last + 1 - first))
        .collect();
    let mut suspended = 0;
    let mut v_state = 0.0f64;
    for t in first..=last {
        let k = t - first;
        v_state = 0.7 * v_state + 0.5 * rng.normal();
        vol_shock[t] = v_state;
        // The planted signal: reversal of the last five days and the volume shock two days ago.
        let past5: f64 = rets.iter().rev().take(5).sum();
        let vol_effect = if t >= 2 { vol_shock[t - 2] } else { 0.0 };
        let signal = -0.08 * past5 + 0.004 * vol_effect;
        let r = beta * market[t] + signal + vol * rng.normal();
        let is_suspended = k > 0 && rng.uniform() < 0.01;
        if is_suspended {
            suspended += 1;
            for f in out.iter_mut() {
                f.push(f32::NAN);
            }
            rets.push(0.0);
            continue;
        }
        let prev = close;
        close *= r.exp();
        rets.push(r);
        let open = prev * (0.003 * rng.normal()).exp();
        let hi = open.max(close) * (1.0 + 0.006 * rng.uniform());
        let lo = open.min(close) * (1.0 - 0.006 * rng.uniform());
        let vwap = (hi + lo + close + open) / 4.0;
        let volume = base_volume * (v_state + 0.2 * rng.normal()).exp();
        let change = if k == 0 { f64::NAN } else { close / prev - 1.0 };
        for (f, v) in out
            .iter_mut()
            .zip([open, hi, lo, close, volume, vwap, 1.0, change])
        {
            f.push(v as f32);
        }
    }
    let names = [
        "open", "high", "low", "close", "volume", "vwap", "factor", "change",
    ];
    Generated {
        symbol: symbol(i),
        first,
        last,
        close: out[3].clone(),
        volume: out[4].clone(),
        fields: names.into_iter().zip(out).collect(),
        suspended,
    }
}

/// The equal-weighted index of the instruments: each day's mean close-to-close change of the
/// instruments with a close that day and the day before (0 when none), chained from 1000.
/// Fields as a stock's: OHLC/vwap, summed volume, factor 1, change.
fn benchmark_fields(gens: &[Generated], n: usize) -> Vec<(&'static str, Vec<f32>)> {
    let close_at = |g: &Generated, t: usize| -> f64 {
        if t < g.first || t > g.last {
            f64::NAN
        } else {
            f64::from(g.close[t - g.first])
        }
    };
    let mut level = 1000.0f64;
    let mut cols: Vec<Vec<f32>> = (0..8).map(|_| Vec::with_capacity(n)).collect();
    for t in 0..n {
        let prev_level = level;
        if t > 0 {
            let (sum, count) = gens
                .iter()
                .map(|g| close_at(g, t) / close_at(g, t - 1) - 1.0)
                .filter(|r| r.is_finite())
                .fold((0.0, 0usize), |(s, c), r| (s + r, c + 1));
            if count > 0 {
                level *= 1.0 + sum / count as f64;
            }
        }
        let volume: f64 = gens
            .iter()
            .filter(|g| t >= g.first && t <= g.last)
            .map(|g| f64::from(g.volume[t - g.first]))
            .filter(|v| v.is_finite())
            .sum();
        let change = if t == 0 {
            f64::NAN
        } else {
            level / prev_level - 1.0
        };
        let (open, close) = (prev_level, level);
        for (c, v) in cols.iter_mut().zip([
            open,
            open.max(close),
            open.min(close),
            close,
            volume,
            close,
            1.0,
            change,
        ]) {
            c.push(v as f32);
        }
    }
    [
        "open", "high", "low", "close", "volume", "vwap", "factor", "change",
    ]
    .into_iter()
    .zip(cols)
    .collect()
}

/// Writes a synthetic market to `out`, which must not exist or be empty. Everything is
/// written to a sibling temporary folder first and renamed into place, so a failure leaves
/// nothing behind. `tick` is called once per instrument written.
pub fn synth(out: &Path, cfg: &SynthConfig, tick: &(dyn Fn() + Sync)) -> Result<SynthSummary> {
    if cfg.instruments == 0 {
        return Err(DataError::Invalid(
            "--instruments must be at least 1".into(),
        ));
    }
    let cal = weekdays(cfg.start, cfg.end);
    if cal.len() < 260 {
        return Err(DataError::Invalid(format!(
            "{} to {} has {} trading days; synth needs at least 260 (about a year)",
            cfg.start,
            cfg.end,
            cal.len()
        )));
    }
    if out.exists() {
        let non_empty = std::fs::read_dir(out)
            .map_err(|e| DataError::io(out, e))?
            .next()
            .is_some();
        if non_empty {
            return Err(DataError::Invalid(format!(
                "{} already exists and is not empty; choose a new folder",
                out.display()
            )));
        }
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    let tmp = parent.join(format!(
        ".{}.synth-tmp{}",
        out.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = write_market(&tmp, &cal, cfg, tick);
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if out.exists() {
        std::fs::remove_dir(out).map_err(|e| DataError::io(out, e))?;
    }
    std::fs::rename(&tmp, out).map_err(|e| DataError::io(out, e))?;
    Ok(SynthSummary {
        out: out.to_path_buf(),
        ..summary
    })
}

fn write_market(
    dir: &Path,
    cal: &[NaiveDate],
    cfg: &SynthConfig,
    tick: &(dyn Fn() + Sync),
) -> Result<SynthSummary> {
    let n = cal.len();
    let mut mrng = Rng::new(cfg.seed, 0);
    let market: Vec<f64> = (0..n).map(|_| 0.0002 + 0.01 * mrng.normal()).collect();
    let cal_text: String = cal.iter().map(|d| format!("{d}\n")).collect();
    write_atomic(&dir.join("calendars/day.txt"), cal_text.as_bytes())?;
    let marker = serde_json::json!({
        "generator": "qtask data synth",
        "instruments": cfg.instruments,
        "start": cfg.start.to_string(),
        "end": cfg.end.to_string(),
        "seed": cfg.seed,
    });
    write_atomic(&dir.join(SYNTH_MARKER), format!("{marker:#}\n").as_bytes())?;
    let gens: Vec<Generated> = (0..cfg.instruments)
        .into_par_iter()
        .map(|i| {
            let g = generate(i, n, &market, cfg.seed);
            for (field, values) in &g.fields {
                let path = dir
                    .join("features")
                    .join(g.symbol.to_lowercase())
                    .join(format!("{field}.day.bin"));
                write_bin(
                    &path,
                    &BinSeries {
                        start: g.first,
                        values: values.clone(),
                    },
                )?;
            }
            tick();
            Ok(Generated {
                fields: Vec::new(),
                ..g
            })
        })
        .collect::<Result<_>>()?;
    for (field, values) in benchmark_fields(&gens, n) {
        let path = dir
            .join("features")
            .join(BENCHMARK.to_lowercase())
            .join(format!("{field}.day.bin"));
        write_bin(&path, &BinSeries { start: 0, values })?;
    }
    let line = |g: &Generated| format!("{}\t{}\t{}\n", g.symbol, cal[g.first], cal[g.last]);
    let all: String = gens.iter().map(line).collect();
    write_atomic(&dir.join("instruments/all.txt"), all.as_bytes())?;
    // The broad market Qlib's benchmark configs trade (`market: csi300`): every instrument.
    write_atomic(&dir.join("instruments/csi300.txt"), all.as_bytes())?;
    // A csi100-like index: a fixed, seed-determined subset of about 60% of the instruments.
    let mut pick = Rng::new(cfg.seed, u64::MAX);
    let csi: String = gens
        .iter()
        .filter(|_| pick.uniform() < 0.6)
        .map(line)
        .collect();
    write_atomic(&dir.join("instruments/csi100.txt"), csi.as_bytes())?;
    Ok(SynthSummary {
        out: dir.to_path_buf(),
        days: n,
        instruments: gens.len(),
        late_listings: gens.iter().filter(|g| g.first > 0).count(),
        early_delistings: gens.iter().filter(|g| g.last < n - 1).count(),
        suspended_days: gens.iter().map(|g| g.suspended).sum(),
        benchmark: BENCHMARK.to_string(),
    })
}
