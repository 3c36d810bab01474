//! The JSON API under `/api/` (documented in `docs/ui.md`); the pages' script uses it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use qtask_pool::{PageRequest, Query as PoolQuery, SortKey, Status, Task};
use serde_json::{Value, json};

use crate::error::Fail;
use crate::state::{AppState, blocking};

/// Tasks per `GET /api/pools/{pool}/tasks` response unless `limit` says otherwise, and the
/// most it may say.
const DEFAULT_LIMIT: u64 = 1000;
const MAX_LIMIT: u64 = 10_000;

/// A JSON response.
fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        serde_json::to_string(v).unwrap_or_default(),
    )
        .into_response()
}

/// `{"error": "..."}` with the failure's status code.
pub(crate) fn fail_json(fail: &Fail) -> Response {
    json_response(fail.status(), &json!({"error": fail.message()}))
}

async fn answer(
    state: &Arc<AppState>,
    f: impl FnOnce(&AppState) -> Result<Value, Fail> + Send + 'static,
) -> Response {
    match blocking(state, f).await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(fail) => fail_json(&fail),
    }
}

/// A task as `qtask manage --json` prints it, plus its lease and attempt limit.
fn task_json(t: &Task) -> Value {
    let mut doc = t.to_document();
    if let Value::Object(m) = &mut doc {
        m.insert("max_attempts".into(), json!(t.max_attempts));
        m.insert("lease_owner".into(), json!(t.lease_owner));
        m.insert(
            "lease_expires_at".into(),
            json!(
                t.lease_expires_at
                    .map(|e| e.to_rfc3339_opts(SecondsFormat::Millis, true))
            ),
        );
    }
    doc
}

/// `GET /api/pools`: every pool's overview.
pub(crate) async fn pools(State(state): State<Arc<AppState>>) -> Response {
    answer(&state, |st| {
        let rows = crate::pages::overview::rows(st)?;
        Ok(Value::Array(rows.iter().map(|r| r.to_json()).collect()))
    })
    .await
}

/// `GET /api/pools/{pool}`: one pool's overview.
pub(crate) async fn pool(State(state): State<Arc<AppState>>, Path(pool): Path<String>) -> Response {
    answer(&state, move |st| {
        let rows = crate::pages::overview::rows(st)?;
        rows.iter()
            .find(|r| r.name == pool)
            .map(|r| r.to_json())
            .ok_or_else(|| Fail::NotFound(format!("no pool {pool:?} in {}", st.pools.shown())))
    })
    .await
}

