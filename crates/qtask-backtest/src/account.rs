//! Qlib's `Account` with its `PortfolioMetrics` (the daily report Qlib calls `report_normal`),
//! the position history and the daily trade indicators of a `SimulatorExecutor`.

use chrono::NaiveDate;
use serde::Serialize;

use crate::config::WeightMethod;
use crate::exchange::{Deal, Exchange};
use crate::order::{Dir, Order};
use crate::position::Position;

/// One day of Qlib's `report_normal`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReportRow {
    /// The trading day.
    pub date: NaiveDate,
    /// Account value (cash plus holdings at the close).
    pub account: f64,
    /// Return before costs, as a fraction of the previous day's account.
    #[serde(rename = "return")]
    pub ret: f64,
    /// Cumulative traded value.
    pub total_turnover: f64,
    /// The day's traded value over the previous day's account.
    pub turnover: f64,
    /// Cumulative cost.
    pub total_cost: f64,
    /// The day's cost over the previous day's account.
    pub cost: f64,
    /// Value of the holdings.
    pub value: f64,
    /// Cash.
    pub cash: f64,
    /// The benchmark's return that day.
    pub bench: f64,
}

/// One holding at a day's end (Qlib's `positions_normal` entries).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldingRow {
    /// Instrument code.
    pub instrument: String,
    /// Adjusted amount.
    pub amount: f64,
    /// The close (the last known one when suspended).
    pub price: f64,
    /// Share of the account value.
    pub weight: f64,
    /// Days held.
    pub count_day: u32,
}

/// The position at a day's end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PositionSnapshot {
    /// The trading day.
    pub date: NaiveDate,
    /// Cash.
    pub cash: f64,
    /// Account value.
    pub account: f64,
    /// Holdings in code order.
    pub holdings: Vec<HoldingRow>,
}

/// One day's trade indicators (Qlib's `Indicator` of an atomic daily executor).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IndicatorRow {
    /// The trading day.
    pub date: NaiveDate,
    /// Fulfilment rate: dealt over asked amount, averaged over the day's orders.
    pub ffr: f64,
    /// Price advantage (0 for a daily executor: it deals at the base price).
    pub pa: f64,
    /// Share of orders with a positive price advantage.
    pub pos: f64,
    /// Total dealt amount.
    pub deal_amount: f64,
    /// Total traded value.
    pub value: f64,
    /// Number of orders.
    pub count: f64,
}

/// The account: position, cumulated costs and turnover, and everything recorded so far.
#[derive(Debug, Clone)]
pub struct Account {
    /// Current position.
    pub position: Position,
    init_cash: f64,
    total_cost: f64,
    total_turnover: f64,
    /// The daily report so far.
    pub report: Vec<ReportRow>,
    /// Positions at each day's end.
    pub positions: Vec<PositionSnapshot>,
    /// Trade indicators per day.
    pub indicators: Vec<IndicatorRow>,
}

/// An executed order with what it dealt (Qlib's `trade_info` entries).
pub type TradeInfo = (Order, Deal);

fn nanmean(v: &[f64]) -> f64 {
    crate::numeric::nanmean(v)
}

fn nansum(v: &[f64]) -> f64 {
    let kept: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    crate::numeric::pairwise_sum(&kept)
}

fn weighted(metric: &[f64], weights: &[f64]) -> f64 {
    let prod: Vec<f64> = metric.iter().zip(weights).map(|(m, w)| m * w).collect();
    nansum(&prod) / nansum(weights)
}

impl Account {
    /// An account with `position` (its cash is the initial cash Qlib measures the first
    /// day's return against).
    pub fn new(position: Position) -> Account {
        Account {
            init_cash: position.cash,
            position,
            total_cost: 0.0,
            total_turnover: 0.0,
            report: Vec::new(),
            positions: Vec::new(),
            indicators: Vec::new(),
        }
    }

    /// Deals one order for the executor (Qlib's `deal_order` with the trade account).
    pub fn execute(&mut self, exchange: &Exchange, order: &mut Order, day: usize) -> Deal {
        let deal = exchange.deal_order(order, &mut self.position, day);
        if deal.value > 1e-5 {
            self.total_turnover += deal.value;
            self.total_cost += deal.cost;
        }
        deal
    }

