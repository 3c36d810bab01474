//! The backtest and signal-analysis sections: plain data in, HTML `<section>`s out, so any
//! page (`qtask backtest`'s own, the study report) can show them.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::chart::{Line, YFormat, month_heatmap, time_chart};
use crate::escape::escape;
use crate::format::fmt_sig4;
use crate::page::{CSS, PROBE_SCRIPT, section};
use crate::series::cumulative;

/// A backtest's daily figures (Qlib's `report_normal` columns that the charts need).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BacktestSection {
    /// Trading days, `YYYY-MM-DD`.
    pub dates: Vec<String>,
    /// Daily portfolio return before costs.
    pub returns: Vec<f64>,
    /// Daily cost, as a fraction of the account.
    pub costs: Vec<f64>,
    /// Daily benchmark return.
    pub bench: Vec<f64>,
    /// Daily turnover, as a fraction of the account.
    pub turnover: Vec<f64>,
    /// Risk figures, one row per analysed series.
    pub risk: Vec<RiskRow>,
    /// Facts shown above the charts: (label, value).
    pub facts: Vec<(String, String)>,
}

/// Qlib's `risk_analysis` figures of one return series.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RiskRow {
    /// What was analysed, e.g. `excess return with cost`.
    pub name: String,
    /// Mean daily return.
    pub mean: f64,
    /// Standard deviation of the daily return.
    pub std: f64,
    /// Annualized return.
    pub annualized_return: f64,
    /// Information ratio.
    pub information_ratio: f64,
    /// Maximum drawdown (of the summed returns).
    pub max_drawdown: f64,
}

/// Signal diagnostics (Qlib's `model_performance_graph` data).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SignalSection {
    /// Days of the group returns.
    pub group_dates: Vec<String>,
    /// Daily return of each score group (`Group1` = top), then `long-short` and
    /// `long-average`; the chart shows their running sums.
    pub group_returns: Vec<(String, Vec<f64>)>,
    /// Mean IC per (year, month).
    pub monthly_ic: Vec<(i32, u32, f64)>,
    /// Days of the persistence series.
    pub dates: Vec<String>,
    /// Rank autocorrelation of the score (lag 1).
    pub rank_autocorr: Vec<f64>,
    /// Turnover of the top quantile.
    pub turnover_top: Vec<f64>,
    /// Turnover of the bottom quantile.
    pub turnover_bottom: Vec<f64>,
}

const PORTFOLIO: &str = "#2563eb";
const WITH_COST: &str = "#7c3aed";
const BENCH: &str = "#6b7280";
const EXCESS: &str = "#ea8a0c";
const DRAWDOWN: &str = "#dc2626";
const GROUPS: [&str; 5] = ["#b91c1c", "#ea580c", "#a3a3a3", "#0ea5e9", "#1d4ed8"];

fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// Drawdown of a running sum: how far below its running maximum it is.
fn drawdown(cum: &[f64]) -> Vec<f64> {
    let mut peak = f64::NEG_INFINITY;
    cum.iter()
        .map(|&c| {
            peak = peak.max(c);
            c - peak
        })
        .collect()
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}%", v * 100.0)
    } else {
        crate::format::MISSING.to_string()
    }
}

