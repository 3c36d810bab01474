//! `/pools/{pool}`: one pool's tasks (status filter, sort, pages) and its task durations.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use qtask_pool::{PageRequest, SortKey, Status, Task};

use super::render;
use crate::error::Fail;
use crate::html::{self, Nav, card, count, cut, esc, layout, pill, time, url_part};
use crate::state::AppState;

/// Tasks per page.
pub(crate) const PAGE_SIZE: u64 = 50;

/// How many of the last finished tasks the duration histogram shows.
pub(crate) const DURATIONS: usize = 1000;

/// The page's settings from its query string.
struct View {
    status: Option<Status>,
    sort: SortKey,
    descending: bool,
    page: u64,
}

impl View {
    fn parse(q: &HashMap<String, String>) -> Result<View, Fail> {
        let status = match q.get("status").map(String::as_str) {
            None | Some("") | Some("all") => None,
            Some(s) => Some(
                s.parse::<Status>()
                    .map_err(|e| Fail::BadRequest(e.to_string()))?,
            ),
        };
        let sort = match q.get("sort").map(String::as_str) {
            None | Some("") => SortKey::Priority,
            Some(s) => SortKey::parse(s).ok_or_else(|| {
                Fail::BadRequest(format!(
                    "unknown sort {s:?} (expected priority, created or attempts)"
                ))
            })?,
        };
        let descending = match q.get("order").map(String::as_str) {
            None | Some("") | Some("asc") => false,
            Some("desc") => true,
            Some(o) => {
                return Err(Fail::BadRequest(format!(
                    "unknown order {o:?} (expected asc or desc)"
                )));
            }
        };
        let page = match q.get("page") {
            None => 1,
            Some(p) => p
                .parse::<u64>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| Fail::BadRequest(format!("bad page number {p:?}")))?,
        };
        Ok(View {
            status,
            sort,
            descending,
            page,
        })
    }

    /// The query string of this view with some settings changed.
    fn link(&self, status: Option<Status>, sort: SortKey, descending: bool, page: u64) -> String {
        let mut parts = Vec::new();
        if let Some(s) = status {
            parts.push(format!("status={}", s.as_str()));
        }
        if sort != SortKey::Priority {
            parts.push(format!("sort={}", sort.as_str()));
        }
        if descending {
            parts.push("order=desc".into());
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() {
            "?".into()
        } else {
            format!("?{}", parts.join("&amp;"))
        }
    }
}

fn lease_cell(t: &Task) -> String {
    if t.status != Status::Running {
        return format!("<td>{}</td>", html::dash());
    }
    let owner = t.lease_owner.as_deref().unwrap_or("?");
    let when = match t.lease_expires_at {
        None => "no lease".to_string(),
        Some(e) => {
            let secs = (e - Utc::now()).num_milliseconds() as f64 / 1000.0;
            if secs < 0.0 {
                return format!(
                    r#"<td class="warn" title="lease expired">{} · expired {} ago</td>"#,
                    esc(owner),
                    html::age(-secs)
                );
            }
            format!("expires in {}", html::age(secs))
        }
    };
    format!("<td>{} · {when}</td>", esc(owner))
}

