//! Experiments and runs: `/experiments`, `/experiments/{name}`, its report, `/runs/{id}`,
//! artifact downloads and previews.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qtask_record::{Experiment, RecordStore, Run, RunInfo};
use sha2::{Digest, Sha256};

use super::{fail_response, html as html_response, render};
use crate::error::Fail;
use crate::html::{self, Nav, card, count, cut, esc, layout, pill, url_part, url_path};
use crate::state::{AppState, blocking};

/// Metrics shown first, in this order (Qlib's signal metrics).
const FIRST_METRICS: [&str; 4] = ["IC", "ICIR", "Rank IC", "Rank ICIR"];
/// Most param and metric columns in a runs table.
const MAX_PARAMS: usize = 6;
const MAX_METRICS: usize = 10;
/// Rows of a Parquet preview, bytes of a text preview.
pub(crate) const PREVIEW_ROWS: usize = 50;
const PREVIEW_BYTES: usize = 256 * 1024;

fn find(store: &RecordStore, name: &str) -> Result<Experiment, Fail> {
    store
        .find_experiment(name)
        .map_err(Fail::record)?
        .ok_or_else(|| Fail::NotFound(format!("no experiment {name:?} in {}", store.uri())))
}

fn ms_time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(html::dash, |t| html::time(Some(t)))
}

fn run_secs(r: &RunInfo) -> Option<f64> {
    r.end_time.map(|e| (e - r.start_time) as f64 / 1000.0)
}

/// A run with its params and latest metrics.
pub(crate) struct RunRow {
    pub info: RunInfo,
    pub params: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
}

pub(crate) fn run_rows(exp: &Experiment) -> Result<Vec<RunRow>, Fail> {
    let infos = exp.runs(None).map_err(Fail::record)?;
    let mut out = Vec::with_capacity(infos.len());
    for info in infos {
        let run = exp.run(&info.run_id).map_err(Fail::record)?;
        out.push(RunRow {
            params: run.params().map_err(Fail::record)?,
            metrics: run
                .metrics()
                .map_err(Fail::record)?
                .into_iter()
                .map(|m| (m.key, m.value))
                .collect(),
            info,
        });
    }
    Ok(out)
}

/// Params whose value differs between runs (what tells the runs apart), at most a few.
fn key_params(rows: &[RunRow]) -> Vec<String> {
    let keys: BTreeSet<&String> = rows.iter().flat_map(|r| r.params.keys()).collect();
    keys.into_iter()
        .filter(|k| {
            let values: BTreeSet<Option<&String>> = rows.iter().map(|r| r.params.get(*k)).collect();
            values.len() > 1
        })
        .take(MAX_PARAMS)
        .cloned()
        .collect()
}

fn metric_names(rows: &[RunRow]) -> Vec<String> {
    let all: BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    let mut names: Vec<String> = FIRST_METRICS
        .iter()
        .filter(|m| all.iter().any(|a| a == m))
        .map(|m| m.to_string())
        .collect();
    for m in all {
        if !names.contains(m) {
            names.push(m.clone());
        }
    }
    names.truncate(MAX_METRICS);
    names
}

fn render_experiments(state: &AppState) -> Result<String, Fail> {
    let store = state.runs.get()?;
    let exps = store.experiments().map_err(Fail::record)?;
    let mut rows = String::new();
    for e in &exps {
        let n = store
            .find_experiment(&e.name)
            .map_err(Fail::record)?
            .map(|x| x.runs(None).map(|r| r.len()))
            .transpose()
            .map_err(Fail::record)?
            .unwrap_or(0);
        let href = format!("/experiments/{}", url_part(&e.name));
        rows.push_str(&format!(
            r#"<tr><td class="name"><a class="exp-link" href="{href}">{}</a></td><td class="mono">{}</td><td class="num" data-v="{n}">{}</td><td>{}</td><td>{}</td><td><a href="{href}/report">report</a></td></tr>"#,
            esc(&e.name),
            esc(&e.id),
            count(n as u64),
            ms_time(e.creation_time),
            ms_time(e.last_update_time),
        ));
    }
    let table = if exps.is_empty() {
        r#"<p class="nodata">No experiments in this runs store.</p>"#.to_string()
    } else {
        format!(
            r#"<div class="scroll"><table id="experiments-table" class="sortable"><thead><tr><th>Name</th><th>ID</th><th class="num">Runs</th><th>Created</th><th>Updated</th><th>Study</th></tr></thead><tbody>{rows}</tbody></table></div>"#
        )
    };
    let sub = format!(
        r#"runs store <span class="mono">{}</span>"#,
        esc(&store.uri())
    );
    Ok(layout(
        &state.chrome(),
        Nav::Experiments,
        "Experiments",
        &sub,
        &card("experiments", "Experiments", &table),
    ))
}

