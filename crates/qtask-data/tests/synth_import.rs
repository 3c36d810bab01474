//! The synthetic market (determinism, listings, suspensions, a learnable signal) and the CSV
//! importer (new folder, appending dates, bad input).

use std::path::Path;

use qtask_data::import::{ImportOptions, import_csv};
use qtask_data::synth::{SynthConfig, synth};
use qtask_data::{Instruments, NaiveDate, Program, Provider, Query, compute};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn cfg(n: usize, seed: u64) -> SynthConfig {
    SynthConfig {
        instruments: n,
        start: d("2015-01-01"),
        end: d("2017-12-31"),
        seed,
    }
}

fn all_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap().path();
            if e.is_dir() {
                stack.push(e);
            } else {
                let rel = e.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&e).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn synth_is_deterministic_per_seed() {
    let t = tempfile::tempdir().unwrap();
    synth(&t.path().join("a"), &cfg(6, 7), &|| {}).unwrap();
    synth(&t.path().join("b"), &cfg(6, 7), &|| {}).unwrap();
    synth(&t.path().join("c"), &cfg(6, 8), &|| {}).unwrap();
    let a = all_bytes(&t.path().join("a"));
    assert_eq!(a, all_bytes(&t.path().join("b")));
    assert_ne!(a, all_bytes(&t.path().join("c")));
    assert!(a.iter().any(|(p, _)| p == "instruments/csi100.txt"));
    // Refuses to overwrite.
    let err = synth(&t.path().join("a"), &cfg(6, 7), &|| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists and is not empty"), "{err}");
}

#[test]
fn synth_has_late_listings_delistings_and_suspensions() {
    let t = tempfile::tempdir().unwrap();
    let s = synth(&t.path().join("m"), &cfg(40, 1), &|| {}).unwrap();
    assert!(s.late_listings > 0 && s.early_delistings > 0, "{s:?}");
    let days = s.days * s.instruments;
    assert!(
        s.suspended_days > days / 400 && s.suspended_days < days / 40,
        "{s:?}"
    );
    let provider = Provider::open(t.path().join("m")).unwrap();
    let fields = ["open", "high", "low", "close", "volume", "vwap"];
    let named: Vec<(String, String)> = fields
        .iter()
        .map(|f| (f.to_string(), format!("${f}")))
        .collect();
    let program = Program::compile(&named).unwrap();
    let q = Query {
        instruments: Instruments::Market("all".into()),
        start: None,
        end: None,
    };
    let f = compute(&provider, &program, &q, &|| {}).unwrap();
    let mut suspended = 0;
    for r in 0..f.len() {
        let nan: Vec<bool> = f.data.iter().map(|c| c[r].is_nan()).collect();
        // A suspended day has every field missing, never some.
        assert!(nan.iter().all(|&x| x) || nan.iter().all(|&x| !x), "row {r}");
        if nan[0] {
            suspended += 1;
        } else {
            assert!(
                f.data[1][r] >= f.data[3][r] && f.data[2][r] <= f.data[3][r],
                "high/low around close"
            );
        }
    }
    assert_eq!(suspended, s.suspended_days);
    let cal = provider.calendar();
    let first_day = |sym: &str| {
        (0..f.len())
            .find(|&r| f.symbol(r) == sym)
            .map(|r| f.datetime[r])
    };
    let all = provider.market("all").unwrap();
    let late = all.iter().find(|(_, sp)| sp[0].0 > cal[0]).unwrap();
    assert_eq!(first_day(late.0), Some(late.1[0].0));
}

#[test]
fn synth_signal_is_learnable() {
    // The planted reversal: the 5-day return predicts the label with a positive mean daily IC.
    let t = tempfile::tempdir().unwrap();
    synth(&t.path().join("m"), &cfg(40, 3), &|| {}).unwrap();
    let provider = Provider::open(t.path().join("m")).unwrap();
    let program = Program::compile(&[
        ("roc5".into(), "Ref($close, 5)/$close".into()),
        ("label".into(), "Ref($close, -2)/Ref($close, -1) - 1".into()),
    ])
    .unwrap();
    let q = Query {
        instruments: Instruments::Market("all".into()),
        start: None,
        end: None,
    };
    let mut f = compute(&provider, &program, &q, &|| {}).unwrap();
    f.sort_by_datetime();
    let mut ics = Vec::new();
    for g in f.datetime_groups() {
        let pairs: Vec<(f64, f64)> = g
            .map(|r| (f.data[0][r] as f64, f.data[1][r] as f64))
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .collect();
        if pairs.len() < 10 {
            continue;
        }
        let n = pairs.len() as f64;
        let (ma, mb) = (
            pairs.iter().map(|p| p.0).sum::<f64>() / n,
            pairs.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let cov: f64 = pairs.iter().map(|p| (p.0 - ma) * (p.1 - mb)).sum();
        let va: f64 = pairs.iter().map(|p| (p.0 - ma).powi(2)).sum();
        let vb: f64 = pairs.iter().map(|p| (p.1 - mb).powi(2)).sum();
        ics.push(cov / (va * vb).sqrt());
    }
    let ic = ics.iter().sum::<f64>() / ics.len() as f64;
    assert!(ic > 0.03, "mean IC {ic}");
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn closes(root: &Path, sym: &str) -> Vec<(NaiveDate, f32)> {
    let provider = Provider::open(root).unwrap();
    let program = Program::compile(&[("c".into(), "$close".into())]).unwrap();
    let q = Query {
        instruments: Instruments::List(vec![sym.into()]),
        start: None,
        end: None,
    };
    let f = compute(&provider, &program, &q, &|| {}).unwrap();
    (0..f.len())
        .map(|r| (f.datetime[r], f.data[0][r]))
        .collect()
}

#[test]
fn import_then_append_new_dates() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("csv");
    write(
        &src.join("sh600000.csv"),
        "date,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,100\n2020-01-03,1.5,2,1,1.25,200\n",
    );
    write(
        &src.join("SZ000001.csv"),
        "date,open,high,low,close,volume\n2020-01-03,10,11,9,10.5,50\n",
    );
    let out = t.path().join("qlib");
    let s = import_csv(&src, &out, &ImportOptions::default()).unwrap();
    assert_eq!((s.symbols, s.calendar_days), (2, 2));
    assert_eq!(
        std::fs::read_to_string(out.join("instruments/all.txt")).unwrap(),
        "SH600000\t2020-01-02\t2020-01-03\nSZ000001\t2020-01-03\t2020-01-03\n"
    );
    // Append: a long CSV with a symbol column, new days only for SH600000, a new symbol.
    let long = t.path().join("more.csv");
    write(
        &long,
        "symbol,date,open,high,low,close,volume\nSH600000,2020-01-03,9,9,9,9,9\nSH600000,2020-01-06,1,2,1,1.75,300\nSH600001,2020-01-06,5,6,4,5.5,10\n",
    );
    let s = import_csv(&long, &out, &ImportOptions::default()).unwrap();
    assert_eq!((s.updated_symbols, s.new_days, s.calendar_days), (1, 1, 3));
    // The existing 2020-01-03 value is kept, the new day appended.
    assert_eq!(
        closes(&out, "SH600000"),
        vec![
            (d("2020-01-02"), 1.5),
            (d("2020-01-03"), 1.25),
            (d("2020-01-06"), 1.75)
        ]
    );
    // SZ000001 has no new row: it keeps ending on 2020-01-03.
    assert_eq!(closes(&out, "SZ000001"), vec![(d("2020-01-03"), 10.5)]);
    assert_eq!(closes(&out, "SH600001"), vec![(d("2020-01-06"), 5.5)]);
}

#[test]
fn bad_csv_is_one_error_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("bad.csv");
    write(
        &src,
        "symbol,date,close\nA,2020-01-02,1\nA,2020-01-03,abc\n",
    );
    let out = t.path().join("qlib");
    let err = import_csv(&src, &out, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("bad.csv: line 3: column `close`: `abc` is not a number"),
        "{err}"
    );
    assert!(!out.exists());
    write(&src, "symbol,close\nA,1\n");
    let err = import_csv(&src, &out, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.ends_with("no `date` column in the header"), "{err}");
}

#[test]
fn synth_writes_an_equal_weighted_benchmark_outside_the_universes() {
    let t = tempfile::tempdir().unwrap();
    let s = synth(&t.path().join("m"), &cfg(12, 3), &|| {}).unwrap();
    assert_eq!(s.benchmark, "SH000300");
    let provider = Provider::open(t.path().join("m")).unwrap();
    let all = provider.market("all").unwrap();
    assert!(
        !all.contains_key("SH000300"),
        "the index must not join `all`"
    );
    assert_eq!(provider.market("csi300").unwrap(), all);
    let index = provider.read_field("SH000300", "close").unwrap().unwrap();
    assert_eq!(index.start, 0);
    assert_eq!(index.values.len(), s.days);
    assert_eq!(index.values[0], 1000.0);
    // Each day's change is the mean change of the instruments trading both days.
    let closes: Vec<_> = all
        .keys()
        .map(|sym| provider.read_field(sym, "close").unwrap().unwrap())
        .collect();
    let at = |b: &qtask_data::binfile::BinSeries, t: usize| {
        if t >= b.start && t < b.end() {
            f64::from(b.values[t - b.start])
        } else {
            f64::NAN
        }
    };
    let mut checked = 0;
    for day in 1..s.days {
        let rets: Vec<f64> = closes
            .iter()
            .map(|b| at(b, day) / at(b, day - 1) - 1.0)
            .filter(|r| r.is_finite())
            .collect();
        let want = if rets.is_empty() {
            0.0
        } else {
            rets.iter().sum::<f64>() / rets.len() as f64
        };
        let got = f64::from(index.values[day]) / f64::from(index.values[day - 1]) - 1.0;
        // The index is stored as float32, so compare at its precision.
        assert!((got - want).abs() < 3e-6, "day {day}: {got} vs {want}");
        checked += 1;
    }
    assert!(checked > 500);
}