/// A task's duration: from its last claim to its finish (or to now while running).
pub(crate) fn duration_secs(t: &Task) -> Option<f64> {
    let start = t.started_at?;
    let end = match (t.finished_at, t.status) {
        (Some(f), _) if f >= start => f,
        (_, Status::Running) => Utc::now(),
        _ => return None,
    };
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

fn task_row(pool: &str, t: &Task) -> String {
    let href = format!("/pools/{}/tasks/{}", url_part(pool), url_part(&t.id));
    let def = serde_json::to_string(&t.def).unwrap_or_default();
    format!(
        r#"<tr data-id="{id}"><td class="mono"><a class="task-link" href="{href}">{id}</a></td><td>{status}</td><td class="num">{prio}</td><td class="num">{att}</td><td>{created}</td><td>{finished}</td><td class="num">{dur}</td>{lease}<td class="def mono" title="{def_full}">{def}</td><td class="err">{err}</td></tr>"#,
        id = esc(&t.id),
        status = pill(t.status.as_str()),
        prio = t.priority.map_or_else(html::dash, |p| p.to_string()),
        att = t.attempts,
        created = time(Some(t.created_at)),
        finished = time(t.finished_at),
        dur = qtask_report::fmt_duration(duration_secs(t)),
        lease = lease_cell(t),
        def_full = esc(&cut(&def, 2000)),
        def = esc(&cut(&def, 90)),
        err = t.error.as_deref().map_or_else(html::dash, |e| esc(&cut(
            e.lines().next().unwrap_or(""),
            80
        ))),
    )
}

fn render_page(state: &AppState, pool: &str, view: &View) -> Result<String, Fail> {
    let ov = state.pools.on(pool, |p| p.overview())?;
    let total: u64 = ov.counts.values().sum();
    let shown_total = match view.status {
        Some(s) => ov.counts.get(&s).copied().unwrap_or(0),
        None => total,
    };
    let req = PageRequest {
        status: view.status,
        sort: view.sort,
        descending: view.descending,
        offset: (view.page - 1) * PAGE_SIZE,
        limit: PAGE_SIZE,
    };
    let tasks = state.pools.on_listed(pool, |p| p.task_page(&req))?;
    let durations = state
        .pools
        .on_listed(pool, |p| p.done_durations(DURATIONS))?;

    // Status tabs with counts.
    let mut tabs = format!(
        r#"<a class="tab{}" href="{}">All <b>{}</b></a>"#,
        if view.status.is_none() { " cur" } else { "" },
        view.link(None, view.sort, view.descending, 1),
        count(total)
    );
    for (s, label) in super::overview::COLUMNS {
        let n = ov.counts.get(&s).copied().unwrap_or(0);
        tabs.push_str(&format!(
            r#"<a class="tab t-{st}{cur}" href="{href}">{label} <b>{n}</b></a>"#,
            st = s.as_str(),
            cur = if view.status == Some(s) { " cur" } else { "" },
            href = view.link(Some(s), view.sort, view.descending, 1),
            n = count(n)
        ));
    }
    // Sortable headings: a click sorts by the column, a second click reverses.
    let sort_th = |key: SortKey, label: &str, cls: &str| {
        let (desc, arrow) = if view.sort == key {
            (!view.descending, if view.descending { " ↓" } else { " ↑" })
        } else {
            (false, "")
        };
        format!(
            r#"<th class="{cls}"><a href="{}">{label}{arrow}</a></th>"#,
            view.link(view.status, key, desc, 1)
        )
    };
    let head = format!(
        r#"<th>ID</th><th>Status</th>{}{}{}<th>Finished</th><th class="num">Duration</th><th>Lease</th><th>Definition</th><th>Last error</th>"#,
        sort_th(SortKey::Priority, "Priority", "num"),
        sort_th(SortKey::Attempts, "Attempts", "num"),
        sort_th(SortKey::Created, "Created", ""),
    );
    let rows: String = tasks.iter().map(|t| task_row(pool, t)).collect();
    let first = req.offset + 1;
    let last = req.offset + tasks.len() as u64;
    let pager = {
        let prev = if view.page > 1 {
            format!(
                r#"<a href="{}" rel="prev">← Previous</a>"#,
                view.link(view.status, view.sort, view.descending, view.page - 1)
            )
        } else {
            String::new()
        };
        let next = if last < shown_total {
            format!(
                r#"<a href="{}" rel="next">Next →</a>"#,
                view.link(view.status, view.sort, view.descending, view.page + 1)
            )
        } else {
            String::new()
        };
        let range = if tasks.is_empty() {
            "no tasks".to_string()
        } else {
            format!(
                "tasks {}–{} of {}",
                count(first),
                count(last),
                count(shown_total)
            )
        };
        format!(r#"<div class="pager"><span class="meta">{range}</span>{prev}{next}</div>"#)
    };
    let table = if tasks.is_empty() {
        format!(r#"<p class="nodata">No tasks here.</p>{pager}"#)
    } else {
        format!(
            r#"<div class="scroll"><table id="tasks-table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>{pager}"#
        )
    };
    let hist = crate::histogram::render(&durations);
    let hist_title = format!(
        "Durations of the last {} done tasks",
        count(durations.len() as u64)
    );
    let warn = if ov.expired_leases > 0 {
        format!(
            r#"<div class="banner warn">{} running task(s) hold an expired lease: their worker is gone or stalled. The next claim takes them again; <a href="?status=running">see them</a>.</div>"#,
            count(ov.expired_leases)
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"{warn}<nav class="tabs" id="status-tabs">{tabs}</nav>{}{}"#,
        card("tasks", "Tasks", &table),
        card("durations", &hist_title, &hist),
    );
    let sub = format!(
        r#"<a href="/">Pools</a> / pool <b>{}</b> · {} tasks"#,
        esc(pool),
        count(total)
    );
    Ok(layout(
        &state.chrome(),
        Nav::Pools,
        &format!("Pool {pool}"),
        &sub,
        &body,
    ))
}

/// `GET /pools/{pool}`.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Path(pool): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    render(state, Nav::Pools, move |st| {
        let view = View::parse(&q)?;
        render_page(st, &pool, &view)
    })
    .await
}
