//! What the CLI test files share: the qtask binary run apart from the caller's environment,
//! and the checks of its output.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The variables through which a user's environment would reach a test's qtask process.
const USER_ENV: [&str; 5] = [
    "QTASK_STORE",
    "QTASK_TRACKING_URI",
    "MLFLOW_TRACKING_URI",
    "QTASK_PROVIDER_URI",
    "QTASK_CACHE_DIR",
];

/// The qtask binary under test, with none of [`USER_ENV`] set.
pub fn cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qtask"));
    for var in USER_ENV {
        c.env_remove(var);
    }
    c
}

/// Runs qtask with `args`.
pub fn qtask(args: &[&str]) -> Output {
    cmd().args(args).output().expect("run qtask")
}

/// The standard output of a successful run (fails the test otherwise, showing stderr).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Asserts the run failed with exit 1 and one line `error: ...` containing `needle`.
pub fn fails_with(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
}
