//! The conformance suite on SQLite (always): one test per check of `suite::CHECKS`.

mod suite;

use std::process::ExitCode;

use qtask_testkit::run_checks_at;

fn main() -> ExitCode {
    // One store file for the whole binary: checks run in parallel in separate pools.
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite:{}", dir.path().join("conformance.db").display());
    run_checks_at(&url, suite::CHECKS)
}