fn risk_table(bt: &BacktestSection) -> Option<String> {
    if bt.risk.is_empty() && bt.facts.is_empty() {
        return None;
    }
    let mut out = String::new();
    if !bt.facts.is_empty() {
        out.push_str(r#"<div class="scroll"><table id="backtest-facts"><tbody>"#);
        for (k, v) in &bt.facts {
            let _ = write!(
                out,
                r#"<tr><th>{}</th><td class="name">{}</td></tr>"#,
                escape(k),
                escape(v)
            );
        }
        out.push_str("</tbody></table></div>");
    }
    if !bt.risk.is_empty() {
        out.push_str(r#"<div class="scroll"><table id="risk-table"><thead><tr><th>Series</th><th class="num">Mean</th><th class="num">Std</th><th class="num">Annualized return</th><th class="num">Information ratio</th><th class="num">Max drawdown</th></tr></thead><tbody>"#);
        for r in &bt.risk {
            let _ = write!(
                out,
                r#"<tr><td class="name">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                escape(&r.name),
                fmt_sig4(Some(r.mean)),
                fmt_sig4(Some(r.std)),
                pct(r.annualized_return),
                fmt_sig4(Some(r.information_ratio)),
                pct(r.max_drawdown),
            );
        }
        out.push_str("</tbody></table></div>");
    }
    Some(out)
}

/// The backtest's sections: facts and risk table, cumulative return of the portfolio (without
/// and with costs) and the benchmark, cumulative excess return, drawdown, turnover. Returns
/// are summed day by day, as Qlib's `report_graph` draws them.
pub fn render_backtest_sections(bt: &BacktestSection) -> String {
    let mut out = String::new();
    section(
        &mut out,
        "bt-risk",
        "Backtest: risk analysis",
        risk_table(bt),
    );
    let net = diff(&bt.returns, &bt.costs);
    let cum_ret = cumulative(&bt.returns);
    let cum_net = cumulative(&net);
    let cum_bench = cumulative(&bt.bench);
    section(
        &mut out,
        "bt-cum-return",
        "Cumulative return",
        time_chart(
            "chart-bt-cum-return",
            "Cumulative return of the portfolio and the benchmark",
            &bt.dates,
            &[
                Line {
                    label: "Portfolio (no cost)",
                    color: PORTFOLIO,
                    values: &cum_ret,
                    dashed: false,
                },
                Line {
                    label: "Portfolio (with cost)",
                    color: WITH_COST,
                    values: &cum_net,
                    dashed: false,
                },
                Line {
                    label: "Benchmark",
                    color: BENCH,
                    values: &cum_bench,
                    dashed: true,
                },
            ],
            YFormat::Percent,
            false,
        ),
    );
    let excess = cumulative(&diff(&bt.returns, &bt.bench));
    let excess_net = cumulative(&diff(&net, &bt.bench));
    section(
        &mut out,
        "bt-excess",
        "Cumulative excess return",
        time_chart(
            "chart-bt-excess",
            "Cumulative excess return over the benchmark",
            &bt.dates,
            &[
                Line {
                    label: "Excess (no cost)",
                    color: EXCESS,
                    values: &excess,
                    dashed: false,
                },
                Line {
                    label: "Excess (with cost)",
                    color: WITH_COST,
                    values: &excess_net,
                    dashed: false,
                },
            ],
            YFormat::Percent,
            false,
        ),
    );
    let dd = drawdown(&excess_net);
    section(
        &mut out,
        "bt-drawdown",
        "Drawdown of the excess return (with cost)",
        time_chart(
            "chart-bt-drawdown",
            "Drawdown of the cumulative excess return with cost",
            &bt.dates,
            &[Line {
                label: "Drawdown",
                color: DRAWDOWN,
                values: &dd,
                dashed: false,
            }],
            YFormat::Percent,
            true,
        ),
    );
    section(
        &mut out,
        "bt-turnover",
        "Turnover",
        time_chart(
            "chart-bt-turnover",
            "Daily turnover as a share of the account",
            &bt.dates,
            &[Line {
                label: "Turnover",
                color: PORTFOLIO,
                values: &bt.turnover,
                dashed: false,
            }],
            YFormat::Percent,
            false,
        ),
    );
    out
}

/// The signal sections: cumulative return of each score quintile and of long-short, the
/// monthly IC heatmap, the rank autocorrelation and the top/bottom quantile turnover.
pub fn render_signal_sections(sig: &SignalSection) -> String {
    let mut out = String::new();
    let cums: Vec<(String, Vec<f64>)> = sig
        .group_returns
        .iter()
        .filter(|(n, _)| n != "long-average")
        .map(|(n, v)| (n.clone(), cumulative(v)))
        .collect();
    let lines: Vec<Line<'_>> = cums
        .iter()
        .enumerate()
        .map(|(i, (n, v))| Line {
            label: n,
            color: if n == "long-short" {
                "#111827"
            } else {
                GROUPS[i % GROUPS.len()]
            },
            values: v,
            dashed: n == "long-short",
        })
        .collect();
    section(
        &mut out,
        "sig-groups",
        "Cumulative return by score quintile",
        time_chart(
            "chart-sig-groups",
            "Cumulative mean label of each score quintile (Group1 = highest scores) and long-short",
            &sig.group_dates,
            &lines,
            YFormat::Percent,
            false,
        ),
    );
    section(
        &mut out,
        "sig-monthly-ic",
        "Monthly IC",
        month_heatmap(
            "chart-sig-monthly-ic",
            "Mean daily IC of each month",
            &sig.monthly_ic,
        ),
    );
    section(
        &mut out,
        "sig-autocorr",
        "Score rank autocorrelation",
        time_chart(
            "chart-sig-autocorr",
            "Correlation of each day's score ranks with the previous day's",
            &sig.dates,
            &[Line {
                label: "Rank autocorrelation",
                color: PORTFOLIO,
                values: &sig.rank_autocorr,
                dashed: false,
            }],
            YFormat::Number,
            false,
        ),
    );
    section(
        &mut out,
        "sig-turnover",
        "Top and bottom quintile turnover",
        time_chart(
            "chart-sig-turnover",
            "Share of the top / bottom quintile that changed since the previous day",
            &sig.dates,
            &[
                Line {
                    label: "Top",
                    color: GROUPS[0],
                    values: &sig.turnover_top,
                    dashed: false,
                },
                Line {
                    label: "Bottom",
                    color: GROUPS[4],
                    values: &sig.turnover_bottom,
                    dashed: false,
                },
            ],
            YFormat::Percent,
            false,
        ),
    );
    out
}

/// A complete, self-contained page with the backtest sections and, when given, the signal
/// sections (what `qtask backtest` writes as `report.html`).
pub fn render_backtest_page(
    title: &str,
    notes: &[String],
    generated_at: &str,
    bt: &BacktestSection,
    sig: Option<&SignalSection>,
) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{t}</title><style>{CSS}</style></head><body><main><header><h1>{t}</h1>",
        t = escape(title)
    );
    if !generated_at.is_empty() {
        let _ = write!(
            out,
            r#"<p class="meta">generated {}</p>"#,
            escape(generated_at)
        );
    }
    if !notes.is_empty() {
        out.push_str(r#"<ul class="notes">"#);
        for n in notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul>");
    }
    out.push_str("</header>");
    out.push_str(&render_backtest_sections(bt));
    if let Some(sig) = sig {
        out.push_str(&render_signal_sections(sig));
    }
    let _ = writeln!(
        out,
        "<footer>Generated by qtask-report at {}</footer></main><script>{PROBE_SCRIPT}</script></body></html>",
        escape(generated_at)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section_data(n: usize) -> BacktestSection {
        BacktestSection {
            dates: (0..n).map(|i| format!("2020-01-{:02}", i + 1)).collect(),
            returns: (0..n).map(|i| 0.01 * ((i % 3) as f64 - 1.0)).collect(),
            costs: vec![0.001; n],
            bench: vec![0.002; n],
            turnover: vec![0.2; n],
            risk: vec![RiskRow {
                name: "excess return with cost".into(),
                mean: -0.003,
                std: 0.01,
                annualized_return: -0.714,
                information_ratio: -4.6,
                max_drawdown: -0.05,
            }],
            facts: vec![("Strategy".into(), "TopkDropoutStrategy <topk 5>".into())],
        }
    }

    #[test]
    fn page_has_every_backtest_chart_and_escapes_text() {
        let html = render_backtest_page("bt <x>", &[], "now", &section_data(20), None);
        for id in [
            "chart-bt-cum-return",
            "chart-bt-excess",
            "chart-bt-drawdown",
            "chart-bt-turnover",
        ] {
            assert!(html.contains(&format!(r#"id="{id}""#)), "{id}");
        }
        assert!(html.contains("bt &lt;x&gt;"));
        assert!(html.contains("TopkDropoutStrategy &lt;topk 5&gt;"));
        assert!(html.contains("-71.40%"));
        assert!(!html.contains("chart-sig-groups"));
    }

    #[test]
    fn drawdown_is_distance_below_the_running_peak() {
        assert_eq!(
            drawdown(&[0.0, 0.1, 0.05, 0.2, 0.1]),
            vec![0.0, 0.0, -0.05, 0.0, -0.1]
        );
    }

    #[test]
    fn signal_sections_draw_groups_heatmap_and_persistence() {
        let sig = SignalSection {
            group_dates: vec!["2020-01-02".into(), "2020-01-03".into()],
            group_returns: vec![
                ("Group1".into(), vec![0.01, 0.02]),
                ("Group2".into(), vec![0.0, -0.01]),
                ("long-short".into(), vec![0.01, 0.03]),
                ("long-average".into(), vec![0.005, 0.01]),
            ],
            monthly_ic: vec![(2020, 1, 0.04)],
            dates: vec!["2020-01-02".into(), "2020-01-03".into()],
            rank_autocorr: vec![f64::NAN, 0.8],
            turnover_top: vec![1.0, 0.2],
            turnover_bottom: vec![1.0, 0.4],
        };
        let html = render_signal_sections(&sig);
        for id in [
            "chart-sig-groups",
            "chart-sig-monthly-ic",
            "chart-sig-autocorr",
            "chart-sig-turnover",
        ] {
            assert!(html.contains(&format!(r#"id="{id}""#)), "{id}");
        }
        // The long-short line is dashed; long-average is not drawn.
        assert!(html.contains(r##"data-label="long-short" fill="none" stroke="#111827" stroke-width="2" stroke-dasharray"##));
        assert!(!html.contains(r#"data-label="long-average""#));
    }
}
