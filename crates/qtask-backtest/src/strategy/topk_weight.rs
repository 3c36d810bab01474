//! Equal weights over the top k scores, traded the way Qlib's `WeightStrategyBase` trades a
//! target weight position with its default `OrderGenWOInteract`: target amounts from the
//! previous day's close, orders to reach them rounded to the trade unit, in the order
//! `random.seed(0); random.shuffle(sorted(ids))` gives, sells before buys.

use std::collections::{BTreeSet, HashMap};

use super::{Day, sort_desc};
use crate::config::TopkWeight;
use crate::order::{Dir, Order};
use crate::rng::python_shuffle_seed0;

/// The strategy and its arguments.
#[derive(Debug, Clone)]
pub struct TopkWeightStrategy {
    cfg: TopkWeight,
    shuffles: HashMap<usize, Vec<usize>>,
}

impl TopkWeightStrategy {
    /// A strategy with `cfg`'s arguments.
    pub fn new(cfg: TopkWeight) -> Self {
        TopkWeightStrategy {
            cfg,
            shuffles: HashMap::new(),
        }
    }

    /// The day's orders.
    pub fn decide(&mut self, d: &Day<'_>) -> Vec<Order> {
        let Some(scores) = d.scores else {
            return Vec::new();
        };
        let ex = d.exchange;
        let (day, position) = (d.day, d.position);
        let ranked = sort_desc(scores);
        let target: Vec<u32> = ranked.into_iter().take(self.cfg.topk).collect();
        let weight = 1.0 / self.cfg.topk as f64;
        let risk_total_value = self.cfg.risk_degree * position.value();
        let mut amounts: HashMap<u32, f64> = HashMap::new();
        for &id in &target {
            let tradable_pred = d.pred_day.is_some_and(|p| ex.is_tradable(id, p, None));
            if ex.is_tradable(id, day, None) && tradable_pred {
                let pred_close = ex.close(id, d.pred_day.unwrap_or(day));
                amounts.insert(id, risk_total_value * weight / pred_close);
            } else if let Some(h) = position.holdings.get(&id) {
                amounts.insert(id, risk_total_value * weight / h.price);
            }
        }
        let ids: Vec<u32> = position
            .holdings
            .keys()
            .chain(amounts.keys())
            .copied()
            .collect::<BTreeSet<u32>>()
            .into_iter()
            .collect();
        let perm = self
            .shuffles
            .entry(ids.len())
            .or_insert_with(|| python_shuffle_seed0(ids.len()));
        let (mut sells, mut buys) = (Vec::new(), Vec::new());
        for &k in perm.iter() {
            let id = ids[k];
            if !ex.is_tradable(id, day, None) {
                continue;
            }
            let target_amount = amounts.get(&id).copied().unwrap_or(0.0);
            let current = position.amount(id);
            let deal = ex.real_deal_amount(current, target_amount, ex.factor(id, day));
            if deal > 0.0 {
                buys.push(Order::new(id, deal, Dir::Buy));
            } else if deal < 0.0 {
                sells.push(Order::new(id, -deal, Dir::Sell));
            }
        }
        sells.extend(buys);
        sells
    }
}
