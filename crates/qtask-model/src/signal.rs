//! Signal analysis as Qlib's `qlib.contrib.eva.alpha` computes it: daily IC (Pearson) and Rank IC
//! (Spearman) between a prediction and a label, and long-short returns.

/// One day's rows: prediction and label, aligned (NaN where either is missing).
#[derive(Debug, Clone, Copy)]
pub struct DayRows<'a> {
    /// Predictions.
    pub pred: &'a [f64],
    /// Labels.
    pub label: &'a [f64],
}

/// Pearson correlation over the pairs where both values are finite (pandas `Series.corr`);
/// NaN with fewer than two pairs or a constant side.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let pairs: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| !x.is_nan() && !y.is_nan())
        .map(|(x, y)| (*x, *y))
        .collect();
    pearson_pairs(&pairs)
}

fn pearson_pairs(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len();
    if n < 2 {
        return f64::NAN;
    }
    let nf = n as f64;
    let (ma, mb) = pairs
        .iter()
        .fold((0.0, 0.0), |(sa, sb), (x, y)| (sa + x, sb + y));
    let (ma, mb) = (ma / nf, mb / nf);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    let denom = (saa * sbb).sqrt();
    if denom == 0.0 {
        return f64::NAN;
    }
    (sab / denom).clamp(-1.0, 1.0)
}

/// Average ranks (1-based, ties share their mean rank), as `scipy.stats.rankdata`.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j + 1) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    ranks
}

/// Spearman correlation over the pairs where both values are present (ranks taken after
/// dropping the incomplete pairs, as pandas does).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (xa, xb): (Vec<f64>, Vec<f64>) = a
        .iter()
        .zip(b)
        .filter(|(x, y)| !x.is_nan() && !y.is_nan())
        .map(|(x, y)| (*x, *y))
        .unzip();
    pearson(&average_ranks(&xa), &average_ranks(&xb))
}

/// Mean of the non-NaN values (NaN when there are none), as pandas `mean()`.
pub fn nanmean(x: &[f64]) -> f64 {
    let v: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (ddof 1) of the non-NaN values, as pandas `std()`.
pub fn nanstd(x: &[f64]) -> f64 {
    let v: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Qlib's `calc_long_short_return` for one day: the mean label of the top `quantile` of rows by
/// prediction minus that of the bottom, halved, and the mean label of the day. The group size
/// counts every row (NaN predictions too), as pandas' `len(x)` does; NaN predictions are never
/// picked (`nlargest` drops them); ties keep row order.
pub fn long_short(day: DayRows, quantile: f64) -> (f64, f64) {
    let n = (day.pred.len() as f64 * quantile) as usize;
    let mut order: Vec<usize> = (0..day.pred.len())
        .filter(|&i| !day.pred[i].is_nan())
        .collect();
    // Stable sorts keep the first of equal predictions first, as nlargest/nsmallest(keep="first").
    order.sort_by(|&i, &j| day.pred[j].total_cmp(&day.pred[i]));
    let long: Vec<f64> = order.iter().take(n).map(|&i| day.label[i]).collect();
    order.sort_by(|&i, &j| day.pred[i].total_cmp(&day.pred[j]));
    let short: Vec<f64> = order.iter().take(n).map(|&i| day.label[i]).collect();
    ((nanmean(&long) - nanmean(&short)) / 2.0, nanmean(day.label))
}

/// The signal metrics of a daily IC series (Qlib's `SigAnaRecord`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IcSummary {
    /// Mean daily IC.
    pub ic: f64,
    /// Mean IC over its standard deviation.
    pub icir: f64,
    /// Mean daily Rank IC.
    pub rank_ic: f64,
    /// Mean Rank IC over its standard deviation.
    pub rank_icir: f64,
}

impl IcSummary {
    /// Summarises daily IC and Rank IC series.
    pub fn of(ic: &[f64], ric: &[f64]) -> IcSummary {
        IcSummary {
            ic: nanmean(ic),
            icir: nanmean(ic) / nanstd(ic),
            rank_ic: nanmean(ric),
            rank_icir: nanmean(ric) / nanstd(ric),
        }
    }

    /// As Qlib's metric names and values.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        vec![
            ("IC".into(), self.ic),
            ("ICIR".into(), self.icir),
            ("Rank IC".into(), self.rank_ic),
            ("Rank ICIR".into(), self.rank_icir),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_matches_hand_computation_and_skips_nan_pairs() {
        // x = 1,2,3; y = 2,4,7 -> r = 0.9933992677987828 (numpy.corrcoef)
        let r = pearson(&[1.0, 2.0, f64::NAN, 3.0], &[2.0, 4.0, 9.0, 7.0]);
        assert!((r - 0.9933992677987828).abs() < 1e-12, "{r}");
        assert!(pearson(&[1.0], &[2.0]).is_nan());
        assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
    }

    #[test]
    fn spearman_uses_average_ranks() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 5.0]),
            vec![2.5, 4.0, 2.5, 1.0]
        );
        // scipy.stats.spearmanr([1,2,2,3],[1,3,2,4]).correlation = 0.9486832980505138
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]);
        assert!((r - 0.9486832980505138).abs() < 1e-12, "{r}");
        // A monotone but non-linear relation has Rank IC 1.
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 8.0, 27.0, 64.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn nan_aware_mean_and_sample_std() {
        assert_eq!(nanmean(&[1.0, f64::NAN, 3.0]), 2.0);
        assert!((nanstd(&[1.0, f64::NAN, 3.0]) - 2f64.sqrt()).abs() < 1e-15);
        assert!(nanstd(&[1.0]).is_nan());
        assert!(nanmean(&[]).is_nan());
    }

    #[test]
    fn long_short_takes_int_of_group_share_and_skips_nan_predictions() {
        // 10 rows -> 2 long, 2 short.
        let pred = [0.9, 0.1, 0.5, 0.8, f64::NAN, 0.2, 0.3, 0.4, 0.6, 0.7];
        let label = [1.0, -1.0, 0.0, 2.0, 5.0, -2.0, 0.0, 0.0, 0.0, 0.0];
        let (ls, avg) = long_short(
            DayRows {
                pred: &pred,
                label: &label,
            },
            0.2,
        );
        // long: 0.9 -> 1, 0.8 -> 2 (mean 1.5); short: 0.1 -> -1, 0.2 -> -2 (mean -1.5)
        assert_eq!(ls, 1.5);
        assert_eq!(avg, 0.5);
        // 4 rows -> int(0.8) = 0 picks nothing: NaN, as pandas' mean of nothing.
        let (ls, _) = long_short(
            DayRows {
                pred: &pred[..4],
                label: &label[..4],
            },
            0.2,
        );
        assert!(ls.is_nan());
    }
}
