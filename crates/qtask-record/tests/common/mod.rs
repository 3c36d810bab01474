//! Shared test helpers: the Python interpreter, a real `mlflow server`, the common checks.

#![allow(dead_code)]

pub mod conformance;
pub mod readback;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when the tests that need MLflow (Python package, server) are enabled; otherwise `test`
/// reports itself skipped (or fails where CI requires the suite).
pub fn mlflow_enabled(test: &str) -> bool {
    qtask_testkit::enabled(qtask_testkit::Suite::Mlflow, test).is_some()
}

/// The Python interpreter with MLflow (`QTASK_PYTHON`, default `python3`).
pub fn python() -> String {
    std::env::var("QTASK_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a Python script (given on stdin) with `args`; returns its stdout parsed as JSON.
pub fn run_python(script: &str, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    use std::io::Write;
    let mut cmd = Command::new(python());
    cmd.arg("-").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("python printed no JSON ({e}): {stdout}"))
}

/// A real `mlflow server` on 127.0.0.1 with a SQLite backend and artifact serving, stopped
/// when dropped.
pub struct MlflowServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
    /// Where the server keeps artifacts.
    pub artifacts: PathBuf,
}

impl MlflowServer {
    /// Starts the server and waits until it answers (at most 120 s).
    pub fn start() -> MlflowServer {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let artifacts = dir.path().join("artifacts");
        let db = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(python())
            .args(["-m", "mlflow", "server", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args(["--backend-store-uri", &db, "--artifacts-destination"])
            .arg(&artifacts)
            .args(["--workers", "1"])
            // Its own process group: MLflow starts uvicorn and job consumers as children,
            // which must all stop with the server.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mlflow server");
        let url = format!("http://127.0.0.1:{port}");
        let mut server = MlflowServer {
            child,
            url,
            _dir: dir,
            artifacts,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let addr = self.url.trim_start_matches("http://").to_string();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self._dir.path().join("server.log"))
                    .unwrap_or_default();
                panic!("mlflow server exited ({status}): {log}");
            }
            if std::net::TcpStream::connect(&addr).is_ok() {
                // The port opens before the app is loaded: probe the API itself.
                let store = qtask_record::RecordStore::open(&self.url).unwrap();
                if store.experiments().is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "mlflow server did not start");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        // The group id is the server's pid (process_group(0)); SIGTERM lets MLflow stop its
        // children, SIGKILL then ends whatever is left of that group.
        let group = format!("-{}", self.child.id());
        let signal = |sig: &str| {
            let _ = Command::new("kill")
                .args([sig, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        signal("-KILL");
        let _ = self.child.wait();
    }
}

/// A file listing relative to `root` (for layout assertions).
pub fn rel_files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}