fn render_experiment(state: &AppState, name: &str) -> Result<String, Fail> {
    let store = state.runs.get()?;
    let exp = find(&store, name)?;
    let rows = run_rows(&exp)?;
    let params = key_params(&rows);
    let metrics = metric_names(&rows);
    // A first heading row groups params and metrics (a metric may share a param's name).
    let mut groups = String::from(r#"<th colspan="4"></th>"#);
    if !params.is_empty() {
        groups.push_str(&format!(
            r#"<th colspan="{}" class="group">Params</th>"#,
            params.len()
        ));
    }
    if !metrics.is_empty() {
        groups.push_str(&format!(
            r#"<th colspan="{}" class="group num">Metrics</th>"#,
            metrics.len()
        ));
    }
    let mut head =
        String::from(r#"<th>Run</th><th>Status</th><th>Start</th><th class="num">Duration</th>"#);
    for p in &params {
        // The last two parts of a flattened name tell the columns apart; hover for all.
        let short: Vec<&str> = p.rsplit('.').take(2).collect();
        let short = short.into_iter().rev().collect::<Vec<_>>().join(".");
        head.push_str(&format!(
            r#"<th title="param {}">{}</th>"#,
            esc(p),
            esc(&short)
        ));
    }
    for m in &metrics {
        head.push_str(&format!(r#"<th class="num">{}</th>"#, esc(m)));
    }
    let mut body = String::new();
    for r in &rows {
        let secs = run_secs(&r.info);
        body.push_str(&format!(
            r#"<tr><td class="run"><a class="run-link" href="/runs/{id}" title="run {full}">{name}</a> <span class="mono muted">{short}</span></td><td>{status}</td><td data-v="{start}">{start_txt}</td><td class="num" data-v="{secs_v}">{dur}</td>"#,
            id = url_part(&r.info.run_id),
            name = esc(&r.info.run_name),
            short = esc(&r.info.run_id[..8.min(r.info.run_id.len())]),
            full = esc(&r.info.run_id),
            status = pill(r.info.status.as_str()),
            start = r.info.start_time,
            start_txt = ms_time(Some(r.info.start_time)),
            secs_v = secs.unwrap_or(-1.0),
            dur = qtask_report::fmt_duration(secs),
        ));
        for p in &params {
            let v = r.params.get(p).map(String::as_str).unwrap_or("");
            body.push_str(&format!(
                r#"<td title="{}">{}</td>"#,
                esc(v),
                esc(&cut(v, 40))
            ));
        }
        for m in &metrics {
            let v = r.metrics.get(m).copied();
            body.push_str(&format!(
                r#"<td class="num" data-v="{}">{}</td>"#,
                v.filter(|x| x.is_finite())
                    .map_or(String::new(), |x| x.to_string()),
                qtask_report::fmt_sig4(v)
            ));
        }
        body.push_str("</tr>");
    }
    let table = if rows.is_empty() {
        r#"<p class="nodata">No runs yet.</p>"#.to_string()
    } else {
        format!(
            r#"<p class="meta">Click a heading to sort. Params shown are those that differ between runs.</p><div class="scroll"><table id="runs-table" class="sortable"><thead><tr class="groups">{groups}</tr><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"#
        )
    };
    let sub = format!(
        r#"<a href="/experiments">Experiments</a> / <b>{}</b> · {} runs · <a id="report-link" href="/experiments/{}/report">study report</a>"#,
        esc(name),
        count(rows.len() as u64),
        url_part(name)
    );
    Ok(layout(
        &state.chrome(),
        Nav::Experiments,
        &format!("Experiment {name}"),
        &sub,
        &card("runs", "Runs", &table),
    ))
}

fn open_run(state: &AppState, run_id: &str) -> Result<(RecordStore, Run), Fail> {
    let store = state.runs.get()?;
    let run = store.run(run_id).map_err(|e| match Fail::record(e) {
        Fail::NotFound(_) => Fail::NotFound(format!("no run {run_id:?} in {}", store.uri())),
        other => other,
    })?;
    Ok((store, run))
}

fn kv_table(id: &str, rows: &[(String, String)], empty: &str) -> String {
    if rows.is_empty() {
        return format!(r#"<p class="nodata">{empty}</p>"#);
    }
    let mut out = format!(
        r#"<div class="scroll"><table id="{id}" class="sortable kv"><thead><tr><th>Key</th><th>Value</th></tr></thead><tbody>"#
    );
    for (k, v) in rows {
        out.push_str(&format!(
            r#"<tr><td class="mono">{}</td><td class="wrap">{}</td></tr>"#,
            esc(k),
            esc(v)
        ));
    }
    out.push_str("</tbody></table></div>");
    out
}

fn previewable(path: &str) -> bool {
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        ext.as_str(),
        "parquet" | "json" | "txt" | "yaml" | "yml" | "csv" | "log" | "md" | "py"
    )
}

fn render_run(state: &AppState, run_id: &str) -> Result<String, Fail> {
    let (store, run) = open_run(state, run_id)?;
    let info = run.info().clone();
    let exp_name = store
        .experiments()
        .map_err(Fail::record)?
        .into_iter()
        .find(|e| e.id == info.experiment_id)
        .map(|e| e.name);
    let params: Vec<(String, String)> = run.params().map_err(Fail::record)?.into_iter().collect();
    let tags: Vec<(String, String)> = run.tags().map_err(Fail::record)?.into_iter().collect();
    let metrics = run.metrics().map_err(Fail::record)?;
    let artifacts = run.all_artifacts().map_err(Fail::record)?;

    let exp_cell = match &exp_name {
        Some(n) => format!(r#"<a href="/experiments/{}">{}</a>"#, url_part(n), esc(n)),
        None => esc(&info.experiment_id),
    };
    let facts = [
        ("Name", esc(&info.run_name)),
        (
            "Run ID",
            format!(r#"<span class="mono">{}</span>"#, esc(&info.run_id)),
        ),
        ("Experiment", exp_cell),
        ("Status", pill(info.status.as_str())),
        ("Start", ms_time(Some(info.start_time))),
        ("End", ms_time(info.end_time)),
        ("Duration", qtask_report::fmt_duration(run_secs(&info))),
        ("User", esc(&info.user_id)),
        (
            "Artifacts at",
            format!(r#"<span class="mono">{}</span>"#, esc(&info.artifact_uri)),
        ),
    ];
    let mut facts_html = String::from(r#"<table class="facts" id="run-facts"><tbody>"#);
    for (k, v) in facts {
        facts_html.push_str(&format!("<tr><th>{k}</th><td>{v}</td></tr>"));
    }
    facts_html.push_str("</tbody></table>");

    let metrics_html = if metrics.is_empty() {
        r#"<p class="nodata">No metrics.</p>"#.to_string()
    } else {
        let mut t = String::from(
            r#"<div class="scroll"><table id="metrics-table" class="sortable"><thead><tr><th>Metric</th><th class="num">Value</th><th class="num">Step</th><th>Logged</th></tr></thead><tbody>"#,
        );
        for m in &metrics {
            t.push_str(&format!(
                r#"<tr><td class="mono">{}</td><td class="num" data-v="{}" title="{}">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                esc(&m.key),
                if m.value.is_finite() { m.value.to_string() } else { String::new() },
                m.value,
                qtask_report::fmt_sig4(Some(m.value)),
                m.step,
                ms_time(Some(m.timestamp)),
            ));
        }
        t.push_str("</tbody></table></div>");
        t
    };
    let artifacts_html = if artifacts.is_empty() {
        r#"<p class="nodata">No artifacts.</p>"#.to_string()
    } else {
        let mut t = String::from(
            r#"<div class="scroll"><table id="artifacts-table"><thead><tr><th>Path</th><th class="num">Size</th><th></th></tr></thead><tbody>"#,
        );
        for a in &artifacts {
            let base = format!("/runs/{}", url_part(&info.run_id));
            let preview = if previewable(&a.path) {
                format!(
                    r#"<a class="preview-link" href="{base}/preview/{}">preview</a>"#,
                    url_path(&a.path)
                )
            } else {
                String::new()
            };
            t.push_str(&format!(
                r#"<tr><td class="mono">{path}</td><td class="num">{size}</td><td class="links"><a class="download-link" href="{base}/artifacts/{url}" download>download</a> {preview}</td></tr>"#,
                path = esc(&a.path),
                size = a.size.map_or_else(html::dash, size_text),
                url = url_path(&a.path),
            ));
        }
        t.push_str("</tbody></table></div>");
        t
    };
    let body = [
        card("run", "Run", &facts_html),
        card("metrics", "Metrics", &metrics_html),
        card(
            "params",
            "Params",
            &kv_table("params-table", &params, "No params."),
        ),
        card("artifacts", "Artifacts", &artifacts_html),
        card("tags", "Tags", &kv_table("tags-table", &tags, "No tags.")),
    ]
    .concat();
    let sub = match &exp_name {
        Some(n) => format!(
            r#"<a href="/experiments">Experiments</a> / <a href="/experiments/{}">{}</a> / run <span class="mono">{}</span>"#,
            url_part(n),
            esc(n),
            esc(&info.run_id)
        ),
        None => format!(r#"run <span class="mono">{}</span>"#, esc(&info.run_id)),
    };
    Ok(layout(
        &state.chrome(),
        Nav::Experiments,
        &format!("Run {}", info.run_name),
        &sub,
        &body,
    ))
}

/// `12.3 KiB` style sizes.
pub(crate) fn size_text(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    }
}

fn load_artifact(state: &AppState, run_id: &str, path: &str) -> Result<Vec<u8>, Fail> {
    let (_, run) = open_run(state, run_id)?;
    run.load_artifact_bytes(path).map_err(|e| match Fail::record(e) {
        Fail::NotFound(_) => Fail::NotFound(format!(
            "run {run_id} has no artifact {path:?} (paths stay inside the run's artifact folder)"
        )),
        other => other,
    })
}

fn render_preview(state: &AppState, run_id: &str, path: &str) -> Result<String, Fail> {
    let bytes = load_artifact(state, run_id, path)?;
    let base = format!("/runs/{}", url_part(run_id));
    let body = if path.to_ascii_lowercase().ends_with(".parquet") {
        let p = crate::preview::parquet(&bytes, PREVIEW_ROWS)
            .map_err(|e| Fail::BadRequest(format!("{path} is not a readable Parquet file: {e}")))?;
        let mut head = String::new();
        for (name, ty) in &p.columns {
            head.push_str(&format!(
                r#"<th title="{}">{}<br><span class="muted">{}</span></th>"#,
                esc(ty),
                esc(name),
                esc(&cut(ty, 24))
            ));
        }
        let mut rows = String::new();
        for r in &p.rows {
            rows.push_str("<tr>");
            for (v, numeric) in r.iter().zip(&p.numeric) {
                let cls = if *numeric { r#" class="num""# } else { "" };
                rows.push_str(&format!("<td{cls}>{}</td>", esc(v)));
            }
            rows.push_str("</tr>");
        }
        let meta = format!(
            r#"<p class="meta">{} rows × {} columns; the first {} shown.</p>"#,
            count(p.total_rows),
            p.columns.len(),
            count(p.rows.len() as u64)
        );
        card(
            "preview",
            "Preview",
            &format!(
                r#"{meta}<div class="scroll"><table id="preview-table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"#
            ),
        )
    } else {
        let shown = &bytes[..bytes.len().min(PREVIEW_BYTES)];
        let mut text = String::from_utf8_lossy(shown).into_owned();
        if path.to_ascii_lowercase().ends_with(".json")
            && bytes.len() <= PREVIEW_BYTES
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
        {
            text = serde_json::to_string_pretty(&v).unwrap_or(text);
        }
        let more = if bytes.len() > PREVIEW_BYTES {
            format!(
                r#"<p class="meta">The first {} of {} shown.</p>"#,
                size_text(PREVIEW_BYTES as u64),
                size_text(bytes.len() as u64)
            )
        } else {
            String::new()
        };
        card(
            "preview",
            "Preview",
            &format!(
                r#"{more}<pre class="code" id="preview-text">{}</pre>"#,
                esc(&text)
            ),
        )
    };
    let sub = format!(
        r#"<a href="{base}">run <span class="mono">{}</span></a> / <span class="mono">{}</span> · <a href="{base}/artifacts/{}" download>download</a>"#,
        esc(run_id),
        esc(path),
        url_path(path)
    );
    Ok(layout(
        &state.chrome(),
        Nav::Experiments,
        &format!("Artifact {path}"),
        &sub,
        &body,
    ))
}

/// `GET /experiments`.
pub(crate) async fn experiments(State(state): State<Arc<AppState>>) -> Response {
    render(state, Nav::Experiments, render_experiments).await
}

/// `GET /experiments/{name}`.
pub(crate) async fn experiment(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    render(state, Nav::Experiments, move |st| {
        render_experiment(st, &name)
    })
    .await
}

/// `GET /runs/{run_id}`.
pub(crate) async fn run(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
) -> Response {
    render(state, Nav::Experiments, move |st| render_run(st, &run_id)).await
}

/// `GET /runs/{run_id}/preview/{*path}`.
pub(crate) async fn preview(
    State(state): State<Arc<AppState>>,
    Path((run_id, path)): Path<(String, String)>,
) -> Response {
    render(state, Nav::Experiments, move |st| {
        render_preview(st, &run_id, &path)
    })
    .await
}

/// `GET /runs/{run_id}/artifacts/{*path}`: the file, as a download that never renders in
/// the dashboard's origin (an HTML artifact could otherwise run script here).
pub(crate) async fn artifact(
    State(state): State<Arc<AppState>>,
    Path((run_id, path)): Path<(String, String)>,
) -> Response {
    let p = path.clone();
    match blocking(&state, move |st| load_artifact(st, &run_id, &p)).await {
        Ok(bytes) => {
            let name: String = path
                .rsplit('/')
                .next()
                .unwrap_or("artifact")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let mut resp = (StatusCode::OK, bytes).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            );
            resp
        }
        Err(fail) => fail_response(&state, Nav::Experiments, &fail),
    }
}

/// Standard base64, for the CSP hashes of the report's inline scripts.
fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The report page's policy: its own inline styles, and exactly its own inline scripts
/// (by hash), nothing else.
fn report_csp(doc: &str) -> String {
    let mut hashes = String::new();
    let mut rest = doc;
    while let Some(start) = rest.find("<script>") {
        let after = &rest[start + "<script>".len()..];
        let Some(end) = after.find("</script>") else {
            break;
        };
        let digest = Sha256::digest(&after.as_bytes()[..end]);
        hashes.push_str(&format!(" 'sha256-{}'", base64(&digest)));
        rest = &after[end..];
    }
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src{}; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        if hashes.is_empty() {
            " 'none'"
        } else {
            &hashes
        }
    )
}

/// `GET /experiments/{name}/report`: the study report, as `qtask report` writes it.
pub(crate) async fn report(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    let n = name.clone();
    let built = blocking(&state, move |st| {
        let store = st.runs.get()?;
        find(&store, &n)?;
        let source = st.reports.clone().ok_or_else(|| {
            Fail::NotFound("study reports are not available in this server".into())
        })?;
        let data = source
            .report(&store, &n)
            .map_err(|e| Fail::Internal(format!("cannot build the report of {n:?}: {e}")))?;
        Ok(qtask_report::render(&data))
    })
    .await;
    match built {
        Ok(doc) => {
            let back = format!(
                r#"<p style="margin:0 0 4px;font-size:13px"><a href="/experiments/{}">← experiment {}</a> · <a href="/">qtask ui</a></p>"#,
                url_part(&name),
                esc(&name)
            );
            let doc = doc.replacen("<main>", &format!("<main>{back}"), 1);
            let csp = report_csp(&doc);
            let mut resp = html_response(StatusCode::OK, doc);
            if let Ok(v) = HeaderValue::from_str(&csp) {
                resp.headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, v);
            }
            resp
        }
        Err(fail) => fail_response(&state, Nav::Experiments, &fail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn report_csp_allows_exactly_its_scripts() {
        let csp = report_csp("<html><script>a()</script><p>x</p><script>b()</script>");
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
        let scripts = csp
            .split("script-src")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        assert!(
            !scripts.contains("unsafe-inline"),
            "scripts are by hash: {csp}"
        );
        assert!(report_csp("<p>no script</p>").contains("script-src 'none'"));
    }
}