fn page_request(q: &HashMap<String, String>) -> Result<PageRequest, Fail> {
    let num = |k: &str| -> Result<Option<u64>, Fail> {
        q.get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| Fail::BadRequest(format!("{k} must be a whole number, not {v:?}")))
            })
            .transpose()
    };
    let status = match q.get("status") {
        Some(s) => Some(
            s.parse::<Status>()
                .map_err(|e| Fail::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    let sort = match q.get("sort") {
        None => None,
        Some(s) => Some(SortKey::parse(s).ok_or_else(|| {
            Fail::BadRequest(format!(
                "unknown sort {s:?} (expected priority, created or attempts)"
            ))
        })?),
    };
    let descending = match q.get("order").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => {
            return Err(Fail::BadRequest(format!(
                "unknown order {o:?} (expected asc or desc)"
            )));
        }
    };
    let limit = num("limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(Fail::BadRequest(format!("limit is at most {MAX_LIMIT}")));
    }
    Ok(PageRequest {
        status,
        // Without a sort: insertion order, as `qtask manage query` lists tasks.
        sort: sort.unwrap_or(SortKey::Created),
        descending,
        offset: num("offset")?.unwrap_or(0),
        limit,
    })
}

/// `GET /api/pools/{pool}/tasks?status=S&sort=K&order=asc|desc&offset=N&limit=N`: task
/// documents, insertion order unless sorted.
pub(crate) async fn tasks(
    State(state): State<Arc<AppState>>,
    Path(pool): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    answer(&state, move |st| {
        let page = page_request(&q)?;
        let tasks = st.pools.on(&pool, |p| p.task_page(&page))?;
        Ok(Value::Array(
            tasks.iter().map(|t| t.to_document()).collect(),
        ))
    })
    .await
}

/// `GET /api/pools/{pool}/tasks/{id}`.
pub(crate) async fn task(
    State(state): State<Arc<AppState>>,
    Path((pool, id)): Path<(String, String)>,
) -> Response {
    answer(&state, move |st| {
        let t = st.pools.on(&pool, |p| p.re_query(&id))?;
        Ok(task_json(&t))
    })
    .await
}

/// `POST /api/pools/{pool}/tasks/{id}/{retry|reset|prioritize|remove}` (the guard has
/// checked origin, read-only mode and token before this runs).
pub(crate) async fn action(
    State(state): State<Arc<AppState>>,
    Path((pool, id, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    answer(&state, move |st| {
        let by_id = PoolQuery::by_id(&id);
        let current = st.pools.on(&pool, |p| p.re_query(&id))?;
        let refuse = |what: &str, need: Status| {
            Fail::Conflict(format!(
                "task {id} is {}: only {} tasks can be {what}",
                current.status,
                need.as_str()
            ))
        };
        match action.as_str() {
            "retry" => {
                let n = st.pools.on_listed(&pool, |p| p.retry(&by_id))?;
                if n == 0 {
                    return Err(refuse("retried", Status::Failed));
                }
            }
            "reset" => {
                let n = st.pools.on_listed(&pool, |p| {
                    p.reset_waiting(&by_id.with_status(Status::Running))
                })?;
                if n == 0 {
                    return Err(refuse("reset", Status::Running));
                }
            }
            "prioritize" => {
                let v: Value = serde_json::from_slice(&body).map_err(|e| {
                    Fail::BadRequest(format!("the body must be JSON {{\"priority\": N}}: {e}"))
                })?;
                let priority = match v.get("priority") {
                    Some(Value::Null) => None,
                    Some(p) => Some(p.as_i64().ok_or_else(|| {
                        Fail::BadRequest(format!(
                            "priority must be a whole number or null, not {p}"
                        ))
                    })?),
                    None => {
                        return Err(Fail::BadRequest(
                            "the body must be JSON {\"priority\": N} (null clears it)".into(),
                        ));
                    }
                };
                st.pools.on_listed(&pool, |p| p.prioritize(&id, priority))?;
            }
            "remove" => {
                st.pools.on_listed(&pool, |p| p.remove(&by_id))?;
                return Ok(json!({"removed": id}));
            }
            other => {
                return Err(Fail::NotFound(format!(
                    "unknown action {other:?} (expected retry, reset, prioritize or remove)"
                )));
            }
        }
        let t = st.pools.on_listed(&pool, |p| p.re_query(&id))?;
        Ok(task_json(&t))
    })
    .await
}

/// `GET /api/experiments`.
pub(crate) async fn experiments(State(state): State<Arc<AppState>>) -> Response {
    answer(&state, |st| {
        let store = st.runs.get()?;
        let exps = store.experiments().map_err(Fail::record)?;
        serde_json::to_value(exps).map_err(|e| Fail::Internal(e.to_string()))
    })
    .await
}

fn metrics_json(m: &std::collections::BTreeMap<String, f64>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| {
                let v = if v.is_finite() { json!(v) } else { Value::Null };
                (k.clone(), v)
            })
            .collect(),
    )
}

/// `GET /api/experiments/{name}/runs`: runs newest first, with params and latest metrics.
pub(crate) async fn runs(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    answer(&state, move |st| {
        let store = st.runs.get()?;
        let exp = store
            .find_experiment(&name)
            .map_err(Fail::record)?
            .ok_or_else(|| Fail::NotFound(format!("no experiment {name:?} in {}", store.uri())))?;
        let rows = crate::pages::runs::run_rows(&exp)?;
        Ok(Value::Array(
            rows.iter()
                .map(|r| {
                    let mut v = serde_json::to_value(&r.info).unwrap_or(Value::Null);
                    if let Value::Object(m) = &mut v {
                        m.insert("params".into(), json!(r.params));
                        m.insert("metrics".into(), metrics_json(&r.metrics));
                    }
                    v
                })
                .collect(),
        ))
    })
    .await
}

/// `GET /api/runs/{run_id}`: a run with params, metrics, tags and artifact list.
pub(crate) async fn run(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
) -> Response {
    answer(&state, move |st| {
        let store = st.runs.get()?;
        let run = store.run(&run_id).map_err(Fail::record)?;
        let metrics = run
            .metrics()
            .map_err(Fail::record)?
            .into_iter()
            .map(|m| (m.key, m.value))
            .collect();
        let mut v = serde_json::to_value(run.info()).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("params".into(), json!(run.params().map_err(Fail::record)?));
            m.insert("metrics".into(), metrics_json(&metrics));
            m.insert("tags".into(), json!(run.tags().map_err(Fail::record)?));
            m.insert(
                "artifacts".into(),
                serde_json::to_value(run.all_artifacts().map_err(Fail::record)?)
                    .unwrap_or(Value::Null),
            );
        }
        Ok(v)
    })
    .await
}
