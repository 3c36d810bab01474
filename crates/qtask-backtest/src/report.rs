//! A backtest and a signal analysis as `qtask-report` sections, and `qtask backtest`'s page.

use qtask_report::{BacktestSection, RiskRow, SignalSection};

use crate::analysis::SignalAnalysis;
use crate::config::{Benchmark, LimitThreshold, MethodBuy, MethodSell, StrategyConfig};
use crate::result::BacktestResult;
use crate::risk::RiskAnalysis;

fn risk_row(name: &str, r: &RiskAnalysis) -> RiskRow {
    RiskRow {
        name: name.to_string(),
        mean: r.mean,
        std: r.std,
        annualized_return: r.annualized_return,
        information_ratio: r.information_ratio,
        max_drawdown: r.max_drawdown,
    }
}

/// `1234567.891` -> `1,234,567.89`.
fn money(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let s = format!("{:.2}", v.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{frac}", if v < 0.0 { "-" } else { "" })
}

fn limit_text(l: &LimitThreshold) -> String {
    match l {
        LimitThreshold::None => "no price limit".to_string(),
        LimitThreshold::Change(t) => format!("limit |$change| >= {t}"),
        LimitThreshold::Exprs { buy, sell } => format!("limits buy `{buy}`, sell `{sell}`"),
    }
}

fn strategy_text(s: &StrategyConfig) -> String {
    let sell = |m: MethodSell| match m {
        MethodSell::Bottom => "bottom",
        MethodSell::Random => "random",
    };
    let buy = |m: MethodBuy| match m {
        MethodBuy::Top => "top",
        MethodBuy::Random => "random",
    };
    match s {
        StrategyConfig::TopkDropoutStrategy(t) => format!(
            "TopkDropoutStrategy(topk={}, n_drop={}, method_sell={}, method_buy={}, \
             hold_thresh={}, only_tradable={}, forbid_all_trade_at_limit={}, risk_degree={})",
            t.topk,
            t.n_drop,
            sell(t.method_sell),
            buy(t.method_buy),
            t.hold_thresh,
            t.only_tradable,
            t.forbid_all_trade_at_limit,
            t.risk_degree
        ),
        StrategyConfig::TopkWeightStrategy(t) => format!(
            "TopkWeightStrategy(topk={}, risk_degree={})",
            t.topk, t.risk_degree
        ),
    }
}

/// The backtest's section data: daily figures, the risk table (excess return without and
/// with cost, and the benchmark itself) and the run's key facts.
pub fn section(result: &BacktestResult) -> BacktestSection {
    let r = &result.report;
    let bench: Vec<f64> = r.iter().map(|x| x.bench).collect();
    let cfg = &result.config;
    let bench_text = match &cfg.benchmark {
        Benchmark::None => "none".to_string(),
        Benchmark::Code(c) => c.clone(),
        Benchmark::Codes(cs) => format!("equal-weighted mean of {}", cs.join(", ")),
    };
    let mut facts = vec![
        ("Strategy".to_string(), strategy_text(&cfg.strategy)),
        (
            "Period".to_string(),
            match (r.first(), r.last()) {
                (Some(a), Some(b)) => {
                    format!("{} to {} ({} trading days)", a.date, b.date, r.len())
                }
                _ => "no trading day".to_string(),
            },
        ),
        ("Benchmark".to_string(), bench_text),
        (
            "Account".to_string(),
            format!(
                "{} at the start, {} at the end",
                money(cfg.account.cash),
                money(r.last().map_or(f64::NAN, |x| x.account))
            ),
        ),
        (
            "Exchange".to_string(),
            format!(
                "deal price {} (buy) / {} (sell), open cost {}, close cost {}, min cost {}, \
                 impact cost {}, {}, trade unit {}",
                cfg.exchange.deal_price.buy,
                cfg.exchange.deal_price.sell,
                cfg.exchange.open_cost,
                cfg.exchange.close_cost,
                cfg.exchange.min_cost,
                cfg.exchange.impact_cost,
                limit_text(&cfg.exchange.limit_threshold),
                cfg.exchange
                    .trade_unit
                    .map_or("none".to_string(), |u| u.to_string())
            ),
        ),
    ];
    if let Some(seed) = result.seed {
        facts.push(("Random seed".to_string(), seed.to_string()));
    }
    let a = &result.indicator_analysis;
    facts.push((
        "Order fill rate".to_string(),
        format!(
            "{:.4} (price advantage {}, positive rate {})",
            a.ffr, a.pa, a.pos
        ),
    ));
    BacktestSection {
        dates: r.iter().map(|x| x.date.to_string()).collect(),
        returns: r.iter().map(|x| x.ret).collect(),
        costs: r.iter().map(|x| x.cost).collect(),
        bench: bench.clone(),
        turnover: r.iter().map(|x| x.turnover).collect(),
        risk: vec![
            risk_row(
                "excess return without cost",
                &result.risk.excess_return_without_cost,
            ),
            risk_row(
                "excess return with cost",
                &result.risk.excess_return_with_cost,
            ),
            risk_row("benchmark", &RiskAnalysis::of(&bench, cfg.ann_scaler)),
        ],
        facts,
    }
}

/// The signal analysis' section data.
pub fn signal_section(a: &SignalAnalysis) -> SignalSection {
    let s = |d: &[chrono::NaiveDate]| d.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    SignalSection {
        group_dates: s(&a.group_dates),
        group_returns: a.group_returns.clone(),
        monthly_ic: a.monthly_ic.clone(),
        dates: s(&a.dates),
        rank_autocorr: a.rank_autocorr.clone(),
        turnover_top: a.turnover_top.clone(),
        turnover_bottom: a.turnover_bottom.clone(),
    }
}

/// `qtask backtest`'s self-contained `report.html`: the backtest sections, then the signal
/// sections when an analysis is given.
pub fn render_page(
    title: &str,
    generated_at: &str,
    result: &BacktestResult,
    signal: Option<&SignalAnalysis>,
) -> String {
    let notes = vec![format!(
        "Returns are summed day by day (as Qlib's report_graph draws them); risk figures are \
         Qlib's risk_analysis with {} periods a year.",
        result.config.ann_scaler
    )];
    qtask_report::render_backtest_page(
        title,
        &notes,
        generated_at,
        &section(result),
        signal.map(signal_section).as_ref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money(1_000_000.0), "1,000,000.00");
        assert_eq!(money(-1234.567), "-1,234.57");
        assert_eq!(money(12.0), "12.00");
    }
}
