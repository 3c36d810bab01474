//! Headless Chromium check that the report's charts are really laid out.
//!
//! Runs only with `QTASK_TEST_BROWSER=1` (needs `/usr/bin/chromium`); otherwise it returns
//! early with a skip note.

mod common;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("qtask-report-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs headless Chromium on `html_path` and returns the DOM it dumps after scripts ran.
fn dump_dom(html_path: &Path, profile: &Path, dom_path: &Path) -> String {
    let out = File::create(dom_path).unwrap();
    // stdout goes to a file: a DOM bigger than the pipe buffer would otherwise block Chromium.
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("file://{}", html_path.display()))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .expect("failed to start chromium");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    fs::read_to_string(dom_path).unwrap()
}

/// The value of attribute `name` in the opening tag of the element with `id`.
fn attribute_of(dom: &str, id: &str, name: &str) -> Option<String> {
    let at = dom.find(&format!(r#"id="{id}""#))?;
    let tag_start = dom[..at].rfind('<')?;
    let tag_end = at + dom[at..].find('>')?;
    let tag = &dom[tag_start..tag_end];
    let key = format!(r#"{name}=""#);
    let v = tag.find(&key)? + key.len();
    Some(tag[v..v + tag[v..].find('"')?].to_string())
}

#[test]
fn chromium_lays_out_all_three_charts() {
    if qtask_testkit::enabled(
        qtask_testkit::Suite::Browser,
        "chromium_lays_out_all_three_charts",
    )
    .is_none()
    {
        return;
    }
    let dir = TempDir::new("browser");
    let profile = dir.0.join("profile");
    fs::create_dir_all(&profile).unwrap();
    let html_path = dir.0.join("report.html");
    fs::write(&html_path, qtask_report::render(&common::realistic_data())).unwrap();

    let dom = dump_dom(&html_path, &profile, &dir.0.join("dom.html"));

    let body_at = dom.find("<body").expect("no body in dumped DOM");
    let body_tag = &dom[body_at..body_at + dom[body_at..].find('>').unwrap()];
    assert!(
        body_tag.contains(r#"data-charts="3""#),
        "body tag: {body_tag}"
    );
    for (id, drawn) in [
        ("chart-window-ic", "<rect"),
        ("chart-cum-ic", "<polyline"),
        ("chart-importance", "<rect"),
    ] {
        let svg = common::svg_by_id(&dom, id).unwrap_or_else(|| panic!("{id} missing from DOM"));
        assert!(svg.contains(drawn), "{id} has no {drawn}");
        let size =
            attribute_of(&dom, id, "data-rendered").unwrap_or_else(|| panic!("{id} not measured"));
        let (w, h) = size.split_once('x').unwrap();
        let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
        assert!(w > 0 && h > 0, "{id} rendered as {size}");
    }
}

#[test]
fn chromium_lays_out_every_backtest_chart() {
    if std::env::var("QTASK_TEST_BROWSER").as_deref() != Ok("1") {
        eprintln!(
            "skipping chromium_lays_out_every_backtest_chart: set QTASK_TEST_BROWSER=1 to run it"
        );
        return;
    }
    let days = common::business_days(300);
    let mut rng = common::Rng::new(7);
    let mut noise = |scale: f64| -> Vec<f64> {
        (0..days.len())
            .map(|_| (rng.next_f64() - 0.5) * scale)
            .collect()
    };
    let bt = qtask_report::BacktestSection {
        dates: days.clone(),
        returns: noise(0.02),
        costs: vec![0.0004; days.len()],
        bench: noise(0.015),
        turnover: noise(0.4).iter().map(|x| x.abs()).collect(),
        risk: Vec::new(),
        facts: vec![("Strategy".into(), "TopkDropoutStrategy".into())],
    };
    let sig = qtask_report::SignalSection {
        group_dates: days.clone(),
        group_returns: [
            "Group1",
            "Group2",
            "Group3",
            "Group4",
            "Group5",
            "long-short",
        ]
        .iter()
        .map(|g| (g.to_string(), noise(0.01)))
        .collect(),
        monthly_ic: (1..=12)
            .map(|m| (2017, m, (m as f64 - 6.0) / 100.0))
            .collect(),
        dates: days.clone(),
        rank_autocorr: noise(1.0),
        turnover_top: noise(1.0).iter().map(|x| x.abs()).collect(),
        turnover_bottom: noise(1.0).iter().map(|x| x.abs()).collect(),
    };
    let dir = TempDir::new("browser-bt");
    let profile = dir.0.join("profile");
    fs::create_dir_all(&profile).unwrap();
    let html_path = dir.0.join("report.html");
    fs::write(
        &html_path,
        qtask_report::render_backtest_page("backtest", &[], "now", &bt, Some(&sig)),
    )
    .unwrap();
    let dom = dump_dom(&html_path, &profile, &dir.0.join("dom.html"));
    let body_at = dom.find("<body").expect("no body in dumped DOM");
    let body_tag = &dom[body_at..body_at + dom[body_at..].find('>').unwrap()];
    assert!(
        body_tag.contains(r#"data-charts="8""#),
        "body tag: {body_tag}"
    );
    for id in [
        "chart-bt-cum-return",
        "chart-bt-excess",
        "chart-bt-drawdown",
        "chart-bt-turnover",
        "chart-sig-groups",
        "chart-sig-monthly-ic",
        "chart-sig-autocorr",
        "chart-sig-turnover",
    ] {
        let size =
            attribute_of(&dom, id, "data-rendered").unwrap_or_else(|| panic!("{id} not measured"));
        let (w, h) = size.split_once('x').unwrap();
        let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
        assert!(w > 0 && h > 0, "{id} rendered as {size}");
    }
}
