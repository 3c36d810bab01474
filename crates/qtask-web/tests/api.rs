//! The dashboard over HTTP: API figures against the pool's own, actions and their guards,
//! 404s, escaping, artifact paths.

mod common;

use std::sync::Arc;

use arrow_array::{Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use common::{Web, get, mixed_pool, request};
use qtask_pool::{Query, Status};
use qtask_record::{RecordStore, RunStatus};
use serde_json::{Value, json};

const TOKEN: &str = "s3cret-token";

fn bearer() -> String {
    format!("Authorization: Bearer {TOKEN}")
}

#[test]
fn counts_and_task_lists_are_the_pools_own() {
    let mut web = Web::new();
    let p = web.pool("study");
    let failed = mixed_pool(&*p);
    let q = web.pool("other");
    q.create_tasks(&[json!({"x": 1})], &Default::default())
        .unwrap();
    let addr = web.start(|_| {});

    let pools = get(addr, "/api/pools").json();
    let names: Vec<&str> = pools
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pool"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other", "study"]);
    let study = &pools[1];
    let expected: serde_json::Map<String, Value> = p
        .task_stat(&Query::all())
        .unwrap()
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    assert_eq!(study["counts"], Value::Object(expected));
    assert_eq!(study["total"], 8);
    assert_eq!(study["expired_leases"], 0);
    let waiting = p.query(&Query::all().with_status(Status::Waiting)).unwrap();
    assert_eq!(study["oldest_waiting"]["_id"], json!(waiting[0].id));

    // Task lists are `qtask manage query --json`'s documents, in insertion order.
    for status in ["failed", "waiting", "done", "running"] {
        let got = get(addr, &format!("/api/pools/study/tasks?status={status}")).json();
        let want: Vec<Value> = p
            .query(&Query::all().with_status(status.parse().unwrap()))
            .unwrap()
            .iter()
            .map(|t| t.to_document())
            .collect();
        assert_eq!(got, Value::Array(want), "{status}");
    }
    let all = get(addr, "/api/pools/study/tasks").json();
    assert_eq!(all.as_array().unwrap().len(), 8);
    let page = get(
        addr,
        "/api/pools/study/tasks?sort=created&order=desc&limit=2&offset=1",
    )
    .json();
    let ids: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["_id"].as_str().unwrap())
        .collect();
    let all_ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [all_ids[6], all_ids[5]]);

    let one = get(addr, &format!("/api/pools/study/tasks/{}", failed[0])).json();
    assert_eq!(one["status"], "failed");
    assert_eq!(one["error"], "ValueError: boom <b>0</b>");
    assert_eq!(one["max_attempts"], 1);

    for (path, code) in [
        ("/api/pools/nope", 404),
        ("/api/pools/nope/tasks", 404),
        ("/api/pools/study/tasks/999999", 404),
        ("/api/pools/study/tasks?status=finished", 400),
        ("/api/nothing", 404),
    ] {
        let r = get(addr, path);
        assert_eq!(r.status, code, "{path}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{path}");
    }
}

