//! The backtest loop (Qlib's `backtest_loop` with a daily `SimulatorExecutor`): each trading
//! day the strategy decides on the previous day's scores, the executor deals the orders in
//! turn against the account, and the account closes the day.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use qtask_data::Provider;
use qtask_table::PredTable;

use crate::account::{Account, TradeInfo, executor_order};
use crate::bench::bench_returns;
use crate::config::{BacktestConfig, MethodBuy, MethodSell, StrategyConfig, TradeType};
use crate::error::{BacktestError, Result};
use crate::exchange::Exchange;
use crate::position::{Holding, Position};
use crate::quote::{Codes, Quote};
use crate::result::BacktestResult;
use crate::risk::{IndicatorAnalysis, RiskAnalysis, RiskReport};
use crate::rng::NumpyRandomState;
use crate::signal::{Signal, score_column};
use crate::strategy::{Day, Strategy, TopkDropoutStrategy, TopkWeightStrategy};

/// The trading days `[start, end]` resolves to, as calendar indexes (inclusive).
fn resolve_days(
    cal: &[NaiveDate],
    cfg: &BacktestConfig,
    pred: &PredTable,
) -> Result<(NaiveDate, NaiveDate, usize, usize)> {
    let (pmin, pmax) = pred
        .datetime_range()
        .ok_or_else(|| BacktestError::Input("the prediction has no rows".into()))?;
    let start = cfg.start.unwrap_or(pmin.date());
    let end = match cfg.end {
        Some(e) => e,
        // PortAnaRecord: the trading day after the prediction's last (clipped to the calendar).
        None => {
            let i = cal.partition_point(|d| *d <= pmax.date());
            cal[i.min(cal.len() - 1)]
        }
    };
    if start > end {
        return Err(BacktestError::Config(format!(
            "the backtest starts on {start}, after its end {end}"
        )));
    }
    let s = cal.partition_point(|d| *d < start);
    let e = cal.partition_point(|d| *d <= end);
    if s >= e {
        return Err(BacktestError::Config(format!(
            "no trading day between {start} and {end} in the calendar ({} to {})",
            cal[0],
            cal[cal.len() - 1]
        )));
    }
    Ok((start, end, s, e - 1))
}

fn clock_seed() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32)
}

/// The starting position: cash, and stocks at their given price or the last close within the
/// 30 calendar days up to the start (Qlib's `fill_stock_value`).
fn initial_position(
    provider: &Provider,
    cfg: &BacktestConfig,
    codes: &Codes,
    start: NaiveDate,
) -> Result<Position> {
    let mut p = Position {
        cash: cfg.account.cash,
        ..Position::default()
    };
    let cal = provider.calendar();
    for (code, amount, price) in &cfg.account.stocks {
        let id = codes.id(code).expect("account codes are interned");
        let price = match price {
            Some(p) => *p,
            None => {
                let from = start - chrono::Duration::days(30);
                let series = provider.read_field(code, "close")?;
                let lo = cal.partition_point(|d| *d < from);
                let hi = cal.partition_point(|d| *d <= start);
                series
                    .and_then(|b| {
                        (lo..hi)
                            .rev()
                            .filter(|&t| t >= b.start && t < b.end())
                            .map(|t| f64::from(b.values[t - b.start]))
                            .find(|v| !v.is_nan())
                    })
                    .ok_or_else(|| {
                        BacktestError::Input(format!(
                            "account stock {code} has no close price in the 30 days up to {start}"
                        ))
                    })?
            }
        };
        p.holdings.insert(
            id,
            Holding {
                amount: *amount,
                price,
                weight: 0.0,
                count_day: None,
            },
        );
    }
    Ok(p)
}

/// Runs a daily backtest of `pred` (a prediction table with a `score` column) on the market
/// in `provider`, as Qlib's `PortAnaRecord` runs one: the strategy of `cfg`, a daily
/// `SimulatorExecutor`, the exchange's rules; returns the daily report, positions, trade
/// indicators and risk figures.
pub fn backtest(
    provider: &Provider,
    pred: &PredTable,
    cfg: &BacktestConfig,
) -> Result<BacktestResult> {
    backtest_with_progress(provider, pred, cfg, &|_, _| {})
}

