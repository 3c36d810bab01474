//! `/pools/{pool}/tasks/{id}`: one task, everything the store knows of it, and its actions.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::Utc;
use qtask_pool::{Status, Task};

use super::render;
use crate::error::Fail;
use crate::html::{self, Nav, card, esc, layout, pill, time, url_part};
use crate::state::AppState;

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn facts(t: &Task) -> String {
    let lease = match (t.status, &t.lease_owner, t.lease_expires_at) {
        (Status::Running, owner, Some(e)) => {
            let secs = (e - Utc::now()).num_milliseconds() as f64 / 1000.0;
            let state = if secs < 0.0 {
                format!(
                    r#"<span class="warn">expired {} ago</span>"#,
                    html::age(-secs)
                )
            } else {
                format!("expires in {}", html::age(secs))
            };
            format!(
                "{} · {} ({state})",
                esc(owner.as_deref().unwrap_or("?")),
                time(Some(e))
            )
        }
        (Status::Running, owner, None) => format!(
            "{} · no lease (runs until reset)",
            esc(owner.as_deref().unwrap_or("?"))
        ),
        _ => html::dash(),
    };
    let attempts = match t.max_attempts {
        Some(m) => format!("{} of at most {m}", t.attempts),
        None => format!("{} (pool limit)", t.attempts),
    };
    let rows = [
        ("Status", pill(t.status.as_str())),
        (
            "Priority",
            t.priority.map_or_else(html::dash, |p| p.to_string()),
        ),
        ("Attempts", attempts),
        ("Lease", lease),
        ("Created", time(Some(t.created_at))),
        ("Started", time(t.started_at)),
        ("Finished", time(t.finished_at)),
        (
            "Duration",
            qtask_report::fmt_duration(super::pool::duration_secs(t)),
        ),
    ];
    let mut out = String::from(r#"<table class="facts" id="task-facts"><tbody>"#);
    for (k, v) in rows {
        out.push_str(&format!("<tr><th>{k}</th><td>{v}</td></tr>"));
    }
    out.push_str("</tbody></table>");
    out
}

fn actions(state: &AppState, pool: &str, t: &Task) -> String {
    if state.config.read_only {
        return r#"<p class="nodata">This dashboard is read-only.</p>"#.into();
    }
    let base = format!("/api/pools/{}/tasks/{}", url_part(pool), url_part(&t.id));
    let button = |action: &str, label: &str, enabled: bool, why: &str, cls: &str| {
        let dis = if enabled {
            String::new()
        } else {
            format!(r#" disabled title="{}""#, esc(why))
        };
        format!(
            r#"<button type="button" class="act {cls}" id="act-{action}" data-action="{base}/{action}"{dis}>{label}</button>"#
        )
    };
    format!(
        r#"<div class="actions">{}{}<span class="prio"><input type="number" id="prio-value" step="1" value="{}" aria-label="priority"><button type="button" class="act" id="act-prioritize" data-action="{base}/prioritize" data-body="priority">Set priority</button></span>{}</div><p class="meta" id="action-result" role="status"></p>"#,
        button(
            "retry",
            "Retry",
            t.status == Status::Failed,
            "only failed tasks can be retried",
            "primary"
        ),
        button(
            "reset",
            "Reset to waiting",
            t.status == Status::Running,
            "only running tasks can be reset",
            ""
        ),
        t.priority.map(|p| p.to_string()).unwrap_or_default(),
        button("remove", "Remove", true, "", "danger"),
    )
}

fn render_page(state: &AppState, pool: &str, id: &str) -> Result<String, Fail> {
    let t = state.pools.on(pool, |p| p.re_query(id))?;
    let mut body = String::new();
    body.push_str(&card("facts", "Task", &facts(&t)));
    body.push_str(&card("actions", "Actions", &actions(state, pool, &t)));
    if let Some(err) = &t.error {
        body.push_str(&card(
            "error",
            "Last error",
            &format!(
                r#"<pre class="code error-text" id="error-text">{}</pre>"#,
                esc(err)
            ),
        ));
    }
    body.push_str(&card(
        "definition",
        "Definition",
        &format!(
            r#"<pre class="code" id="def-json">{}</pre>"#,
            esc(&pretty(&t.def))
        ),
    ));
    body.push_str(&card(
        "result",
        "Result",
        &match &t.res {
            Some(r) => format!(
                r#"<pre class="code" id="res-json">{}</pre>"#,
                esc(&pretty(r))
            ),
            None => r#"<p class="nodata">No result yet.</p>"#.into(),
        },
    ));
    let sub = format!(
        r#"<a href="/">Pools</a> / <a href="/pools/{}">{}</a> / task <b>{}</b>"#,
        url_part(pool),
        esc(pool),
        esc(id)
    );
    Ok(layout(
        &state.chrome(),
        Nav::Pools,
        &format!("Task {id}"),
        &sub,
        &body,
    ))
}

/// `GET /pools/{pool}/tasks/{id}`.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Path((pool, id)): Path<(String, String)>,
) -> Response {
    render(state, Nav::Pools, move |st| render_page(st, &pool, &id)).await
}
