//! Qlib's `Position`: cash and the holdings (adjusted amount, last price, weight, days held).

use std::collections::BTreeMap;

use crate::numeric::np_isclose;
use crate::order::{Dir, Order};

/// One holding.
#[derive(Debug, Clone, PartialEq)]
pub struct Holding {
    /// Adjusted amount (Qlib's unit: real shares are `amount * $factor`).
    pub amount: f64,
    /// The last close (or the deal price on the day it was bought).
    pub price: f64,
    /// Value share of the account at the last day's end.
    pub weight: f64,
    /// Days held, counted at each day's end (`None` until the first day ends: Qlib's missing
    /// `count_day`, read as 0).
    pub count_day: Option<u32>,
}

/// Cash and holdings keyed by instrument id. Ids follow the code order, so iteration is in
/// code order: qtask sums and lists holdings in that order (Qlib uses a Python set's order,
/// which changes from run to run).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Position {
    /// Available cash.
    pub cash: f64,
    /// Holdings by instrument id.
    pub holdings: BTreeMap<u32, Holding>,
}

impl Position {
    /// The amount held of `inst` (0 when none).
    pub fn amount(&self, inst: u32) -> f64 {
        self.holdings.get(&inst).map_or(0.0, |h| h.amount)
    }

    /// Days `inst` has been held (0 when not held or bought today).
    pub fn count(&self, inst: u32) -> u32 {
        self.holdings
            .get(&inst)
            .and_then(|h| h.count_day)
            .unwrap_or(0)
    }

    /// Value of the holdings at their last prices.
    pub fn stock_value(&self) -> f64 {
        let mut v = 0.0;
        for h in self.holdings.values() {
            v += h.amount * h.price;
        }
        v
    }

    /// Holdings plus cash (Qlib's `calculate_value`).
    pub fn value(&self) -> f64 {
        self.stock_value() + self.cash
    }

    /// Books a dealt order (Qlib's `Position.update_order`): the amount is the traded value
    /// over the price, as Qlib computes it; a sale of (close to) everything removes the holding.
    pub fn update_order(&mut self, order: &Order, trade_val: f64, cost: f64, trade_price: f64) {
        let trade_amount = trade_val / trade_price;
        match order.dir {
            Dir::Buy => {
                match self.holdings.get_mut(&order.inst) {
                    Some(h) => h.amount += trade_amount,
                    None => {
                        self.holdings.insert(
                            order.inst,
                            Holding {
                                amount: trade_amount,
                                price: trade_price,
                                weight: 0.0,
                                count_day: None,
                            },
                        );
                    }
                }
                self.cash -= trade_val + cost;
            }
            Dir::Sell => {
                if let Some(h) = self.holdings.get_mut(&order.inst) {
                    if np_isclose(h.amount, trade_amount) {
                        self.holdings.remove(&order.inst);
                    } else {
                        h.amount -= trade_amount;
                    }
                }
                self.cash += trade_val - cost;
            }
        }
    }

    /// Qlib's `update_weight_all`: each holding's value over the account value.
    pub fn update_weights(&mut self) {
        let total = self.value();
        for h in self.holdings.values_mut() {
            h.weight = h.amount * h.price / total;
        }
    }
}
