//! The conformance suite on PostgreSQL when `QTASK_TEST_POSTGRES` holds a server URL: one test
//! per check of `suite::CHECKS`, reported `ignored` (or failing, where CI requires the suite)
//! without one.

mod suite;

use std::process::ExitCode;

use qtask_testkit::{Suite, run_checks};

fn main() -> ExitCode {
    run_checks(Suite::Postgres, suite::CHECKS)
}