/// Refuses a strategy that holds more stocks than the prediction scores (`topk` larger than
/// the universe): Qlib would run it, holding everything and never dropping anything.
pub fn check_universe(pred: &PredTable, cfg: &BacktestConfig) -> Result<()> {
    let n = pred.instruments().len();
    let topk = cfg.strategy.topk();
    if topk > n {
        return Err(BacktestError::Config(format!(
            "topk {topk} is larger than the {n} instruments the prediction scores"
        )));
    }
    Ok(())
}

/// [`backtest`], calling `progress(days_done, days)` after each trading day.
pub fn backtest_with_progress(
    provider: &Provider,
    pred: &PredTable,
    cfg: &BacktestConfig,
    progress: &dyn Fn(usize, usize),
) -> Result<BacktestResult> {
    score_column(pred)?;
    let cal = provider.calendar();
    let (start, end, s, e) = resolve_days(cal, cfg, pred)?;
    let ex_first = cfg
        .exchange
        .start
        .map_or(s, |d| cal.partition_point(|c| *c < d));
    let ex_last = cfg
        .exchange
        .end
        .map_or(e + 1, |d| cal.partition_point(|c| *c <= d));
    if ex_first >= ex_last {
        return Err(BacktestError::Config(format!(
            "the exchange's start_time/end_time hold no trading day ({} to {})",
            cal[ex_first.min(cal.len() - 1)],
            cal[ex_last.saturating_sub(1)]
        )));
    }
    let universe = Quote::universe(provider, &cfg.exchange, ex_first, ex_last - ex_first)?;
    let codes = Codes::new(
        universe
            .iter()
            .map(|l| l.symbol.as_str())
            .chain(pred.instruments().iter().map(String::as_str))
            .chain(cfg.account.stocks.iter().map(|s| s.0.as_str())),
    );
    let quote = Quote::load(
        provider,
        &cfg.exchange,
        &universe,
        &codes,
        ex_first,
        ex_last - ex_first,
    )?;
    let exchange = Exchange::new(&cfg.exchange, quote);
    let signal = Signal::new(pred, cal, &codes)?;
    let days: Vec<usize> = (s..=e).collect();
    let bench = bench_returns(provider, &cfg.benchmark, &days)?;
    let uses_rng = matches!(&cfg.strategy, StrategyConfig::TopkDropoutStrategy(t)
        if t.method_sell == MethodSell::Random || t.method_buy == MethodBuy::Random);
    let seed = cfg.seed.unwrap_or_else(clock_seed);
    let mut rng = NumpyRandomState::new(seed);
    let mut strategy = match &cfg.strategy {
        StrategyConfig::TopkDropoutStrategy(t) => {
            Strategy::TopkDropout(TopkDropoutStrategy::new(t.clone()))
        }
        StrategyConfig::TopkWeightStrategy(t) => {
            Strategy::TopkWeight(TopkWeightStrategy::new(t.clone()))
        }
    };
    let mut account = Account::new(initial_position(provider, cfg, &codes, start)?);
    let parallel = cfg.trade_type == TradeType::Parallel;
    for (k, &day) in days.iter().enumerate() {
        let orders = {
            let d = Day {
                day,
                pred_day: day.checked_sub(1),
                scores: signal.on(day),
                position: &account.position,
                exchange: &exchange,
            };
            strategy.decide(&d, &mut rng)
        };
        let mut trades: Vec<TradeInfo> = Vec::with_capacity(orders.len());
        for mut order in executor_order(orders, parallel) {
            let deal = account.execute(&exchange, &mut order, day);
            trades.push((order, deal));
        }
        account.end_day(
            &exchange,
            day,
            cal[day],
            bench[k],
            &trades,
            &codes,
            (cfg.ffr_weight, cfg.pa_weight),
        );
        progress(k + 1, days.len());
    }
    let excess: Vec<f64> = account.report.iter().map(|r| r.ret - r.bench).collect();
    let with_cost: Vec<f64> = account
        .report
        .iter()
        .map(|r| r.ret - r.bench - r.cost)
        .collect();
    let risk = RiskReport {
        excess_return_without_cost: RiskAnalysis::of(&excess, cfg.ann_scaler),
        excess_return_with_cost: RiskAnalysis::of(&with_cost, cfg.ann_scaler),
    };
    let indicator_analysis = IndicatorAnalysis::of(&account.indicators, cfg.indicator_method);
    Ok(BacktestResult {
        start,
        end,
        config: cfg.clone(),
        seed: uses_rng.then_some(seed),
        report: account.report,
        positions: account.positions,
        indicators: account.indicators,
        risk,
        indicator_analysis,
    })
}