#[test]
fn actions_need_the_token_and_change_nothing_without_it() {
    let mut web = Web::new();
    let p = web.pool("p");
    let failed = mixed_pool(&*p);
    let addr = web.start(|c| c.token = Some(TOKEN.into()));
    let id = &failed[0];
    let retry = format!("/api/pools/p/tasks/{id}/retry");
    let before = p.re_query(id).unwrap();

    let r = request(addr, "POST", &retry, &[], "");
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = request(addr, "POST", &retry, &["Authorization: Bearer wrong"], "");
    assert_eq!(r.status, 401);
    let r = request(
        addr,
        "POST",
        &retry,
        &[&format!("Authorization: Bearer {TOKEN}x")],
        "",
    );
    assert_eq!(r.status, 401);
    // Another origin, even with the token.
    let r = request(
        addr,
        "POST",
        &retry,
        &[&bearer(), "Origin: http://evil.example"],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = request(
        addr,
        "POST",
        &retry,
        &[&bearer(), "Sec-Fetch-Site: cross-site"],
        "",
    );
    assert_eq!(r.status, 403);
    // Actions are POST only.
    assert_eq!(get(addr, &retry).status, 405);
    for action in ["reset", "prioritize", "remove"] {
        let r = request(
            addr,
            "POST",
            &format!("/api/pools/p/tasks/{id}/{action}"),
            &[],
            r#"{"priority": 3}"#,
        );
        assert_eq!(r.status, 401, "{action}");
    }
    assert_eq!(p.re_query(id).unwrap(), before, "nothing changed");

    // With the token, from the page's own origin.
    let origin = format!("Origin: http://{addr}");
    let r = request(addr, "POST", &retry, &[&bearer(), &origin], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "waiting");
    let t = p.re_query(id).unwrap();
    assert_eq!((t.status, t.attempts), (Status::Waiting, 0));
    assert_eq!(
        t.error.as_deref(),
        Some("ValueError: boom <b>0</b>"),
        "error kept"
    );
    // Retrying a waiting task is a conflict, and says why.
    let r = request(addr, "POST", &retry, &[&bearer()], "");
    assert_eq!(r.status, 409);
    assert!(
        r.json()["error"].as_str().unwrap().contains("only failed"),
        "{}",
        r.text()
    );

    let r = request(
        addr,
        "POST",
        &format!("/api/pools/p/tasks/{id}/prioritize"),
        &[&bearer()],
        r#"{"priority": 7}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(p.re_query(id).unwrap().priority, Some(7));
    let r = request(
        addr,
        "POST",
        &format!("/api/pools/p/tasks/{id}/prioritize"),
        &[&bearer()],
        r#"{"priority": "high"}"#,
    );
    assert_eq!(r.status, 400);
    let r = request(
        addr,
        "POST",
        &format!("/api/pools/p/tasks/{id}/prioritize"),
        &[&bearer()],
        r#"{"priority": null}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(p.re_query(id).unwrap().priority, None);

    let running = p.query(&Query::all().with_status(Status::Running)).unwrap();
    let rid = &running[0].id;
    let r = request(
        addr,
        "POST",
        &format!("/api/pools/p/tasks/{rid}/reset"),
        &[&bearer()],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(p.re_query(rid).unwrap().status, Status::Waiting);
    let r = request(
        addr,
        "POST",
        &format!("/api/pools/p/tasks/{rid}/reset"),
        &[&bearer()],
        "",
    );
    assert_eq!(r.status, 409);

    let r = request(
        addr,
        "POST",
        &format!("/api/pools/p/tasks/{rid}/remove"),
        &[&bearer()],
        "",
    );
    assert_eq!(r.status, 200);
    assert!(p.re_query(rid).is_err());
    let r = request(
        addr,
        "POST",
        &format!("/api/pools/p/tasks/{rid}/remove"),
        &[&bearer()],
        "",
    );
    assert_eq!(r.status, 404);
    let r = request(
        addr,
        "POST",
        &format!("/api/pools/p/tasks/{id}/explode"),
        &[&bearer()],
        "",
    );
    assert_eq!(r.status, 404);
}

#[test]
fn read_only_refuses_every_action() {
    let mut web = Web::new();
    let p = web.pool("p");
    let failed = mixed_pool(&*p);
    let addr = web.start(|c| c.read_only = true);
    let r = request(
        addr,
        "POST",
        &format!("/api/pools/p/tasks/{}/retry", failed[0]),
        &[],
        "",
    );
    assert_eq!(r.status, 403);
    assert!(r.text().contains("read-only"));
    assert_eq!(p.re_query(&failed[0]).unwrap().status, Status::Failed);
    let page = get(addr, &format!("/pools/p/tasks/{}", failed[0])).text();
    assert!(
        page.contains("read-only") && !page.contains("act-retry"),
        "no buttons"
    );
}

#[test]
fn a_foreign_host_is_refused_on_loopback() {
    let mut web = Web::new();
    web.pool("p")
        .create_tasks(&[json!({"a": 1})], &Default::default())
        .unwrap();
    let addr = web.start(|_| {});
    // DNS rebinding: a page of another site whose name resolves to 127.0.0.1.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET /api/pools HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert_eq!(get(addr, "/api/pools").status, 200);
}

#[test]
fn pages_escape_user_content_and_missing_things_are_404_pages() {
    let mut web = Web::new();
    let p = web.pool("x<s>");
    let ids = p
        .create_tasks(
            &[json!({"note": "<script>document.title='pwned'</script>"})],
            &Default::default(),
        )
        .unwrap();
    let id = ids[0].id.clone().unwrap();
    RecordStore::open(&web.runs_uri).unwrap();
    let addr = web.start(|_| {});
    for path in [
        "/".to_string(),
        "/pools/x%3Cs%3E".to_string(),
        format!("/pools/x%3Cs%3E/tasks/{id}"),
    ] {
        let r = get(addr, &path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let html = r.text();
        assert!(
            !html.contains("<script>document"),
            "{path} holds live markup"
        );
        assert!(!html.contains("x<s>"), "{path}");
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .contains("script-src 'self'")
        );
    }
    let task_page = get(addr, &format!("/pools/x%3Cs%3E/tasks/{id}")).text();
    assert!(task_page.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"));

    for path in [
        "/pools/nope",
        "/pools/nope/tasks/1",
        "/pools/x%3Cs%3E/tasks/424242",
        "/pools/x%3Cs%3E/tasks/not-a-number",
        "/no/such/page",
        "/experiments/nope",
        "/runs/0123456789abcdef0123456789abcdef",
        "/runs/../../etc",
    ] {
        let r = get(addr, path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(r.text().contains("<h1>Not found</h1>"), "{path}");
    }
    assert_eq!(get(addr, "/pools/x%3Cs%3E?status=finished").status, 400);
    assert_eq!(get(addr, "/pools/x%3Cs%3E?page=0").status, 400);
}

fn parquet_bytes() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("instrument", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["SH600000", "<b>SZ000001</b>"])),
            Arc::new(Float64Array::from(vec![0.5, -1.25])),
        ],
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    buf
}

#[test]
fn runs_artifacts_stay_inside_the_run() {
    let mut web = Web::new();
    let store = RecordStore::open(&web.runs_uri).unwrap();
    let exp = store.experiment("study").unwrap();
    let mut run = exp.start_run(Some("window 1")).unwrap();
    run.log_params(&json!({"model": {"lr": 0.1}})).unwrap();
    run.log_metric("IC", 0.0412, 0).unwrap();
    run.save_artifact_bytes("pred.parquet", &parquet_bytes())
        .unwrap();
    run.save_json("task.json", &json!({"a": "<i>x</i>"}))
        .unwrap();
    run.save_artifact_bytes("page.html", b"<script>alert(1)</script>")
        .unwrap();
    run.end(RunStatus::Finished).unwrap();
    let mut other = exp.start_run(Some("window 2")).unwrap();
    other.log_params(&json!({"model": {"lr": 0.2}})).unwrap();
    other.end(RunStatus::Failed).unwrap();
    // A file next to the store that no artifact path may reach.
    std::fs::write(web.dir.path().join("secret.txt"), "secret").unwrap();
    let addr = web.start(|_| {});
    let id = run.id().to_string();

    let r = get(addr, &format!("/runs/{id}/artifacts/pred.parquet"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, parquet_bytes());
    assert!(
        r.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    let r = get(addr, &format!("/runs/{id}/artifacts/page.html"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("sandbox")
    );

    for path in [
        "../../../secret.txt",
        "..%2F..%2F..%2Fsecret.txt",
        "%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "sig/../../meta.yaml",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "missing.parquet",
    ] {
        for kind in ["artifacts", "preview"] {
            let r = get(addr, &format!("/runs/{id}/{kind}/{path}"));
            assert_eq!(r.status, 404, "{kind}/{path}: {}", r.text());
            assert!(!r.text().contains("secret\n") && !r.text().contains("artifact_uri:"));
        }
    }

    let preview = get(addr, &format!("/runs/{id}/preview/pred.parquet")).text();
    assert!(
        preview.contains("SH600000") && preview.contains("-1.250"),
        "{preview}"
    );
    assert!(preview.contains("&lt;b&gt;SZ000001&lt;/b&gt;"));
    let preview = get(addr, &format!("/runs/{id}/preview/task.json")).text();
    assert!(preview.contains("&lt;i&gt;x&lt;/i&gt;"));

    let runs = get(addr, "/api/experiments/study/runs").json();
    assert_eq!(runs.as_array().unwrap().len(), 2);
    let first = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == json!(id))
        .unwrap();
    assert_eq!(first["metrics"]["IC"], 0.0412);
    assert_eq!(first["params"]["model.lr"], "0.1");
    let exps = get(addr, "/api/experiments").json();
    assert!(
        exps.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "study")
    );
    let one = get(addr, &format!("/api/runs/{id}")).json();
    assert_eq!(one["artifacts"].as_array().unwrap().len(), 3);

    let page = get(addr, "/experiments/study").text();
    assert!(
        page.contains("model.lr"),
        "the param that differs is a column"
    );
    assert!(page.contains("window 1") && page.contains("0.04120"));
    let page = get(addr, &format!("/runs/{id}")).text();
    assert!(page.contains("pred.parquet") && page.contains("preview"));
    let r = get(addr, "/experiments/study/report");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("report of study"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("'sha256-") && !csp.contains("script-src 'unsafe-inline'"),
        "{csp}"
    );
    assert_eq!(get(addr, "/experiments/nope/report").status, 404);
}

#[test]
fn a_missing_store_file_is_unreachable_and_never_created() {
    let mut web = Web::new();
    let addr = web.start(|_| {});
    let r = get(addr, "/");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("Store unreachable"), "{}", r.text());
    assert_eq!(get(addr, "/api/pools").status, 503);
    assert!(!web.dir.path().join("qtask.db").exists());
    // The server keeps serving, and picks the store up once it exists.
    assert_eq!(get(addr, "/static/app.css").status, 200);
    web.pool("late")
        .create_tasks(&[json!({"a": 1})], &Default::default())
        .unwrap();
    let pools = get(addr, "/api/pools");
    assert_eq!(pools.status, 200);
    assert_eq!(pools.json()[0]["pool"], "late");
}
