//! qtask-web: `qtask ui`, a dashboard over task pools, runs and studies.
//!
//! One process serves server-rendered HTML pages, a JSON API under `/api/` and its own CSS
//! and script (embedded in the binary: nothing is fetched from the network), on the same
//! stores the CLI uses: a task store (`sqlite:`, `postgres://`, `mongodb://`) and a runs
//! store (`file:` or an MLflow tracking server). Store calls are blocking, so they run on
//! tokio's blocking threads with a time limit; a store that goes away turns into a clear
//! "unreachable" page and the server keeps serving until it comes back.
//!
//! Security: loopback by default (binding elsewhere needs a token); actions are POST only,
//! need `Authorization: Bearer TOKEN` when a token is set, are refused in read-only mode and
//! when they come from another origin; every value is escaped and pages carry a strict
//! Content-Security-Policy, so user content (task definitions, error texts) is only text.
//!
//! The study report page takes its data from a [`ReportSource`] given by the caller, so this
//! crate needs no quant crate.
//!
//! ```no_run
//! use qtask_web::{Config, Server};
//! let config = Config::new("sqlite:qtask.db");
//! let running = Server::new(config, None)?.start()?;
//! println!("serving http://{}", running.addr());
//! running.wait();
//! # Ok::<(), qtask_web::WebError>(())
//! ```

#![warn(missing_docs)]

mod api;
mod assets;
mod config;
mod error;
mod guard;
mod histogram;
mod html;
mod pages;
mod preview;
mod rate;
mod server;
mod state;
mod stores;

pub use config::Config;
pub use error::WebError;
pub use server::{Running, Server};

use qtask_record::RecordStore;
use qtask_report::ReportData;

/// Any error a [`ReportSource`] returns (shown on the report page).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the study report of an experiment (what `qtask report` renders).
///
/// Called on a blocking thread for each request of `/experiments/{name}/report`, only for an
/// experiment that exists.
pub trait ReportSource: Send + Sync {
    /// The report data of `experiment` in `runs`.
    fn report(&self, runs: &RecordStore, experiment: &str) -> Result<ReportData, BoxError>;
}

impl<F> ReportSource for F
where
    F: Fn(&RecordStore, &str) -> Result<ReportData, BoxError> + Send + Sync,
{
    fn report(&self, runs: &RecordStore, experiment: &str) -> Result<ReportData, BoxError> {
        self(runs, experiment)
    }
}
