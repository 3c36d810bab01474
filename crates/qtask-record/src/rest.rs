//! An MLflow tracking server over its REST API 2.0, artifacts through its artifact proxy
//! (`mlflow server --serve-artifacts`, the default since MLflow 2.0).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::backend::{Backend, Batch, latest_of};
use crate::error::{RecordError, Result};
use crate::file::FileStore;
use crate::types::{ArtifactEntry, ExperimentInfo, Metric, RunInfo, RunStatus};
use crate::uri::percent_encode;
use crate::validate;

/// How long to wait for a TCP connection: an unreachable server must fail fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for one request (large artifacts included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// MLflow's `SEARCH_MAX_RESULTS_THRESHOLD`-safe page size.
const PAGE: usize = 1000;

/// A client of one MLflow tracking server.
#[derive(Debug, Clone)]
pub struct RestStore {
    base: String,
    agent: ureq::Agent,
    auth: Option<String>,
}

impl RestStore {
    /// A client for the server at `base` (`http://host:port`, optionally with a path prefix).
    /// Credentials come from `MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` and
    /// `MLFLOW_TRACKING_PASSWORD`, as in MLflow's own client. Nothing is sent until first use.
    pub fn new(base: &str) -> RestStore {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let auth = match (
            env("MLFLOW_TRACKING_TOKEN"),
            env("MLFLOW_TRACKING_USERNAME"),
            env("MLFLOW_TRACKING_PASSWORD"),
        ) {
            (Some(token), _, _) => Some(format!("Bearer {token}")),
            (None, Some(user), Some(password)) => Some(format!(
                "Basic {}",
                base64(format!("{user}:{password}").as_bytes())
            )),
            _ => None,
        };
        RestStore {
            base: base.trim_end_matches('/').to_string(),
            agent,
            auth,
        }
    }

    /// Sends one request; returns the status and body, or `Unreachable` when no answer came.
    fn send(&self, method: &str, url: &str, body: Option<(&str, &[u8])>) -> Result<(u16, Vec<u8>)> {
        let unreachable = |e: ureq::Error| RecordError::Unreachable {
            url: url.to_string(),
            message: e.to_string(),
        };
        let response = match method {
            "GET" => {
                let mut req = self.agent.get(url);
                if let Some(a) = &self.auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            _ => {
                let mut req = if method == "PUT" {
                    self.agent.put(url)
                } else {
                    self.agent.post(url)
                };
                if let Some(a) = &self.auth {
                    req = req.header("Authorization", a);
                }
                let (content_type, bytes) = body.unwrap_or(("application/json", b"{}"));
                req.header("Content-Type", content_type).send(bytes)
            }
        }
        .map_err(unreachable)?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let bytes = body
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(unreachable)?;
        Ok((status, bytes))
    }

    /// An MLflow API call; error answers become [`RecordError::Server`].
    fn call(
        &self,
        method: &str,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        push_query(&mut url, query);
        let payload = body.map(|b| b.to_string());
        let (status, bytes) = self.send(
            method,
            &url,
            payload
                .as_deref()
                .map(|p| ("application/json", p.as_bytes())),
        )?;
        if status >= 400 {
            return Err(server_error(&url, status, &bytes));
        }
        if bytes.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&bytes).map_err(|e| RecordError::Protocol {
            url,
            message: format!("not JSON ({e})"),
        })
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value> {
        self.call("GET", endpoint, query, None)
    }

    fn post(&self, endpoint: &str, body: &Value) -> Result<Value> {
        self.call("POST", endpoint, &[], Some(body))
    }

    fn run_json(&self, run_id: &str) -> Result<Value> {
        validate::check_run_id(run_id)?;
        match self.get("runs/get", &[("run_id", run_id)]) {
            Err(RecordError::Server { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => {
                Err(RecordError::NoRun(run_id.to_string()))
            }
            other => other.map(|v| v["run"].clone()),
        }
    }

    /// `(url of the artifact folder, local path)` of a run's artifact root.
    fn artifact_base(&self, run: &RunInfo) -> Result<ArtifactRoot> {
        let uri = &run.artifact_uri;
        if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
            // `mlflow-artifacts:/1/<run>/artifacts` or `mlflow-artifacts://host:port/1/...`.
            let path = match rest.strip_prefix("//") {
                Some(after) => after.find('/').map_or("", |i| &after[i..]),
                None => rest,
            };
            let path = path.trim_matches('/');
            return Ok(ArtifactRoot::Proxy(format!(
                "{}/api/2.0/mlflow-artifacts/artifacts/{}",
                self.base,
                percent_encode(path, true)
            )));
        }
        if uri.starts_with("file:") {
            // The server writes artifacts to a local folder: usable when it is shared with us.
            return Ok(ArtifactRoot::Local);
        }
        Err(RecordError::Invalid(format!(
            "run {}: artifact location `{uri}` is neither served by the tracking server nor local; \
             start the server with --serve-artifacts (MLflow's default)",
            run.run_id
        )))
    }
}

enum ArtifactRoot {
    Proxy(String),
    Local,
}

fn push_query(url: &mut String, query: &[(&str, &str)]) {
    for (i, (k, v)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&percent_encode(k, false));
        url.push('=');
        url.push_str(&percent_encode(v, false));
    }
}

fn server_error(url: &str, status: u16, body: &[u8]) -> RecordError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let (code, message) = match parsed {
        Some(v) if v.get("error_code").is_some() || v.get("message").is_some() => (
            v["error_code"].as_str().unwrap_or("").to_string(),
            v["message"].as_str().unwrap_or("").to_string(),
        ),
        _ => {
            let text = String::from_utf8_lossy(body);
            let first: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            (String::new(), first.chars().take(200).collect())
        }
    };
    RecordError::Server {
        url: url.to_string(),
        status,
        code,
        message,
    }
}

