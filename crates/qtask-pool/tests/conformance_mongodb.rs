//! The conformance suite on MongoDB (feature `mongodb`) when `QTASK_TEST_MONGODB` holds a
//! server URL. No MongoDB server can be installed on the development machines.

#[cfg(feature = "mongodb")]
mod suite;

use std::process::ExitCode;

#[cfg(feature = "mongodb")]
fn main() -> ExitCode {
    qtask_testkit::run_checks(qtask_testkit::Suite::Mongodb, suite::CHECKS)
}

#[cfg(not(feature = "mongodb"))]
fn main() -> ExitCode {
    // Without the backend compiled in there is nothing to check; say so where tests are read.
    println!("SKIPPED the mongodb conformance suite: build with --features mongodb");
    ExitCode::SUCCESS
}
