//! `qtask backtest`: Qlib's daily backtest of a prediction table (TopkDropoutStrategy by
//! default), with the signal analysis, into one output folder.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use qtask_backtest::analysis::{SignalAnalysis, default_label};
use qtask_backtest::config::{
    AccountConfig, Benchmark, DealPrice, LimitThreshold, MethodBuy, MethodSell, TopkDropout,
    TopkWeight,
};
use qtask_backtest::result::{HTML_FILE, write_folder};
use qtask_backtest::{BacktestConfig, StrategyConfig, backtest_with_progress, check_universe};
use qtask_data::provider::parse_date;
use qtask_data::{NaiveDate, Provider};
use qtask_record::{format_millis, now_millis};
use qtask_table::PredTable;
use serde_json::json;

use crate::output::{bar, write_json};

/// The strategy to run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    /// Qlib's TopkDropoutStrategy.
    TopkDropout,
    /// Equal weights over the top k (Qlib's WeightStrategyBase with OrderGenWOInteract).
    TopkWeight,
}

/// Arguments of `qtask backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Qlib data folder (calendars/, instruments/, features/).
    #[arg(long, env = "QTASK_PROVIDER_URI")]
    provider_uri: PathBuf,
    /// Prediction table (Parquet: datetime, instrument, score), as `qtask rolling` writes it.
    #[arg(long)]
    pred: PathBuf,
    /// First trading day [default: the prediction's first day].
    #[arg(long, value_parser = date_arg)]
    start: Option<NaiveDate>,
    /// Last trading day [default: the trading day after the prediction's last].
    #[arg(long, value_parser = date_arg)]
    end: Option<NaiveDate>,
    /// Strategy.
    #[arg(long, value_enum, default_value = "topk-dropout")]
    strategy: StrategyArg,
    /// Stocks held.
    #[arg(long, default_value_t = 50)]
    topk: usize,
    /// Stocks replaced each day (TopkDropoutStrategy).
    #[arg(long, default_value_t = 5)]
    n_drop: usize,
    /// Which holdings to sell: bottom or random (TopkDropoutStrategy).
    #[arg(long, default_value = "bottom")]
    method_sell: String,
    /// Which candidates to buy: top or random (TopkDropoutStrategy).
    #[arg(long, default_value = "top")]
    method_buy: String,
    /// Seed of NumPy's generator for random selling/buying [default: from the clock].
    #[arg(long)]
    seed: Option<u32>,
    /// Days a stock is held before it may be sold.
    #[arg(long, default_value_t = 1.0)]
    hold_thresh: f64,
    /// Decide with the day's tradability (TopkDropoutStrategy's only_tradable).
    #[arg(long)]
    only_tradable: bool,
    /// Sell at limit-up and buy at limit-down (forbid_all_trade_at_limit=False).
    #[arg(long)]
    trade_at_limit: bool,
    /// Share of the cash (TopkDropout) or account (TopkWeight) invested.
    #[arg(long, default_value_t = 0.95)]
    risk_degree: f64,
    /// Benchmark: a code, comma-separated codes (their mean daily change), or `none`.
    #[arg(long, default_value = "SH000300")]
    benchmark: String,
    /// Starting cash.
    #[arg(long, default_value_t = 100_000_000.0)]
    account: f64,
    /// Deal price: close, open, vwap, a $field or an expression; `BUY,SELL` for two.
    #[arg(long, default_value = "close")]
    deal_price: String,
    /// Price limit on $change (a number), `none`, or `BUY_EXPR;SELL_EXPR`.
    #[arg(long, default_value = "0.095")]
    limit_threshold: String,
    /// Cost rate of buying.
    #[arg(long, default_value_t = 0.0005)]
    open_cost: f64,
    /// Cost rate of selling.
    #[arg(long, default_value_t = 0.0015)]
    close_cost: f64,
    /// Smallest cost of a deal.
    #[arg(long, default_value_t = 5.0)]
    min_cost: f64,
    /// Market impact cost rate.
    #[arg(long, default_value_t = 0.0)]
    impact_cost: f64,
    /// Shares per lot (through $factor), or `none`.
    #[arg(long, default_value = "100")]
    trade_unit: String,
    /// Tradable universe: a market file name (instruments/<market>.txt).
    #[arg(long, default_value = "all")]
    market: String,
    /// Periods per year of the risk analysis (Qlib's daily risk_analysis uses 238).
    #[arg(long, default_value_t = 238.0)]
    ann_scaler: f64,
    /// Skip the signal analysis (quantiles, monthly IC, autocorrelation) in the report.
    #[arg(long)]
    no_signal_analysis: bool,
    /// Output folder (written whole or not at all).
    #[arg(long)]
    out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn date_arg(s: &str) -> Result<NaiveDate, String> {
    parse_date(s).ok_or_else(|| format!("`{s}` is not a YYYY-MM-DD date"))
}

fn finite(name: &str, v: f64) -> anyhow::Result<f64> {
    anyhow::ensure!(
        v.is_finite() && v >= 0.0,
        "--{name} {v} must be a non-negative number"
    );
    Ok(v)
}