fn protocol(what: &str) -> RecordError {
    RecordError::Protocol {
        url: String::new(),
        message: what.to_string(),
    }
}

/// An int64 field: MLflow sends numbers, protobuf's JSON mapping allows strings.
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A double field, including protobuf's `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn double(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

fn double_json(x: f64) -> Value {
    if x.is_nan() {
        json!("NaN")
    } else if x.is_infinite() {
        json!(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(x)
    }
}

fn string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn experiment_from(v: &Value) -> Result<ExperimentInfo> {
    let id = string(&v["experiment_id"]);
    if id.is_empty() {
        return Err(protocol("experiment without experiment_id"));
    }
    Ok(ExperimentInfo {
        id,
        name: string(&v["name"]),
        artifact_location: string(&v["artifact_location"]),
        lifecycle_stage: string(&v["lifecycle_stage"]),
        creation_time: int(&v["creation_time"]),
        last_update_time: int(&v["last_update_time"]),
    })
}

fn run_info_from(run: &Value) -> Result<RunInfo> {
    let info = &run["info"];
    let run_id = match string(&info["run_id"]) {
        s if s.is_empty() => string(&info["run_uuid"]),
        s => s,
    };
    if run_id.is_empty() {
        return Err(protocol("run without run_id"));
    }
    let status_text = string(&info["status"]);
    let status = status_text
        .parse::<RunStatus>()
        .map_err(|_| protocol(&format!("run {run_id} has unknown status `{status_text}`")))?;
    Ok(RunInfo {
        run_id,
        experiment_id: string(&info["experiment_id"]),
        run_name: string(&info["run_name"]),
        status,
        start_time: int(&info["start_time"]).unwrap_or(0),
        end_time: int(&info["end_time"]),
        artifact_uri: string(&info["artifact_uri"]),
        lifecycle_stage: string(&info["lifecycle_stage"]),
        user_id: string(&info["user_id"]),
    })
}

fn key_values(list: &Value) -> BTreeMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|kv| (string(&kv["key"]), string(&kv["value"])))
        .collect()
}

fn metric_from(v: &Value) -> Result<Metric> {
    Ok(Metric {
        key: string(&v["key"]),
        value: double(&v["value"]).ok_or_else(|| protocol("metric without a value"))?,
        timestamp: int(&v["timestamp"]).unwrap_or(0),
        step: int(&v["step"]).unwrap_or(0),
    })
}

