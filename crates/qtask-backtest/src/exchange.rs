//! Qlib's daily `Exchange`: tradability (suspensions and price limits), deal prices, trade-unit
//! rounding through `$factor`, costs, and dealing an order against a position, operation for
//! operation as `qlib/backtest/exchange.py` does them.

use crate::config::ExchangeConfig;
use crate::numeric::{np_isclose, py_floordiv};
use crate::order::{Dir, Order};
use crate::position::Position;
use crate::quote::Quote;

/// A daily exchange over loaded market data. Days are calendar indexes.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The market data.
    pub quote: Quote,
    open_cost: f64,
    close_cost: f64,
    min_cost: f64,
    impact_cost: f64,
    trade_unit: Option<f64>,
}

/// The result of dealing an order: traded value, cost and price (NaN when refused).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deal {
    /// Traded value (price times dealt amount).
    pub value: f64,
    /// Cost charged.
    pub cost: f64,
    /// Deal price (NaN when the stock was not tradable).
    pub price: f64,
}

impl Exchange {
    /// An exchange with `cfg`'s costs and trade unit over `quote`.
    pub fn new(cfg: &ExchangeConfig, quote: Quote) -> Exchange {
        Exchange {
            quote,
            open_cost: cfg.open_cost,
            close_cost: cfg.close_cost,
            min_cost: cfg.min_cost,
            impact_cost: cfg.impact_cost,
            trade_unit: cfg.trade_unit,
        }
    }

    /// Suspended: no close that day (or not in the exchange's universe at all).
    pub fn is_suspended(&self, inst: u32, day: usize) -> bool {
        self.quote.close(inst, day).is_nan()
    }

    /// Qlib's `check_stock_limit`: `None` checks both directions.
    pub fn is_limited(&self, inst: u32, day: usize, dir: Option<Dir>) -> bool {
        match dir {
            None => self.quote.limited(inst, day, false) || self.quote.limited(inst, day, true),
            Some(Dir::Buy) => self.quote.limited(inst, day, false),
            Some(Dir::Sell) => self.quote.limited(inst, day, true),
        }
    }

    /// Qlib's `is_stock_tradable`.
    pub fn is_tradable(&self, inst: u32, day: usize, dir: Option<Dir>) -> bool {
        !(self.is_suspended(inst, day) || self.is_limited(inst, day, dir))
    }

    /// The close (NaN when suspended).
    pub fn close(&self, inst: u32, day: usize) -> f64 {
        self.quote.close(inst, day)
    }

    /// Qlib's `get_deal_price`: the direction's price, or the close when that is missing or
    /// not above 1e-8.
    pub fn deal_price(&self, inst: u32, day: usize, dir: Dir) -> f64 {
        let p = self.quote.price(inst, day, dir == Dir::Sell);
        if p.is_nan() || p <= 1e-8 {
            self.close(inst, day)
        } else {
            p
        }
    }

    /// `$factor` that day.
    pub fn factor(&self, inst: u32, day: usize) -> f64 {
        self.quote.factor(inst, day)
    }

    /// Whether amounts are rounded to the trade unit (not in adjusted-price mode).
    fn rounds(&self) -> Option<f64> {
        if self.quote.adj_mode {
            None
        } else {
            self.trade_unit
        }
    }

    /// Qlib's `round_amount_by_trade_unit`: `(amount * factor + 0.1) // unit * unit / factor`.
    pub fn round_amount(&self, amount: f64, factor: f64) -> f64 {
        match self.rounds() {
            Some(unit) => py_floordiv(amount * factor + 0.1, unit) * unit / factor,
            None => amount,
        }
    }

    /// Qlib's `get_real_deal_amount`: signed, rounded amount to go from `current` to `target`.
    pub fn real_deal_amount(&self, current: f64, target: f64, factor: f64) -> f64 {
        if current == target {
            0.0
        } else if current < target {
            self.round_amount(target - current, factor)
        } else if target == 0.0 {
            -current
        } else {
            -self.round_amount(current - target, factor)
        }
    }

    /// Qlib's `_get_buy_amount_by_cash_limit`.
    fn buy_amount_by_cash_limit(&self, price: f64, cash: f64, cost_ratio: f64) -> f64 {
        let mut max_amount = 0.0;
        if cash >= self.min_cost {
            let critical_price = self.min_cost / cost_ratio + self.min_cost;
            if cash >= critical_price {
                max_amount = cash / (1.0 + cost_ratio) / price;
            } else {
                max_amount = (cash - self.min_cost) / price;
            }
        }
        max_amount
    }

    fn py_max(a: f64, b: f64) -> f64 {
        // Python's max(a, b) keeps `a` unless `b > a` (so a NaN first argument wins).
        if b > a { b } else { a }
    }

    /// Qlib's `_calc_trade_info_by_order`: sets `order.deal_amount` (clipped by the position,
    /// the cash and the trade unit) and returns price, value and cost.
    fn trade_info(&self, order: &mut Order, position: &Position, day: usize) -> Deal {
        let price = self.deal_price(order.inst, day, order.dir);
        let total_trade_val = self.quote.volume(order.inst, day) * price;
        let factor = self.factor(order.inst, day);
        order.deal_amount = order.amount;
        let trade_val = order.deal_amount * price;
        let adj_cost_ratio = if total_trade_val == 0.0 || total_trade_val.is_nan() {
            self.impact_cost
        } else {
            self.impact_cost * (trade_val / total_trade_val).powi(2)
        };
        let cost_ratio;
        match order.dir {
            Dir::Sell => {
                cost_ratio = self.close_cost + adj_cost_ratio;
                let current = position.amount(order.inst);
                if !np_isclose(order.deal_amount, current) {
                    let m = if order.deal_amount < current {
                        order.deal_amount
                    } else {
                        current
                    };
                    order.deal_amount = self.round_amount(m, factor);
                }
                let v = order.deal_amount * price;
                if position.cash + v < Self::py_max(v * cost_ratio, self.min_cost) {
                    order.deal_amount = 0.0;
                }
            }
            Dir::Buy => {
                cost_ratio = self.open_cost + adj_cost_ratio;
                let cash = position.cash;
                let v = order.deal_amount * price;
                if cash < Self::py_max(v * cost_ratio, self.min_cost) {
                    order.deal_amount = 0.0;
                } else if cash < v + Self::py_max(v * cost_ratio, self.min_cost) {
                    let max_buy = self.buy_amount_by_cash_limit(price, cash, cost_ratio);
                    let m = if order.deal_amount < max_buy {
                        order.deal_amount
                    } else {
                        max_buy
                    };
                    order.deal_amount = self.round_amount(m, factor);
                } else {
                    order.deal_amount = self.round_amount(order.deal_amount, factor);
                }
            }
        }
        let value = order.deal_amount * price;
        let mut cost = Self::py_max(value * cost_ratio, self.min_cost);
        if value <= 1e-5 {
            cost = 0.0;
        }
        Deal { value, cost, price }
    }

    /// Qlib's `deal_order` against a position: refuses untradable orders (nothing dealt, NaN
    /// price), otherwise deals and books it in `position` when something was traded.
    pub fn deal_order(&self, order: &mut Order, position: &mut Position, day: usize) -> Deal {
        if !self.is_tradable(order.inst, day, Some(order.dir)) {
            order.deal_amount = 0.0;
            return Deal {
                value: 0.0,
                cost: 0.0,
                price: f64::NAN,
            };
        }
        let deal = self.trade_info(order, position, day);
        if deal.value > 1e-5 {
            position.update_order(order, deal.value, deal.cost, deal.price);
        }
        deal
    }
}
