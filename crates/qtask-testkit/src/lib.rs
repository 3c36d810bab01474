//! Test support shared by qtask's test suites.
//!
//! Some suites need a server or a tool that a machine may not have (PostgreSQL, MongoDB, an
//! MLflow install, pandas, Chromium). Such a suite asks [`enabled`] whether it may run: when
//! its variable is unset it writes `SKIPPED ...` straight to the terminal (past the test
//! harness's output capture, so every test run shows it) and returns `None`; when
//! `QTASK_REQUIRE_SUITES` names the suite (CI sets it), a missing variable fails the test
//! instead, so a suite CI means to run can never be skipped there unnoticed.
//!
//! Backend conformance suites run through [`run_checks`]: one test per check, listed once
//! where the checks are written (see the pool's `checks!`), reported as `ignored` with the
//! reason when the backend is not configured.

#![warn(missing_docs)]

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

/// A named check of a conformance suite, run against a store URL.
pub type Check = (&'static str, fn(&str));

/// The variable listing the suites that must run (comma-separated names, or `all`).
pub const REQUIRE_VAR: &str = "QTASK_REQUIRE_SUITES";

/// An optional suite: what switches it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// PostgreSQL pools: `QTASK_TEST_POSTGRES` holds a server URL.
    Postgres,
    /// MongoDB pools: `QTASK_TEST_MONGODB` holds a server URL.
    Mongodb,
    /// Real MLflow reading and writing runs: `QTASK_TEST_MLFLOW=1`.
    Mlflow,
    /// pandas reading qtask's Parquet: `QTASK_TEST_PANDAS=1`.
    Pandas,
    /// Pages rendered in headless Chromium: `QTASK_TEST_BROWSER=1`.
    Browser,
    /// XGBoost's library (from its Python wheel) training XGBModel: `QTASK_TEST_XGBOOST=1`.
    Xgboost,
}

impl Suite {
    /// The suite's name in `QTASK_REQUIRE_SUITES`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Postgres => "postgres",
            Suite::Mongodb => "mongodb",
            Suite::Mlflow => "mlflow",
            Suite::Pandas => "pandas",
            Suite::Browser => "browser",
            Suite::Xgboost => "xgboost",
        }
    }

    /// The variable that switches the suite on.
    pub fn var(self) -> &'static str {
        match self {
            Suite::Postgres => "QTASK_TEST_POSTGRES",
            Suite::Mongodb => "QTASK_TEST_MONGODB",
            Suite::Mlflow => "QTASK_TEST_MLFLOW",
            Suite::Pandas => "QTASK_TEST_PANDAS",
            Suite::Browser => "QTASK_TEST_BROWSER",
            Suite::Xgboost => "QTASK_TEST_XGBOOST",
        }
    }

    /// What the variable must hold: a server URL, or `1`.
    fn wants_url(self) -> bool {
        matches!(self, Suite::Postgres | Suite::Mongodb)
    }

    /// The variable's value when it switches the suite on.
    fn setting(self) -> Option<String> {
        let v = std::env::var(self.var()).ok()?;
        let on = if self.wants_url() {
            !v.trim().is_empty()
        } else {
            v == "1"
        };
        on.then_some(v)
    }

    /// Whether `QTASK_REQUIRE_SUITES` names this suite.
    pub fn required(self) -> bool {
        std::env::var(REQUIRE_VAR).is_ok_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|s| s == "all" || s == self.name())
        })
    }

    /// Why the suite is not running, for people.
    fn reason(self) -> String {
        if self.wants_url() {
            format!("set {} to a server URL to run it", self.var())
        } else {
            format!("set {}=1 to run it", self.var())
        }
    }
}

/// Writes a line to the terminal's stderr, past the harness's capture of `eprintln!`.
fn notice(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

/// The suite's setting (a server URL, or `1`) when it is switched on. Otherwise: `None` after
/// a visible `SKIPPED` line naming `test`, or a panic when the suite is required.
pub fn enabled(suite: Suite, test: &str) -> Option<String> {
    if let Some(v) = suite.setting() {
        return Some(v);
    }
    assert!(
        !suite.required(),
        "{test}: the {} suite is required ({REQUIRE_VAR}) but {} is not set",
        suite.name(),
        suite.var()
    );
    notice(&format!(
        "SKIPPED {test} ({} suite): {}",
        suite.name(),
        suite.reason()
    ));
    None
}

/// Runs `checks` against the store at the suite's URL as one test each (a libtest-compatible
/// harness: filters and `--list` work). Without a URL the checks are
/// reported `ignored` with the reason, or fail when the suite is required. Call it from the
/// `main` of a `harness = false` test target.
pub fn run_checks(suite: Suite, checks: &[Check]) -> ExitCode {
    let args = Arguments::from_args();
    quiet_panics();
    let url = suite.setting();
    let required = suite.required();
    let trials: Vec<Trial> = checks
        .iter()
        .map(|&(name, check)| {
            let configured = url.is_some();
            let url = url.clone();
            let trial = Trial::test(name, move || match url {
                Some(url) => catch_unwind(AssertUnwindSafe(|| check(&url)))
                    .map_err(|p| Failed::from(panic_text(p.as_ref()))),
                None if required => Err(Failed::from(format!(
                    "the {} suite is required ({REQUIRE_VAR}) but {} is not set",
                    suite.name(),
                    suite.var()
                ))),
                None => Ok(()),
            });
            // An unconfigured backend shows every check as ignored, with the reason.
            if !configured && !required {
                trial.with_ignored_flag(true)
            } else {
                trial
            }
        })
        .collect();
    if url.is_none() && !required {
        notice(&format!(
            "SKIPPED the {} conformance suite: {}",
            suite.name(),
            suite.reason()
        ));
    }
    libtest_mimic::run(&args, trials).exit_code()
}

thread_local! {
    /// Where the last panic of this thread happened, recorded by [`quiet_panics`].
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Replaces the default panic hook (which would print every expected panic of a check, as
/// this harness does not capture output) by one that keeps the panic's location for the
/// failure report.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_AT.with(|p| *p.borrow_mut() = at);
    }));
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the check panicked".into());
    match PANIC_AT.with(|p| p.borrow_mut().take()) {
        Some(at) => format!("{msg} (at {at})"),
        None => msg,
    }
}

/// Runs `checks` against the always-available store at `url` (SQLite), one test each.
pub fn run_checks_at(url: &str, checks: &[Check]) -> ExitCode {
    let args = Arguments::from_args();
    quiet_panics();
    let trials = checks
        .iter()
        .map(|&(name, check)| {
            let url = url.to_string();
            Trial::test(name, move || {
                catch_unwind(AssertUnwindSafe(|| check(&url)))
                    .map_err(|p| Failed::from(panic_text(p.as_ref())))
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