    /// Qlib's `update_bar_end`: prices to the day's close (suspended stocks keep theirs),
    /// days held +1, the day's report row, the position snapshot, the trade indicators.
    #[allow(clippy::too_many_arguments)]
    pub fn end_day(
        &mut self,
        exchange: &Exchange,
        day: usize,
        date: NaiveDate,
        bench: f64,
        trades: &[TradeInfo],
        codes: &crate::quote::Codes,
        weights: (WeightMethod, WeightMethod),
    ) {
        for (&inst, h) in self.position.holdings.iter_mut() {
            if !exchange.is_suspended(inst, day) {
                h.price = exchange.close(inst, day);
            }
            h.count_day = Some(h.count_day.map_or(1, |c| c + 1));
        }
        let (last_value, last_cost, last_turnover) = match self.report.last() {
            None => (self.init_cash, 0.0, 0.0),
            Some(r) => (r.account, r.total_cost, r.total_turnover),
        };
        let value = self.position.value();
        let stock_value = self.position.stock_value();
        let earning = value - last_value;
        let cost = self.total_cost - last_cost;
        let turnover = self.total_turnover - last_turnover;
        self.report.push(ReportRow {
            date,
            account: value,
            ret: (earning + cost) / last_value,
            total_turnover: self.total_turnover,
            turnover: turnover / last_value,
            total_cost: self.total_cost,
            cost: cost / last_value,
            value: stock_value,
            cash: self.position.cash,
            bench,
        });
        self.position.update_weights();
        self.positions.push(PositionSnapshot {
            date,
            cash: self.position.cash,
            account: value,
            holdings: self
                .position
                .holdings
                .iter()
                .map(|(&inst, h)| HoldingRow {
                    instrument: codes.name(inst).to_string(),
                    amount: h.amount,
                    price: h.price,
                    weight: h.weight,
                    count_day: h.count_day.unwrap_or(0),
                })
                .collect(),
        });
        self.indicators.push(indicators(date, trades, weights));
    }
}

/// Qlib's `update_order_indicators` + `cal_trade_indicators` for one day's orders.
fn indicators(
    date: NaiveDate,
    trades: &[TradeInfo],
    (ffr_w, pa_w): (WeightMethod, WeightMethod),
) -> IndicatorRow {
    // Qlib keys the day's orders by stock: a later order of the same stock replaces one.
    let mut by_stock: Vec<&TradeInfo> = Vec::new();
    for t in trades {
        match by_stock.iter_mut().find(|x| x.0.inst == t.0.inst) {
            Some(slot) => *slot = t,
            None => by_stock.push(t),
        }
    }
    let amount: Vec<f64> = by_stock
        .iter()
        .map(|(o, _)| o.amount * o.dir.sign())
        .collect();
    let deal: Vec<f64> = by_stock
        .iter()
        .map(|(o, _)| o.deal_amount * o.dir.sign())
        .collect();
    let value: Vec<f64> = by_stock
        .iter()
        .map(|(o, d)| d.value * o.dir.sign())
        .collect();
    let ffr: Vec<f64> = deal.iter().zip(&amount).map(|(d, a)| d / a).collect();
    let pa = vec![0.0; by_stock.len()];
    let abs = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<f64>>();
    let agg = |metric: &[f64], m: WeightMethod| match m {
        WeightMethod::Mean => nanmean(metric),
        WeightMethod::AmountWeighted => weighted(metric, &abs(&deal)),
        WeightMethod::ValueWeighted => weighted(metric, &abs(&value)),
    };
    let count = amount.iter().filter(|a| !a.is_nan()).count() as f64;
    let positive = pa.iter().filter(|p| **p > 0.0).count() as f64;
    IndicatorRow {
        date,
        ffr: agg(&ffr, ffr_w),
        pa: agg(&pa, pa_w),
        pos: positive / count,
        deal_amount: nansum(&abs(&deal)),
        value: nansum(&abs(&value)),
        count,
    }
}

/// Orders in the executor's order: as given (serial) or buys first (parallel).
pub fn executor_order(mut orders: Vec<Order>, parallel: bool) -> Vec<Order> {
    if parallel {
        // sorted(orders, key=-direction): stable, buys (1) before sells (0).
        orders.sort_by_key(|o| match o.dir {
            Dir::Buy => 0,
            Dir::Sell => 1,
        });
    }
    orders
}
