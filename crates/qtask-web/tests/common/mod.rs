//! A dashboard on a temporary store, and a plain HTTP/1.1 client that sends paths exactly as
//! written (no normalisation of `..`), for the tests.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use qtask_pool::{CreateOptions, FetchOptions, Query, Status, TaskPool};
use qtask_web::{Config, Running, Server};
use serde_json::{Value, json};

/// An HTTP response.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
    out
}

/// Sends one request; `headers` are extra lines (`Name: value`).
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[], "")
}

/// A dashboard on a fresh SQLite store and file runs store.
pub struct Web {
    pub dir: tempfile::TempDir,
    pub store: String,
    pub runs_uri: String,
    pub running: Option<Running>,
}

impl Web {
    pub fn new() -> Web {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite:{}", dir.path().join("qtask.db").display());
        let runs_uri = format!("file:{}", dir.path().join("mlruns").display());
        Web {
            dir,
            store,
            runs_uri,
            running: None,
        }
    }

    pub fn pool(&self, name: &str) -> Box<dyn TaskPool> {
        qtask_pool::open(&self.store, name).unwrap()
    }

    /// Starts the server with `edit` applied to the default settings.
    pub fn start(&mut self, edit: impl FnOnce(&mut Config)) -> SocketAddr {
        let mut config = Config::new(&self.store);
        config.tracking_uri = Some(self.runs_uri.clone());
        config.bind = "127.0.0.1:0".parse().unwrap();
        edit(&mut config);
        let report: Arc<dyn qtask_web::ReportSource> = Arc::new(
            |_: &qtask_record::RecordStore,
             exp: &str|
             -> Result<qtask_report::ReportData, qtask_web::BoxError> {
                Ok(qtask_report::ReportData {
                    title: format!("report of {exp}"),
                    experiment: exp.to_string(),
                    ..Default::default()
                })
            },
        );
        let running = Server::new(config, Some(report)).unwrap().start().unwrap();
        let addr = running.addr();
        self.running = Some(running);
        addr
    }
}

/// A pool with 3 waiting, 2 done, 2 failed (with error texts) and 1 running task; returns
/// the ids of the failed ones.
pub fn mixed_pool(p: &dyn TaskPool) -> Vec<String> {
    let defs: Vec<Value> = (0..8).map(|i| json!({"i": i, "model": "m"})).collect();
    p.create_tasks(
        &defs,
        &CreateOptions {
            max_attempts: Some(1),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    for _ in 0..2 {
        let c = p.fetch_task(&FetchOptions::default()).unwrap().unwrap();
        p.commit_task_res(&c.task.id, Some(&c.token), &json!({"ic": 0.05}), None)
            .unwrap();
    }
    let mut failed = Vec::new();
    for k in 0..2 {
        let c = p.fetch_task(&FetchOptions::default()).unwrap().unwrap();
        let st = p
            .fail_task(
                &c.task.id,
                &c.token,
                &format!("ValueError: boom <b>{k}</b>"),
            )
            .unwrap();
        assert_eq!(st, Status::Failed);
        failed.push(c.task.id);
    }
    p.fetch_task(&FetchOptions::default()).unwrap().unwrap();
    let stat = p.task_stat(&Query::all()).unwrap();
    assert_eq!(stat.values().sum::<u64>(), 8);
    failed
}
