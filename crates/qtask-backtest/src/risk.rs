//! Qlib's `risk_analysis` (mode "sum") and `indicator_analysis` (method "mean").

use serde::{Deserialize, Serialize};

use crate::account::IndicatorRow;
use crate::config::WeightMethod;
use crate::numeric::{nanmean, nanstd, pairwise_sum};

/// Risk figures of a daily return series (Qlib's `risk_analysis`, returns summed, not
/// compounded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RiskAnalysis {
    /// Mean daily return.
    pub mean: f64,
    /// Standard deviation (ddof 1).
    pub std: f64,
    /// `mean * N`.
    pub annualized_return: f64,
    /// `mean / std * sqrt(N)`.
    pub information_ratio: f64,
    /// Lowest cumulative sum minus its running maximum.
    pub max_drawdown: f64,
}

impl RiskAnalysis {
    /// Computes the figures of `r` with `n` periods per year.
    pub fn of(r: &[f64], n: f64) -> RiskAnalysis {
        let mean = nanmean(r);
        let std = nanstd(r);
        let mut cum = 0.0;
        let mut peak = f64::NEG_INFINITY;
        let mut mdd = f64::NAN;
        for &x in r {
            // pandas' cumsum skips NaN (the running sum carries over).
            if !x.is_nan() {
                cum += x;
            }
            if x.is_nan() {
                continue;
            }
            peak = peak.max(cum);
            let dd = cum - peak;
            if mdd.is_nan() || dd < mdd {
                mdd = dd;
            }
        }
        RiskAnalysis {
            mean,
            std,
            annualized_return: mean * n,
            information_ratio: mean / std * n.sqrt(),
            max_drawdown: mdd,
        }
    }

    /// `(name, value)` pairs in Qlib's order.
    pub fn entries(&self) -> [(&'static str, f64); 5] {
        [
            ("mean", self.mean),
            ("std", self.std),
            ("annualized_return", self.annualized_return),
            ("information_ratio", self.information_ratio),
            ("max_drawdown", self.max_drawdown),
        ]
    }
}

/// The risk of the excess return without and with costs (Qlib's `port_analysis_1day`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RiskReport {
    /// `return - bench`.
    pub excess_return_without_cost: RiskAnalysis,
    /// `return - bench - cost`.
    pub excess_return_with_cost: RiskAnalysis,
}

/// Order-level indicators over the whole backtest (Qlib's `indicator_analysis`, "mean").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndicatorAnalysis {
    /// Fulfilment rate, weighted by each day's order count.
    pub ffr: f64,
    /// Price advantage, weighted by each day's order count.
    pub pa: f64,
    /// Positive rate, weighted by each day's order count.
    pub pos: f64,
}

impl IndicatorAnalysis {
    /// Aggregates the daily indicators: `ffr` and `pa` weighted by `method` (each day's
    /// order count, dealt amount or traded value), `pos` always by the order count.
    pub fn of(days: &[IndicatorRow], method: WeightMethod) -> IndicatorAnalysis {
        let weights = |f: fn(&IndicatorRow) -> f64| days.iter().map(f).collect::<Vec<f64>>();
        let count = weights(|d| d.count);
        let w = match method {
            WeightMethod::Mean => count.clone(),
            WeightMethod::AmountWeighted => weights(|d| d.deal_amount.abs()),
            WeightMethod::ValueWeighted => weights(|d| d.value.abs()),
        };
        // pandas: (metric * weight).sum() / weight.sum(), NaN products skipped.
        let weighted = |f: fn(&IndicatorRow) -> f64, w: &[f64]| {
            let prod: Vec<f64> = days
                .iter()
                .zip(w)
                .map(|(d, w)| f(d) * w)
                .filter(|x| !x.is_nan())
                .collect();
            let ws: Vec<f64> = w.iter().copied().filter(|x| !x.is_nan()).collect();
            pairwise_sum(&prod) / pairwise_sum(&ws)
        };
        IndicatorAnalysis {
            ffr: weighted(|d| d.ffr, &w),
            pa: weighted(|d| d.pa, &w),
            pos: weighted(|d| d.pos, &count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_follow_the_definitions() {
        let r = [0.01, -0.02, 0.03, -0.01, 0.0];
        let a = RiskAnalysis::of(&r, 238.0);
        assert!((a.mean - 0.002).abs() < 1e-15);
        assert!((a.annualized_return - 0.002 * 238.0).abs() < 1e-12);
        // cumsum 0.01, -0.01, 0.02, 0.01, 0.01; running max 0.01, 0.01, 0.02, 0.02, 0.02.
        assert!((a.max_drawdown - -0.02).abs() < 1e-15);
        let var = r.iter().map(|x| (x - 0.002f64).powi(2)).sum::<f64>() / 4.0;
        assert!((a.std - var.sqrt()).abs() < 1e-15);
        assert!((a.information_ratio - 0.002 / var.sqrt() * 238f64.sqrt()).abs() < 1e-12);
    }
}
