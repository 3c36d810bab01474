//! The strategies: each trading day, read the previous day's scores and the current position,
//! and return the day's orders (sells first).

mod topk_dropout;
mod topk_weight;

pub use topk_dropout::TopkDropoutStrategy;
pub use topk_weight::TopkWeightStrategy;

use crate::exchange::Exchange;
use crate::order::Order;
use crate::position::Position;
use crate::rng::NumpyRandomState;

/// What a strategy sees on a trading day.
pub struct Day<'a> {
    /// Calendar index of the trading day.
    pub day: usize,
    /// Calendar index of the day the signal comes from (`day - 1`).
    pub pred_day: Option<usize>,
    /// The scores, sorted by instrument id (`None`: no signal that day).
    pub scores: Option<&'a [(u32, f64)]>,
    /// The position before the day's trades.
    pub position: &'a Position,
    /// The exchange.
    pub exchange: &'a Exchange,
}

/// A strategy the backtest runs.
pub enum Strategy {
    /// Qlib's `TopkDropoutStrategy`.
    TopkDropout(TopkDropoutStrategy),
    /// Equal-weight top k through Qlib's `WeightStrategyBase` machinery.
    TopkWeight(TopkWeightStrategy),
}

impl Strategy {
    /// The day's orders.
    pub fn decide(&mut self, d: &Day<'_>, rng: &mut NumpyRandomState) -> Vec<Order> {
        match self {
            Strategy::TopkDropout(s) => s.decide(d, rng),
            Strategy::TopkWeight(s) => s.decide(d),
        }
    }
}

/// `pd.Series.sort_values(ascending=False)` on `(id, score)` pairs: descending, NaN last,
/// ties and NaNs kept in their given order (pandas' stable result for short lists).
pub(crate) fn sort_desc(items: &[(u32, f64)]) -> Vec<u32> {
    let mut valid: Vec<(u32, f64)> = items.iter().copied().filter(|x| !x.1.is_nan()).collect();
    valid.sort_by(|a, b| b.1.total_cmp(&a.1));
    valid
        .into_iter()
        .map(|x| x.0)
        .chain(items.iter().filter(|x| x.1.is_nan()).map(|x| x.0))
        .collect()
}

/// The score of `id` in a by-id sorted list (NaN when absent: pandas' reindex).
pub(crate) fn score_of(scores: &[(u32, f64)], id: u32) -> f64 {
    scores
        .binary_search_by_key(&id, |x| x.0)
        .map_or(f64::NAN, |i| scores[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_desc_keeps_ties_and_nans_in_order() {
        let v = [(3, 0.5), (1, f64::NAN), (2, 0.9), (0, 0.5), (5, f64::NAN)];
        assert_eq!(sort_desc(&v), vec![2, 3, 0, 1, 5]);
    }
}
