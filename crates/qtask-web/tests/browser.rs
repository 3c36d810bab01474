//! The dashboard in a real headless Chromium, driven through chromedriver (WebDriver):
//! open `/` (which follows the store by itself), follow the pool, open its failed task, read the error, retry it with the token
//! and see it waiting again; a task whose definition holds a script leaves the page alone.
//!
//! Runs only with `QTASK_TEST_BROWSER=1` (needs Debian's `chromium` and `chromium-driver`);
//! otherwise it reports itself `SKIPPED` through `qtask-testkit` (or fails where
//! `QTASK_REQUIRE_SUITES` names the browser suite, as in CI). With `QTASK_UI_SCREENSHOTS=DIR` it
//! also saves PNG screenshots of the pages it visits there (the one in `docs/` came so).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Web, mixed_pool};
use fantoccini::{Client, ClientBuilder, Locator};
use qtask_pool::{CreateOptions, Status, TaskPool};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const TOKEN: &str = "browser-test-token";
const WAIT: Duration = Duration::from_secs(20);

/// chromedriver on a free port, killed on drop.
struct Driver(Child, u16);

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver (apt-get install chromium-driver)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < WAIT, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Saves a screenshot when `QTASK_UI_SCREENSHOTS` names a folder.
async fn shot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("QTASK_UI_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Waits until `css` holds `want` (pages reload after actions).
async fn wait_text(c: &Client, css: &str, want: &str) {
    let start = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && e.text().await.is_ok_and(|t| t.trim() == want)
        {
            return;
        }
        assert!(start.elapsed() < WAIT, "{css} never showed {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn journey(
    c: &Client,
    addr: SocketAddr,
    pool: &dyn TaskPool,
    nightly_pool: &dyn TaskPool,
    xss_id: &str,
) {
    let base = format!("http://{addr}");
    c.goto(&format!("{base}/")).await.unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(r#"tr[data-pool="study"] a.pool-link"#))
        .await
        .unwrap();
    assert_eq!(c.title().await.unwrap(), "Pools · qtask");
    shot(c, "ui-pools").await;
    // The page follows the store by itself: a task added elsewhere shows up in seconds.
    let nightly = r#"tr[data-pool="nightly"] td[data-status="waiting"]"#;
    assert_eq!(text_of(c, nightly).await, "2");
    nightly_pool
        .create_tasks(&[json!({"job": "late"})], &CreateOptions::default())
        .unwrap();
    wait_text(c, nightly, "3").await;
    let link = c
        .find(Locator::Css(r#"tr[data-pool="study"] a.pool-link"#))
        .await
        .unwrap();
    link.click().await.unwrap();

    // The pool page: a definition with a script is listed, as text.
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#tasks-table"))
        .await
        .unwrap();
    assert_eq!(c.title().await.unwrap(), "Pool study · qtask");
    shot(c, "ui-pool").await;
    c.find(Locator::Css("#status-tabs a.t-failed"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(
        c,
        "#tasks-table tbody tr:first-child td:nth-child(2)",
        "failed",
    )
    .await;
    let task_link = c
        .find(Locator::Css("#tasks-table a.task-link"))
        .await
        .unwrap();
    let failed_id = task_link.text().await.unwrap();
    task_link.click().await.unwrap();

    // The failed task: its error, shown as text (its `<b>` is not markup).
    let err = text_of(c, "#error-text").await;
    assert!(err.starts_with("ValueError: boom <b>"), "{err}");
    assert_eq!(text_of(c, "#task-facts .pill").await, "failed");
    assert!(
        c.find(Locator::Css("#error-text b")).await.is_err(),
        "the error text became markup"
    );

    // Retry without the token: refused, and the task stays failed.
    c.find(Locator::Css("#act-retry"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let t = text_of(c, "#action-result").await;
        if t.contains("token") {
            break;
        }
        assert!(start.elapsed() < WAIT, "no refusal shown: {t:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pool.re_query(&failed_id).unwrap().status, Status::Failed);

    // With the token: the task is waiting again, on the page and in the store.
    let input = c.find(Locator::Css("#token-input")).await.unwrap();
    input.send_keys(TOKEN).await.unwrap();
    c.find(Locator::Css("#token-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shot(c, "ui-task-failed").await;
    c.find(Locator::Css("#act-retry"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#task-facts .pill", "waiting").await;
    assert_eq!(pool.re_query(&failed_id).unwrap().status, Status::Waiting);
    shot(c, "ui-task-retried").await;

    // A definition holding a script: shown, never run.
    c.goto(&format!("{base}/pools/study/tasks/{xss_id}"))
        .await
        .unwrap();
    let def = text_of(c, "#def-json").await;
    assert!(
        def.contains("<script>document.title='pwned'</script>"),
        "{def}"
    );
    assert_eq!(c.title().await.unwrap(), format!("Task {xss_id} · qtask"));
    c.goto(&format!("{base}/pools/study?status=waiting"))
        .await
        .unwrap();
    text_of(c, "#tasks-table").await;
    assert_eq!(c.title().await.unwrap(), "Pool study · qtask");
}

#[test]
fn a_user_retries_a_failed_task_in_chromium() {
    if qtask_testkit::enabled(
        qtask_testkit::Suite::Browser,
        "a_user_retries_a_failed_task_in_chromium",
    )
    .is_none()
    {
        return;
    }
    let mut web = Web::new();
    let pool = web.pool("study");
    mixed_pool(&*pool);
    let defs: Vec<Value> = (0..24)
        .map(|i| {
            json!({"model": {"class": "LGBModel", "kwargs": {"learning_rate": 0.05 * (1 + i % 3) as f64}},
                   "dataset": {"kwargs": {"segments": {"test": [format!("20{:02}-01-01", 10 + i / 3), format!("20{:02}-12-31", 10 + i / 3)]}}}})
        })
        .collect();
    pool.create_tasks(&defs, &CreateOptions::default()).unwrap();
    let xss = pool
        .create_tasks(
            &[json!({"note": "<script>document.title='pwned'</script>"})],
            &CreateOptions::default(),
        )
        .unwrap();
    let xss_id = xss[0].id.clone().unwrap();
    let nightly = web.pool("nightly");
    nightly
        .create_tasks(
            &[json!({"job": "refresh"}), json!({"job": "backfill"})],
            &CreateOptions::default(),
        )
        .unwrap();
    let addr = web.start(|c| c.token = Some(TOKEN.into()));

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1400,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.1))
            .await
            .expect("chromedriver session");
        // Close the session whatever happens, then report.
        let outcome = tokio::spawn_local_free(journey(&c, addr, &*pool, &*nightly, &xss_id)).await;
        let _ = c.close().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Runs a future, catching a panic so the browser session can still be closed.
mod tokio {
    pub use ::tokio::*;

    pub async fn spawn_local_free<F: std::future::Future<Output = ()>>(
        f: F,
    ) -> Result<(), Box<dyn std::any::Any + Send>> {
        use std::panic::AssertUnwindSafe;
        CatchUnwind(Box::pin(AssertUnwindSafe(f))).await
    }

    struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

    impl<F: std::future::Future<Output = ()>> std::future::Future for CatchUnwind<F> {
        type Output = Result<(), Box<dyn std::any::Any + Send>>;

        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Self::Output> {
            let fut = self.0.as_mut();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx))) {
                Ok(std::task::Poll::Ready(())) => std::task::Poll::Ready(Ok(())),
                Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
                Err(p) => std::task::Poll::Ready(Err(p)),
            }
        }
    }
}
