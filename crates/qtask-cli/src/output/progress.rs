//! Progress bars driven by what the libraries report: run events of workers and trainers, and
//! the phases of a study.

use std::sync::Mutex;

use indicatif::ProgressBar;
use qtask_pool::Status;
use qtask_runner::RunEvent;
use qtask_study::{Observer, StudyPhase};

use super::bar;

/// Shows a run event on `pb`: one step per task committed or finally failed, a line per
/// retried failure or lost lease, the store's state as the message.
pub fn show_event(pb: &ProgressBar, e: &RunEvent) {
    match e {
        RunEvent::Committed { .. }
        | RunEvent::Failed {
            status: Status::Failed,
            ..
        } => pb.inc(1),
        RunEvent::Failed { id, error, .. } => {
            pb.println(format!("task {id} failed (will retry): {error}"))
        }
        RunEvent::LeaseLost { id } => {
            pb.println(format!("task {id}: lease lost; its result was not stored"))
        }
        RunEvent::StoreUnavailable { error } => {
            pb.set_message(format!("store unavailable: {error}"))
        }
        _ => {}
    }
}

/// A progress bar driven by run events (see [`show_event`]).
pub fn progress_events(pb: &ProgressBar) -> impl Fn(&RunEvent) + Sync + '_ {
    move |e: &RunEvent| show_event(pb, e)
}

/// A study observer drawing one bar per phase on stderr.
#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(pb) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            f(pb);
        }
    }
}

impl Observer for Bars {
    fn begin(&self, phase: StudyPhase, total: u64) {
        let pb = bar(total, phase.name());
        if let Some(old) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(pb)
        {
            old.finish_and_clear();
        }
    }

    fn step(&self) {
        self.with(|pb| pb.inc(1));
    }

    fn event(&self, e: &RunEvent) {
        self.with(|pb| show_event(pb, e));
    }

    fn end(&self) {
        if let Some(pb) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            pb.finish_and_clear();
        }
    }
}