fn pairs_json(pairs: &[(String, String)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

impl Backend for RestStore {
    fn uri(&self) -> String {
        self.base.clone()
    }

    fn experiment_by_name(&self, name: &str) -> Result<Option<ExperimentInfo>> {
        match self.get("experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(v) => experiment_from(&v["experiment"]).map(Some),
            Err(RecordError::Server { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn get_or_create_experiment(&self, name: &str) -> Result<ExperimentInfo> {
        validate::check_experiment_name(name)?;
        let deleted = |found: ExperimentInfo| RecordError::ExperimentDeleted {
            name: found.name,
            id: found.id,
            hint: "; restore it (`mlflow experiments restore`) or purge it (`mlflow gc`)".into(),
        };
        if let Some(found) = self.experiment_by_name(name)? {
            return if found.lifecycle_stage == "active" {
                Ok(found)
            } else {
                Err(deleted(found))
            };
        }
        match self.post("experiments/create", &json!({"name": name})) {
            Ok(_) => {}
            // Another client created it between our lookup and our create: use theirs.
            Err(RecordError::Server { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => {}
            Err(e) => return Err(e),
        }
        match self.experiment_by_name(name)? {
            Some(found) if found.lifecycle_stage == "active" => Ok(found),
            Some(found) => Err(deleted(found)),
            None => Err(RecordError::NoExperiment(name.to_string())),
        }
    }

    fn list_experiments(&self) -> Result<Vec<ExperimentInfo>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"max_results": PAGE, "view_type": "ACTIVE_ONLY"});
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let page = self.post("experiments/search", &body)?;
            for e in page["experiments"].as_array().into_iter().flatten() {
                out.push(experiment_from(e)?);
            }
            match page["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| {
            b.creation_time
                .cmp(&a.creation_time)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<()> {
        self.post(
            "experiments/delete",
            &json!({"experiment_id": experiment_id}),
        )
        .map(|_| ())
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> Result<RunInfo> {
        let body = json!({
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": start_time,
            "user_id": crate::file::user_id(),
            "tags": pairs_json(tags),
        });
        let v = self.post("runs/create", &body)?;
        run_info_from(&v["run"])
    }

    fn get_run(&self, run_id: &str) -> Result<RunInfo> {
        run_info_from(&self.run_json(run_id)?)
    }

    fn delete_run(&self, run: &RunInfo) -> Result<()> {
        self.post("runs/delete", &json!({"run_id": run.run_id}))
            .map(|_| ())
    }

    fn update_run(
        &self,
        run: &RunInfo,
        status: RunStatus,
        end_time: Option<i64>,
    ) -> Result<RunInfo> {
        let mut body = json!({"run_id": run.run_id, "status": status.as_str()});
        if let Some(t) = end_time {
            body["end_time"] = json!(t);
        }
        self.post("runs/update", &body)?;
        // The server keeps an old end time when none is sent (a resumed run): report the
        // state it actually holds.
        self.get_run(&run.run_id)
    }

    fn log_batch(&self, run: &RunInfo, batch: &Batch) -> Result<()> {
        let metrics: Vec<Value> = batch
            .metrics
            .iter()
            .map(|m| {
                json!({"key": m.key, "value": double_json(m.value), "timestamp": m.timestamp, "step": m.step})
            })
            .collect();
        let body = json!({
            "run_id": run.run_id,
            "metrics": metrics,
            "params": pairs_json(&batch.params),
            "tags": pairs_json(&batch.tags),
        });
        self.post("runs/log-batch", &body).map(|_| ())
    }

    fn params(&self, run: &RunInfo) -> Result<BTreeMap<String, String>> {
        Ok(key_values(&self.run_json(&run.run_id)?["data"]["params"]))
    }

    fn tags(&self, run: &RunInfo) -> Result<BTreeMap<String, String>> {
        Ok(key_values(&self.run_json(&run.run_id)?["data"]["tags"]))
    }

    fn latest_metrics(&self, run: &RunInfo) -> Result<Vec<Metric>> {
        let v = self.run_json(&run.run_id)?;
        let metrics: Result<Vec<Metric>> = v["data"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(metric_from)
            .collect();
        Ok(latest_of(metrics?))
    }

    fn metric_history(&self, run: &RunInfo, key: &str) -> Result<Vec<Metric>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("run_id", run.run_id.as_str()), ("metric_key", key)];
            if let Some(t) = &token {
                query.push(("page_token", t));
            }
            let page = self.get("metrics/get-history", &query)?;
            for m in page["metrics"].as_array().into_iter().flatten() {
                out.push(metric_from(m)?);
            }
            match page["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    fn search_runs(&self, experiment_id: &str, status: Option<RunStatus>) -> Result<Vec<RunInfo>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({
                "experiment_ids": [experiment_id],
                "run_view_type": "ACTIVE_ONLY",
                "max_results": PAGE,
                "order_by": ["attributes.start_time DESC"],
            });
            if let Some(s) = status {
                body["filter"] = json!(format!("attributes.status = '{}'", s.as_str()));
            }
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let page = self.post("runs/search", &body)?;
            for r in page["runs"].as_array().into_iter().flatten() {
                out.push(run_info_from(r)?);
            }
            match page["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        crate::backend::sort_newest_first(&mut out);
        Ok(out)
    }

    fn put_artifact(&self, run: &RunInfo, path: &str, bytes: &[u8]) -> Result<()> {
        let path = validate::artifact_path(path)?;
        match self.artifact_base(run)? {
            ArtifactRoot::Local => FileStore::detached().put_artifact(run, &path, bytes),
            ArtifactRoot::Proxy(base) => {
                let url = format!("{base}/{}", percent_encode(&path, true));
                let (status, body) =
                    self.send("PUT", &url, Some(("application/octet-stream", bytes)))?;
                if status >= 400 {
                    return Err(server_error(&url, status, &body));
                }
                Ok(())
            }
        }
    }

    fn get_artifact(&self, run: &RunInfo, path: &str) -> Result<Vec<u8>> {
        let path = validate::artifact_path(path)?;
        match self.artifact_base(run)? {
            ArtifactRoot::Local => FileStore::detached().get_artifact(run, &path),
            ArtifactRoot::Proxy(base) => {
                let url = format!("{base}/{}", percent_encode(&path, true));
                let (status, body) = self.send("GET", &url, None)?;
                match status {
                    200..=299 => Ok(body),
                    404 => Err(RecordError::NoArtifact {
                        run_id: run.run_id.clone(),
                        path,
                    }),
                    _ => Err(server_error(&url, status, &body)),
                }
            }
        }
    }

    fn list_artifacts(&self, run: &RunInfo, dir: Option<&str>) -> Result<Vec<ArtifactEntry>> {
        let dir = dir.map(validate::artifact_path).transpose()?;
        match self.artifact_base(run)? {
            ArtifactRoot::Local => FileStore::detached().list_artifacts(run, dir.as_deref()),
            ArtifactRoot::Proxy(_) => {
                let root = run
                    .artifact_uri
                    .strip_prefix("mlflow-artifacts:")
                    .map(|r| match r.strip_prefix("//") {
                        Some(after) => after.find('/').map_or("", |i| &after[i..]),
                        None => r,
                    })
                    .unwrap_or("")
                    .trim_matches('/')
                    .to_string();
                let listed = match &dir {
                    Some(d) => format!("{root}/{d}"),
                    None => root,
                };
                let mut url = format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base);
                push_query(&mut url, &[("path", &listed)]);
                let (status, body) = self.send("GET", &url, None)?;
                if status >= 400 {
                    return Err(server_error(&url, status, &body));
                }
                let v: Value =
                    serde_json::from_slice(&body).map_err(|e| RecordError::Protocol {
                        url: url.clone(),
                        message: format!("not JSON ({e})"),
                    })?;
                let prefix = dir.map(|d| format!("{d}/")).unwrap_or_default();
                let mut out: Vec<ArtifactEntry> = v["files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        let is_dir = f["is_dir"].as_bool().unwrap_or(false);
                        ArtifactEntry {
                            path: format!("{prefix}{}", string(&f["path"])),
                            is_dir,
                            size: if is_dir {
                                None
                            } else {
                                int(&f["file_size"]).map(|s| s as u64)
                            },
                        }
                    })
                    .collect();
                out.sort_by(|a, b| a.path.cmp(&b.path));
                Ok(out)
            }
        }
    }
}

/// Standard base64 (for HTTP basic auth).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn protobuf_json_numbers_are_read() {
        assert_eq!(int(&json!("1700000000000")), Some(1_700_000_000_000));
        assert!(double(&json!("NaN")).unwrap().is_nan());
        assert_eq!(double(&json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(double_json(f64::INFINITY), json!("Infinity"));
        assert_eq!(double_json(0.5), json!(0.5));
    }

    #[test]
    fn server_errors_keep_mlflows_code_and_message() {
        let body = br#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "bad key"}"#;
        let e = server_error("http://h/api", 400, body).to_string();
        assert_eq!(
            e,
            "MLflow tracking server http://h/api: HTTP 400 INVALID_PARAMETER_VALUE: bad key"
        );
        let e = server_error("http://h/api", 502, b"<html>\n Bad   gateway</html>").to_string();
        assert!(e.ends_with("HTTP 502 : <html> Bad gateway</html>"), "{e}");
    }

    #[test]
    fn unreachable_server_is_one_clear_error() {
        // Port 1 on localhost: nothing listens there, the connection is refused at once.
        let store = RestStore::new("http://127.0.0.1:1");
        let err = store.list_experiments().unwrap_err();
        assert!(matches!(err, RecordError::Unreachable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("cannot reach MLflow tracking server at http://127.0.0.1:1/api/2.0/mlflow/experiments/search"),
            "{text}"
        );
    }
}
