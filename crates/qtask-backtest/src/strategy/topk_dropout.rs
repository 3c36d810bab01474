//! Qlib's `TopkDropoutStrategy.generate_trade_decision`, step for step: rank the holdings by
//! the previous day's score, pick new candidates, drop the worst `n_drop` of holdings and
//! candidates together, sell those it can (after `hold_thresh` days), and spend the cash
//! (with the simulated sale proceeds) equally on the candidates that take their place.

use std::collections::HashSet;

use super::{Day, score_of, sort_desc};
use crate::config::{MethodBuy, MethodSell, TopkDropout};
use crate::numeric::py_slice;
use crate::order::{Dir, Order};
use crate::rng::NumpyRandomState;

/// The strategy and its arguments.
#[derive(Debug, Clone)]
pub struct TopkDropoutStrategy {
    cfg: TopkDropout,
}

impl TopkDropoutStrategy {
    /// A strategy with `cfg`'s arguments.
    pub fn new(cfg: TopkDropout) -> Self {
        TopkDropoutStrategy { cfg }
    }

    /// The day's orders: sells (in code order), then buys (in rank order).
    pub fn decide(&self, d: &Day<'_>, rng: &mut NumpyRandomState) -> Vec<Order> {
        let Some(scores) = d.scores else {
            return Vec::new();
        };
        let c = &self.cfg;
        let ex = d.exchange;
        let day = d.day;
        let tradable = |id: u32| ex.is_tradable(id, day, None);
        // get_first_n / get_last_n / filter_stock, with and without only_tradable.
        let first_n = |li: &[u32], n: i64| -> Vec<u32> {
            if c.only_tradable {
                let mut res = Vec::new();
                for &si in li {
                    if tradable(si) {
                        res.push(si);
                        if res.len() as i64 >= n {
                            break;
                        }
                    }
                }
                res
            } else {
                li[py_slice(li.len(), None, Some(n))].to_vec()
            }
        };
        let last_n = |li: &[u32], n: i64| -> Vec<u32> {
            if c.only_tradable {
                let mut res = Vec::new();
                for &si in li.iter().rev() {
                    if tradable(si) {
                        res.push(si);
                        if res.len() as i64 >= n {
                            break;
                        }
                    }
                }
                res.reverse();
                res
            } else {
                li[py_slice(li.len(), Some(-n), None)].to_vec()
            }
        };
        let filter_stock = |li: &[u32]| -> Vec<u32> {
            if c.only_tradable {
                li.iter().copied().filter(|&s| tradable(s)).collect()
            } else {
                li.to_vec()
            }
        };

        let position = d.position;
        let current: Vec<u32> = position.holdings.keys().copied().collect();
        let with_scores = |ids: &[u32]| -> Vec<(u32, f64)> {
            ids.iter().map(|&i| (i, score_of(scores, i))).collect()
        };
        let last: Vec<u32> = sort_desc(&with_scores(&current));
        let in_last: HashSet<u32> = last.iter().copied().collect();
        let (topk, n_drop) = (c.topk as i64, c.n_drop as i64);
        let len_last = last.len() as i64;

        let today: Vec<u32> = match c.method_buy {
            MethodBuy::Top => {
                let cands: Vec<(u32, f64)> = scores
                    .iter()
                    .copied()
                    .filter(|x| !in_last.contains(&x.0))
                    .collect();
                first_n(&sort_desc(&cands), n_drop + topk - len_last)
            }
            MethodBuy::Random => {
                let topk_candi = first_n(&sort_desc(scores), topk);
                let candi: Vec<u32> = topk_candi
                    .into_iter()
                    .filter(|x| !in_last.contains(x))
                    .collect();
                let n = n_drop + topk - len_last;
                match rng.choice_without_replacement(candi.len(), n) {
                    Ok(idx) => idx.into_iter().map(|k| candi[k]).collect(),
                    Err(_) => candi,
                }
            }
        };

        // comb: pandas' Index.union returns one side as is when the other is empty, else
        // the sorted union; then sort_values(ascending=False) on the scores.
        let union: Vec<u32> = if today.is_empty() {
            last.clone()
        } else if last.is_empty() {
            today.clone()
        } else {
            let mut u: Vec<u32> = last.iter().chain(&today).copied().collect();
            u.sort_unstable();
            u.dedup();
            u
        };
        let comb = sort_desc(&with_scores(&union));

        let sell: HashSet<u32> = match c.method_sell {
            MethodSell::Bottom => {
                let tail: HashSet<u32> = last_n(&comb, n_drop).into_iter().collect();
                last.iter().copied().filter(|x| tail.contains(x)).collect()
            }
            MethodSell::Random => {
                let candi = filter_stock(&last);
                if last.is_empty() {
                    HashSet::new()
                } else {
                    match rng.choice_without_replacement(candi.len(), n_drop) {
                        Ok(idx) => idx.into_iter().map(|k| candi[k]).collect(),
                        Err(_) => candi.into_iter().collect(),
                    }
                }
            }
        };

        let buy: Vec<u32> =
            today[py_slice(today.len(), None, Some(sell.len() as i64 + topk - len_last))].to_vec();

        let mut temp = position.clone();
        let mut cash = temp.cash;
        let mut orders = Vec::new();
        let sell_dir = if c.forbid_all_trade_at_limit {
            None
        } else {
            Some(Dir::Sell)
        };
        for &code in &current {
            if !ex.is_tradable(code, day, sell_dir) {
                continue;
            }
            if sell.contains(&code) {
                if f64::from(temp.count(code)) < c.hold_thresh {
                    continue;
                }
                let order = Order::new(code, temp.amount(code), Dir::Sell);
                if ex.is_tradable(code, day, Some(Dir::Sell)) {
                    let mut sim = order.clone();
                    let deal = ex.deal_order(&mut sim, &mut temp, day);
                    orders.push(order);
                    cash += deal.value - deal.cost;
                }
            }
        }
        let value = if buy.is_empty() {
            0.0
        } else {
            cash * c.risk_degree / buy.len() as f64
        };
        let buy_dir = if c.forbid_all_trade_at_limit {
            None
        } else {
            Some(Dir::Buy)
        };
        for &code in &buy {
            if !ex.is_tradable(code, day, buy_dir) {
                continue;
            }
            let price = ex.deal_price(code, day, Dir::Buy);
            let amount = ex.round_amount(value / price, ex.factor(code, day));
            orders.push(Order::new(code, amount, Dir::Buy));
        }
        orders
    }
}