fn config(a: &BacktestArgs) -> anyhow::Result<BacktestConfig> {
    let mut cfg = BacktestConfig {
        start: a.start,
        end: a.end,
        seed: a.seed,
        ann_scaler: a.ann_scaler,
        ..BacktestConfig::default()
    };
    anyhow::ensure!(a.topk > 0, "--topk must be at least 1");
    cfg.strategy = match a.strategy {
        StrategyArg::TopkDropout => StrategyConfig::TopkDropoutStrategy(TopkDropout {
            topk: a.topk,
            n_drop: a.n_drop,
            method_sell: match a.method_sell.as_str() {
                "bottom" => MethodSell::Bottom,
                "random" => MethodSell::Random,
                other => anyhow::bail!("--method-sell `{other}` is not bottom or random"),
            },
            method_buy: match a.method_buy.as_str() {
                "top" => MethodBuy::Top,
                "random" => MethodBuy::Random,
                other => anyhow::bail!("--method-buy `{other}` is not top or random"),
            },
            hold_thresh: finite("hold-thresh", a.hold_thresh)?,
            only_tradable: a.only_tradable,
            forbid_all_trade_at_limit: !a.trade_at_limit,
            risk_degree: finite("risk-degree", a.risk_degree)?,
        }),
        StrategyArg::TopkWeight => StrategyConfig::TopkWeightStrategy(TopkWeight {
            topk: a.topk,
            risk_degree: finite("risk-degree", a.risk_degree)?,
        }),
    };
    cfg.benchmark = match a.benchmark.trim() {
        "" | "none" => Benchmark::None,
        b if b.contains(',') => Benchmark::Codes(
            b.split(',')
                .map(|c| c.trim().to_uppercase())
                .filter(|c| !c.is_empty())
                .collect(),
        ),
        b => Benchmark::Code(b.to_uppercase()),
    };
    cfg.account = AccountConfig {
        cash: finite("account", a.account)?,
        stocks: Vec::new(),
    };
    let ex = &mut cfg.exchange;
    ex.codes = qtask_data::Instruments::Market(a.market.clone());
    ex.deal_price = match a.deal_price.split_once(',') {
        Some((b, s)) => DealPrice {
            buy: DealPrice::same(b).buy,
            sell: DealPrice::same(s).sell,
        },
        None => DealPrice::same(&a.deal_price),
    };
    ex.limit_threshold = match a.limit_threshold.trim() {
        "none" => LimitThreshold::None,
        t => match t.split_once(';') {
            Some((b, s)) => LimitThreshold::Exprs {
                buy: b.trim().to_string(),
                sell: s.trim().to_string(),
            },
            None => LimitThreshold::Change(t.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(
                || anyhow::anyhow!("--limit-threshold `{t}` is not a number, `none` or `BUY;SELL` expressions"),
            )?),
        },
    };
    ex.open_cost = finite("open-cost", a.open_cost)?;
    ex.close_cost = finite("close-cost", a.close_cost)?;
    ex.min_cost = finite("min-cost", a.min_cost)?;
    ex.impact_cost = finite("impact-cost", a.impact_cost)?;
    ex.trade_unit = match a.trade_unit.trim() {
        "none" => None,
        u => Some(
            u.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| {
                    anyhow::anyhow!("--trade-unit `{u}` is not a positive number or `none`")
                })?,
        ),
    };
    Ok(cfg)
}

/// Runs `qtask backtest`.
pub fn run(a: BacktestArgs) -> anyhow::Result<()> {
    let cfg = config(&a)?;
    let pred = PredTable::read_parquet(&a.pred)
        .with_context(|| format!("cannot read the prediction {}", a.pred.display()))?;
    anyhow::ensure!(
        !pred.is_empty(),
        "the prediction {} has no rows",
        a.pred.display()
    );
    qtask_backtest::signal::score_column(&pred)
        .with_context(|| format!("prediction {}", a.pred.display()))?;
    check_universe(&pred, &cfg)?;
    let provider = Provider::open(&a.provider_uri)?;
    let pb = bar(0, "backtest");
    let result = backtest_with_progress(&provider, &pred, &cfg, &|done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    });
    pb.finish_and_clear();
    let result = result?;
    let signal = if a.no_signal_analysis {
        None
    } else {
        let label = default_label(&provider, &pred)?;
        Some(SignalAnalysis::compute(&pred, &label, 5)?)
    };
    let html = qtask_backtest::report::render_page(
        &format!("qtask backtest: {}", a.pred.display()),
        &format!("{} UTC", format_millis(now_millis())),
        &result,
        signal.as_ref(),
    );
    let mut files = result.files()?;
    files.push((HTML_FILE, html.into_bytes()));
    write_folder(&a.out, &files)?;

    let last = result.report.last();
    let summary = json!({
        "out": a.out,
        "days": result.report.len(),
        "first_day": result.report.first().map(|r| r.date.to_string()),
        "last_day": last.map(|r| r.date.to_string()),
        "final_account": last.map(|r| r.account),
        "risk": result.risk_json(),
        "indicator_analysis": result.indicator_analysis_json(),
        "seed": result.seed,
    });
    if a.json {
        return write_json(&summary, None);
    }
    println!(
        "backtest {} to {} ({} trading days): account {:.2} -> {:.2}",
        summary["first_day"].as_str().unwrap_or("-"),
        summary["last_day"].as_str().unwrap_or("-"),
        result.report.len(),
        cfg.account.cash,
        last.map_or(f64::NAN, |r| r.account)
    );
    for (name, r) in [
        (
            "excess return without cost",
            &result.risk.excess_return_without_cost,
        ),
        (
            "excess return with cost",
            &result.risk.excess_return_with_cost,
        ),
    ] {
        println!(
            "  {name:<28} annualized {:>8.2}%  information ratio {:>7.3}  max drawdown {:>8.2}%",
            r.annualized_return * 100.0,
            r.information_ratio,
            r.max_drawdown * 100.0
        );
    }
    if let Some(seed) = result.seed {
        println!("  random seed {seed}");
    }
    println!("wrote {}", a.out.join(HTML_FILE).display());
    Ok(())
}
