//! `/`: every pool of the store with its counts and signs of trouble, refreshed live.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use qtask_pool::{PoolOverview, Status};
use serde_json::{Map, Value, json};

use super::render;
use crate::error::Fail;
use crate::html::{self, Nav, card, count, esc, layout, url_part};
use crate::rate::Rate;
use crate::state::AppState;

/// One pool as the overview shows it.
pub(crate) struct PoolRow {
    pub name: String,
    pub overview: PoolOverview,
    pub rate: Option<Rate>,
    /// When the figures were read.
    pub at: DateTime<Utc>,
}

impl PoolRow {
    pub(crate) fn total(&self) -> u64 {
        self.overview.counts.values().sum()
    }

    fn n(&self, s: Status) -> u64 {
        self.overview.counts.get(&s).copied().unwrap_or(0)
    }

    /// The JSON of `/api/pools`.
    pub(crate) fn to_json(&self) -> Value {
        let counts: Map<String, Value> = self
            .overview
            .counts
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), json!(n)))
            .collect();
        let oldest = self.overview.oldest_waiting.as_ref().map(|(id, t)| {
            json!({
                "_id": id,
                "created_at": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "age_seconds": (self.at - *t).num_milliseconds().max(0) as f64 / 1000.0,
            })
        });
        json!({
            "pool": self.name,
            "counts": counts,
            "total": self.total(),
            "expired_leases": self.overview.expired_leases,
            "oldest_waiting": oldest,
            "done_per_minute": self.rate.map(|r| r.per_minute),
            "rate_seconds": self.rate.map(|r| r.over_secs),
        })
    }
}

/// Reads the overview of every pool (and records the done counts for the rates).
pub(crate) fn rows(state: &AppState) -> Result<Vec<PoolRow>, Fail> {
    let names = state.pools.list()?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let overview = state.pools.on_listed(&name, |p| p.overview())?;
        let done = overview.counts.get(&Status::Done).copied().unwrap_or(0);
        let rate = state.rates.record(&name, done, Instant::now());
        out.push(PoolRow {
            name,
            overview,
            rate,
            at: Utc::now(),
        });
    }
    Ok(out)
}

/// The statuses in table order, with their headings.
pub(crate) const COLUMNS: [(Status, &str); 5] = [
    (Status::Waiting, "Waiting"),
    (Status::Running, "Running"),
    (Status::PartDone, "Part done"),
    (Status::Done, "Done"),
    (Status::Failed, "Failed"),
];

/// A stacked bar of the status shares (SVG: sized by attributes, which the page's
/// Content-Security-Policy allows where inline styles are refused).
pub(crate) fn share_bar(row: &PoolRow) -> String {
    let total = row.total().max(1) as f64;
    let mut x = 0.0;
    let mut rects = String::new();
    for (s, _) in COLUMNS {
        let w = row.n(s) as f64 * 100.0 / total;
        if w > 0.0 {
            rects.push_str(&format!(
                r#"<rect class="s-{}" x="{x:.3}%" width="{w:.3}%" height="8"/>"#,
                s.as_str()
            ));
        }
        x += w;
    }
    format!(r#"<svg class="share" width="100%" height="8" aria-hidden="true">{rects}</svg>"#)
}

fn row_html(row: &PoolRow) -> String {
    let href = format!("/pools/{}", url_part(&row.name));
    let mut cells = format!(
        r#"<td class="name"><a class="pool-link" href="{href}">{}</a>{}</td>"#,
        esc(&row.name),
        share_bar(row)
    );
    for (s, _) in COLUMNS {
        let n = row.n(s);
        let cls = match s {
            Status::Failed if n > 0 => " bad",
            _ if n == 0 => " zero",
            _ => "",
        };
        cells.push_str(&format!(
            r#"<td class="num{cls}" data-status="{}"><a href="{href}?status={}">{}</a></td>"#,
            s.as_str(),
            s.as_str(),
            count(n)
        ));
    }
    cells.push_str(&format!(r#"<td class="num">{}</td>"#, count(row.total())));
    cells.push_str(&format!(
        r#"<td class="num" data-field="rate">{}</td>"#,
        match row.rate {
            Some(r) => format!("{:.1}", r.per_minute),
            None => html::dash(),
        }
    ));
    cells.push_str(&match &row.overview.oldest_waiting {
        Some((id, t)) => format!(
            r#"<td class="num" data-field="oldest"><a href="{href}/tasks/{}" title="task {}">{}</a></td>"#,
            url_part(id),
            esc(id),
            html::age((row.at - *t).num_milliseconds() as f64 / 1000.0)
        ),
        None => format!(r#"<td class="num" data-field="oldest">{}</td>"#, html::dash()),
    });
    let expired = row.overview.expired_leases;
    cells.push_str(&format!(
        r#"<td class="num{}" data-field="expired">{}</td>"#,
        if expired > 0 { " warn" } else { " zero" },
        count(expired)
    ));
    format!(r#"<tr data-pool="{}">{cells}</tr>"#, esc(&row.name))
}

/// The overview table (also what the script rebuilds from `/api/pools`).
fn table(rows: &[PoolRow]) -> String {
    let mut head = String::from(r#"<th>Pool</th>"#);
    for (_, h) in COLUMNS {
        head.push_str(&format!(r#"<th class="num">{h}</th>"#));
    }
    head.push_str(r#"<th class="num">Total</th><th class="num" title="tasks done per minute, measured by this dashboard over the last 5 minutes">Done / min</th><th class="num" title="age of the oldest waiting task">Oldest waiting</th><th class="num" title="running tasks whose lease ran out: their worker is gone or stalled">Expired leases</th>"#);
    let body: String = rows.iter().map(row_html).collect();
    let empty = if rows.is_empty() {
        r#"<p class="nodata" id="no-pools">No pools in this store yet. Create one with <code>qtask manage -t POOL create tasks.json</code>.</p>"#
    } else {
        ""
    };
    format!(
        r#"<div class="scroll"><table id="pools-table" data-live="/api/pools"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{empty}"#
    )
}

fn render_page(state: &AppState) -> Result<String, Fail> {
    let rows = rows(state)?;
    let sub = format!(
        r#"{} pools · <span id="live-status">updated <time id="updated">{}</time> UTC, refreshing every 3 s</span>"#,
        rows.len(),
        Utc::now().format("%H:%M:%S")
    );
    let banner = r#"<div class="banner" id="unreachable" hidden></div>"#;
    let body = format!("{banner}{}", card("pools", "Task pools", &table(&rows)));
    Ok(layout(&state.chrome(), Nav::Pools, "Pools", &sub, &body))
}

/// `GET /`.
pub(crate) async fn page(State(state): State<Arc<AppState>>) -> Response {
    render(state, Nav::Pools, render_page).await
}
